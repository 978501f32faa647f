"""Dataset selection (``--data KIND=PATH``), the reader registry and the one Dataset class.

A *reader* turns a dataset root in its native on-disk layout into a :class:`SplitIndex`
(sorted class names + ``(path, label)`` samples). Every reader shares the same image
loading, validation and transforms through :class:`FGDataset`, so a new layout is one
function and one registry row.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset

from ..errors import UserError
from .images import SKIP_DIRS, find_bad_images, list_images, load_rgb, skipped_summary

SPLITS = ("train", "val", "test")


@dataclass
class SplitIndex:
    """What a reader returns for one split."""

    classes: list[str]
    samples: list[tuple[str, int]]
    note: str = ""  # e.g. "val carved from train (10 %, stratified, seed 0)"


@dataclass
class Reader:
    kind: str
    description: str
    read: Callable[[Path, str], SplitIndex]
    splits: tuple[str, ...] = SPLITS
    aliases: tuple[str, ...] = ()


READERS: dict[str, Reader] = {}


def register_reader(reader: Reader) -> Reader:
    for key in (reader.kind, *reader.aliases):
        READERS[key] = reader
    return reader


@dataclass
class DataSpec:
    """``KIND=PATH`` as given on the command line (plain PATH means ImageFolder)."""

    kind: str
    path: Path

    def __str__(self) -> str:
        return f"{self.kind}={self.path}"

    @property
    def reader(self) -> Reader:
        _load_builtin_readers()
        return READERS[self.kind]


def parse_data_spec(text: str | os.PathLike | DataSpec) -> DataSpec:
    """Parse ``KIND=PATH`` or ``PATH``; raise a one-line :class:`UserError` on a bad kind or path."""
    if isinstance(text, DataSpec):
        return text
    text = str(text)
    _load_builtin_readers()
    kind, sep, path = text.partition("=")
    if not sep or os.path.exists(text):
        kind, path = "imagefolder", text
    kind = kind.strip().lower()
    if kind not in READERS:
        raise UserError(
            f"--data {text}: unknown dataset kind {kind!r}; known kinds: {', '.join(sorted(_kinds()))} "
            "(run `edge-fgic datasets` for their layouts)"
        )
    root = Path(path).expanduser()
    if not root.exists() and READERS[kind].kind != "synthetic":  # synthetic=PATH is generated on first read
        raise UserError(f"{root}: dataset path does not exist; check --data (expected {kind}=PATH)")
    return DataSpec(READERS[kind].kind, root)


def _kinds() -> list[str]:
    return sorted({r.kind for r in READERS.values()})


def list_readers() -> list[Reader]:
    _load_builtin_readers()
    return [READERS[k] for k in _kinds()]


def read_split(spec: DataSpec | str, split: str) -> SplitIndex:
    spec = parse_data_spec(spec)
    reader = spec.reader
    if split not in reader.splits:
        raise UserError(f"{spec.path}: {spec.kind} has no split {split!r}; available: {', '.join(reader.splits)}")
    index = reader.read(spec.path, split)
    if not index.samples:
        raise UserError(f"{spec.path}: no images found for split {split!r}; check the layout (`edge-fgic datasets`)")
    return index


class FGDataset(Dataset):
    """(image, label) pairs from any reader; images decoded by :func:`load_rgb`."""

    def __init__(self, index: SplitIndex, transform: Callable | None = None, name: str = ""):
        self.classes = list(index.classes)
        self.samples = list(index.samples)
        self.targets = [y for _, y in self.samples]
        self.transform = transform
        self.name = name
        self.note = index.note
        self.skipped: list[str] = []   # "path: reason" of images --skip-bad-images left out
        self._cache: list | None = None

    def cache_in_memory(self, progress: bool = True) -> "FGDataset":
        """Decode every image once and keep it in RAM (fork-shared by DataLoader workers)."""
        from ..progress import track

        if self._cache is None:
            self._cache = [load_rgb(p) for p, _ in track(self.samples, len(self.samples), "caching images", progress)]
        return self

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        img = self._cache[i] if self._cache is not None else load_rgb(path)
        if self.transform is not None:
            img = self.transform(img)
        return img, label


def open_split(
    spec: DataSpec | str,
    split: str,
    transform: Callable | None = None,
    *,
    check_images: bool = True,
    skip_bad_images: bool = False,
    progress: bool = True,
) -> FGDataset:
    """Read a split, decode-check every image once, and wrap it in :class:`FGDataset`.

    Bad images stop the run with a count and the first few paths unless ``skip_bad_images``.
    """
    spec = parse_data_spec(spec)
    index = read_split(spec, split)
    bad: list[str] = []
    if check_images:
        bad = find_bad_images([p for p, _ in index.samples], progress=progress, label=split)
        if bad:
            if not skip_bad_images:
                first = "; ".join(b.split("; replace or delete it")[0] for b in bad[:3])  # the hint comes once, below
                raise UserError(
                    f"{spec.path}: {len(bad)} unreadable image(s) in split {split!r}, e.g. {first} "
                    "-- fix them or pass --skip-bad-images"
                )
            bad_paths = {b.split(": ", 1)[0] for b in bad}
            index.samples = [(p, y) for p, y in index.samples if p not in bad_paths]
            index.note = (index.note + f"; skipped {len(bad)} unreadable image(s)").lstrip("; ")
            # never silent: the files and why, on the console (stderr) and kept on the dataset for the run's outputs
            from ..progress import err_console
            err_console.print(f"warning: --skip-bad-images: skipped {skipped_summary(bad)} in split {split!r} of "
                              f"{spec.path}", style="yellow", markup=False, highlight=False, soft_wrap=True)
    ds = FGDataset(index, transform, name=str(spec))
    ds.skipped = list(bad)
    return ds


def check_same_classes(train: FGDataset | SplitIndex, other: FGDataset | SplitIndex, where: str) -> None:
    """Val/test must use exactly the train class list (same names, same order)."""
    if list(train.classes) == list(other.classes):
        return
    missing = sorted(set(train.classes) - set(other.classes))
    extra = sorted(set(other.classes) - set(train.classes))
    detail = []
    if missing:
        detail.append(f"missing {missing[:5]}")
    if extra:
        detail.append(f"unexpected {extra[:5]}")
    raise UserError(
        f"{where}: class list differs from the train split ({', '.join(detail) or 'different order'}); "
        "give every split the same class folders"
    )


# ---------------------------------------------------------------- ImageFolder


def _read_imagefolder(root: Path, split: str) -> SplitIndex:
    split_dir = root / split
    if not split_dir.is_dir():
        present = [s for s in SPLITS if (root / s).is_dir()]
        raise UserError(
            f"{split_dir}: split folder not found (ImageFolder layout is ROOT/{{train,val,test}}/<class>/<image>; "
            f"found {present or 'no split folders'})"
        )
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")
                     and d.name not in SKIP_DIRS)
    if not classes:
        raise UserError(f"{split_dir}: no class folders; put images in {split_dir}/<class name>/")
    samples: list[tuple[str, int]] = []
    for label, name in enumerate(classes):
        files = [str(p) for p in list_images(split_dir / name)]
        if not files:
            raise UserError(f"{split_dir / name}: class folder has no images; add images or remove the folder")
        samples += [(f, label) for f in files]
    return SplitIndex(classes, samples)


register_reader(
    Reader(
        "imagefolder",
        "ROOT/{train,val,test}/<class>/<image> (a plain path means this)",
        _read_imagefolder,
        aliases=("folder",),
    )
)

_BUILTINS_LOADED = False


def _load_builtin_readers() -> None:
    """Import the modules that register the native fine-grained layouts (once)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from . import native  # noqa: F401  (registers cub200, stanford_dogs, flowers102, ...)
    from . import synthetic  # noqa: F401  (registers the embedded default)
