"""The ``stanford_dogs`` reader: Stanford Dogs in its native layout (see :mod:`edge_fgic.data.readers`)."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ..registry import Reader, SplitIndex, register_reader
from .common import (
    _abs,
    _check_images,
    _dirs,
    _loadmat,
    _mat_ints,
    _mat_strings,
    _readable,
    _require,
    _select,
    _unique_names,
    _wrong_root,
)

DOGS_LAYOUT = "ROOT/{Images/n02085620-Chihuahua/*.jpg,lists/train_list.mat,lists/test_list.mat}"


def _dogs_base(root: Path) -> Path:
    if (root / "Images").is_dir() or (root / "lists").is_dir():
        return root
    _wrong_root(root, "stanford_dogs", DOGS_LAYOUT, lambda p: _dirs(p / "Images", p / "lists"))


def _dogs_list(base: Path, name: str) -> list[tuple[str, int]]:
    path = base / "lists" / name
    mat = _loadmat(path, "stanford_dogs", ("file_list", "labels"))
    files = _mat_strings(mat["file_list"])
    labels = _mat_ints(mat["labels"])
    if len(files) != len(labels):
        raise UserError(f"{path}: file_list has {len(files)} entries but labels has {len(labels)}; "
                        "re-download lists.tar")
    return list(zip(files, labels))


def read_stanford_dogs(root: Path, split: str) -> SplitIndex:
    base = _dogs_base(_abs(root))
    _require(base, ("lists/train_list.mat", "lists/test_list.mat", "Images/"), "stanford_dogs", DOGS_LAYOUT)
    lists = {name: _dogs_list(base, name) for name in ("train_list.mat", "test_list.mat")}

    # label (1-based) -> class folder, from both lists so every split gets the same classes
    folders: dict[int, str] = {}
    for name, entries in lists.items():
        for rel, label in entries:
            folder = rel.replace("\\", "/").split("/", 1)[0]
            if folders.setdefault(label, folder) != folder:
                raise UserError(
                    f"{base / 'lists' / name}: label {label} is used for both {folders[label]!r} and {folder!r}; "
                    "re-download lists.tar"
                )
    labels = sorted(folders)
    if labels != list(range(1, len(labels) + 1)):
        raise UserError(f"{base / 'lists'}: labels must run 1..N without gaps "
                        f"(got {labels[0]}..{labels[-1]}, {len(labels)} used)")
    # "n02085620-Chihuahua" -> "Chihuahua"; "n02085782-Japanese_spaniel" -> "Japanese spaniel"
    classes = _unique_names(_readable(folders[y].split("-", 1)[1] if "-" in folders[y] else folders[y]) for y in labels)

    listed = "test_list.mat" if split == "test" else "train_list.mat"
    official = [(str(base / "Images" / rel), label - 1) for rel, label in lists[listed]]
    samples, note = _select(official, split)
    _check_images(samples, base / "lists" / listed, "stanford_dogs")
    return SplitIndex(classes, samples, note)


register_reader(Reader("stanford_dogs", "Stanford Dogs: " + DOGS_LAYOUT + " (val carved from train)",
                       read_stanford_dogs, aliases=("dogs", "stanforddogs")))
