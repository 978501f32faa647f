"""Readers for the native on-disk layouts of the six fine-grained benchmarks.

Each reader is registered under ``--data KIND=ROOT`` (aliases in brackets):

* ``cub200`` [cub, cub200_2011, cub_200_2011] -- CUB-200-2011:
  ROOT/CUB_200_2011/{images.txt,image_class_labels.txt,train_test_split.txt,classes.txt,images/}
  (ROOT may also be CUB_200_2011/ itself).
* ``stanford_dogs`` [dogs] -- Stanford Dogs:
  ROOT/{Images/n02085620-Chihuahua/*.jpg,lists/train_list.mat,lists/test_list.mat}.
* ``flowers102`` [flowers, oxford_flowers102] -- Oxford 102 Flowers (torchvision Flowers102):
  ROOT/flowers-102/{jpg/image_00001.jpg,imagelabels.mat,setid.mat}; official train/val/test.
* ``oxford_pets`` [pets, oxford_iiit_pet] -- Oxford-IIIT Pet (torchvision OxfordIIITPet):
  ROOT/oxford-iiit-pet/{images/*.jpg,annotations/trainval.txt,annotations/test.txt}.
* ``stanford_cars`` [cars] -- Stanford Cars (torchvision StanfordCars):
  ROOT/stanford_cars/{devkit/cars_meta.mat,devkit/cars_train_annos.mat,cars_train/,
  cars_test_annos_withlabels.mat,cars_test/}.
* ``fgvc_aircraft`` [aircraft, fgvc-aircraft] -- FGVC-Aircraft 2013b, variant level (torchvision
  FGVCAircraft): ROOT/fgvc-aircraft-2013b/data/{variants.txt,images_variant_{train,val,test}.txt,images/};
  official train/val/test.

For every torchvision-backed reader ROOT may also be the dataset folder itself
(``flowers-102/``, ``oxford-iiit-pet/``, ...). Datasets without an official validation split
(CUB, Dogs, Pets, Cars) get ``val`` = a deterministic stratified 10 % holdout of the official
train split (per class, seed 0, chosen from the sorted paths, >= 1 image per class left in
train); ``train`` = the rest; ``test`` = the official test split. Every split of a dataset
has the same class list in the same order, and every sample path is absolute.
"""

from __future__ import annotations

import os
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, NoReturn, Sequence

from ..errors import UserError
from .datasets import Reader, SplitIndex, register_reader

VAL_FRACTION = 0.10
VAL_SEED = 0

CUB_LAYOUT = "ROOT/CUB_200_2011/{images.txt,image_class_labels.txt,train_test_split.txt,classes.txt,images/}"
DOGS_LAYOUT = "ROOT/{Images/n02085620-Chihuahua/*.jpg,lists/train_list.mat,lists/test_list.mat}"
FLOWERS_LAYOUT = "ROOT/flowers-102/{jpg/image_00001.jpg,imagelabels.mat,setid.mat}"
PETS_LAYOUT = "ROOT/oxford-iiit-pet/{images/*.jpg,annotations/trainval.txt,annotations/test.txt}"
CARS_LAYOUT = (
    "ROOT/stanford_cars/{devkit/cars_meta.mat,devkit/cars_train_annos.mat,cars_train/,"
    "cars_test_annos_withlabels.mat,cars_test/}"
)
AIRCRAFT_LAYOUT = "ROOT/fgvc-aircraft-2013b/data/{variants.txt,images_variant_{train,val,test}.txt,images/}"


# ---------------------------------------------------------------- shared helpers


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _abs(root: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(root))))


def carve_val(
    samples: Sequence[tuple[str, int]], split: str, *, fraction: float = VAL_FRACTION, seed: int = VAL_SEED
) -> list[tuple[str, int]]:
    """Split an official train list into ``train`` / ``val`` (stratified, deterministic).

    Per class, ``round(fraction * n)`` images (at least 1 when the class has >= 2, never all of
    them) are drawn from the *sorted* paths with a per-class RNG seeded by ``seed`` and the label,
    so the result depends only on the set of files, not on list order or other classes.
    Returned samples keep the order of ``samples``.
    """
    by_class: dict[int, list[str]] = defaultdict(list)
    for path, label in samples:
        by_class[label].append(path)
    val: set[str] = set()
    for label in sorted(by_class):
        paths = sorted(set(by_class[label]))
        n = len(paths)
        k = 0 if n < 2 else min(n - 1, max(1, int(n * fraction + 0.5)))
        rng = random.Random(seed * 1_000_003 + label)
        val.update(rng.sample(paths, k))
    if split == "val":
        return [(p, y) for p, y in samples if p in val]
    return [(p, y) for p, y in samples if p not in val]


def _carved_note(official_train: str = "train") -> str:
    return (
        f"val = stratified {VAL_FRACTION:.0%} of the official {official_train} split (per class, seed {VAL_SEED}, "
        f">=1 image per class kept in train); train = the rest; test = the official test split"
    )


_OFFICIAL_NOTE = "official train/val/test splits"


def _select(samples: list[tuple[str, int]], split: str, official_train: str = "train") -> tuple[list[tuple[str, int]], str]:
    """``samples`` is the official train (for train/val) or test split; carve val when asked."""
    if split == "test":
        return samples, _carved_note(official_train)
    return carve_val(samples, split), _carved_note(official_train)


def _unique_names(names: Iterable[str]) -> list[str]:
    """Keep order; make duplicates unique by suffixing `` (2)``, `` (3)``..."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for name in names:
        name = _one_line(name)
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        out.append(name)
    return out


def _readable(name: str) -> str:
    return _one_line(name.replace("_", " "))


def _wrong_root(root: Path, kind: str, layout: str, dataset_dirs: Callable[[Path], list[Path]]) -> NoReturn:
    """Raise a one-line error; point at the right level when the data is just above or below ``root``.

    ``dataset_dirs(p)`` lists the existing dataset folders that make ``p`` a valid root.
    """
    if not root.exists():
        raise UserError(f"{root}: {kind} root does not exist; expected {layout}")
    for parent in list(root.parents)[:3]:
        if any(root.is_relative_to(d) for d in dataset_dirs(parent)):
            raise UserError(f"{root}: points inside the {kind} dataset; use --data {kind}={parent} (layout: {layout})")
    try:
        children = sorted(c for c in root.iterdir() if c.is_dir() and not c.name.startswith("."))
    except OSError:
        children = []
    for child in children:
        if dataset_dirs(child):
            raise UserError(f"{root}: the {kind} dataset is one level down; use --data {kind}={child} (layout: {layout})")
    raise UserError(f"{root}: not a {kind} dataset root; expected {layout}")


def _dirs(*candidates: Path) -> list[Path]:
    return [c for c in candidates if c.is_dir()]


def _require(base: Path, relpaths: Iterable[str], kind: str, layout: str) -> None:
    """Raise naming the first missing metadata file / folder (``rel/`` means a folder)."""
    for rel in relpaths:
        path = base / rel.rstrip("/")
        ok = path.is_dir() if rel.endswith("/") else path.is_file()
        if not ok:
            what = "folder" if rel.endswith("/") else "metadata file"
            raise UserError(f"{path}: missing {kind} {what}; expected {layout} (re-extract the official archive)")


def _check_images(samples: Sequence[tuple[str, int]], listed_in: Path | str, kind: str) -> None:
    missing = [p for p, _ in samples if not os.path.isfile(p)]
    if missing:
        raise UserError(
            f"{listed_in}: {len(missing)} {kind} image file(s) listed here are missing, first: {missing[0]} "
            "-- re-extract the images archive or fix the root"
        )


def _loadmat(path: Path, kind: str, variables: Sequence[str]) -> dict:
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError/MatReadError on bad files
        raise UserError(f"{path}: cannot read {kind} .mat file ({_one_line(exc)}); re-download it") from None
    for var in variables:
        if var not in mat:
            raise UserError(f"{path}: {kind} .mat file has no variable {var!r}; re-download the official file")
    return mat


def _mat_strings(arr) -> list[str]:
    """A MATLAB cell array of strings (any shape, nested 1x1 cells) as a flat list of str."""
    import numpy as np

    out = []
    for item in np.asarray(arr, dtype=object).ravel():
        while isinstance(item, np.ndarray):
            item = item.ravel()[0] if item.size else ""
        out.append(str(item))
    return out


def _mat_ints(arr) -> list[int]:
    import numpy as np

    return [int(v) for v in np.asarray(arr).ravel()]


# ---------------------------------------------------------------- CUB-200-2011


def _cub_base(root: Path) -> Path:
    metadata = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
    if (root / "CUB_200_2011").is_dir():
        return root / "CUB_200_2011"
    if root.name == "CUB_200_2011" or any((root / m).is_file() for m in metadata):
        return root
    _wrong_root(
        root,
        "cub200",
        CUB_LAYOUT,
        lambda p: _dirs(p / "CUB_200_2011", *([p] if p.name == "CUB_200_2011" or (p / "images.txt").is_file() else [])),
    )


def _read_id_table(path: Path, kind: str) -> dict[int, str]:
    """``<int id> <rest>`` per line (CUB's .txt metadata)."""
    table: dict[int, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            key, _, rest = line.partition(" ")
            try:
                table[int(key)] = rest.strip()
            except ValueError:
                raise UserError(f"{path}:{lineno}: expected '<id> <value>', got {line[:60]!r}; re-extract the {kind} archive") from None
            if not rest.strip():
                raise UserError(f"{path}:{lineno}: expected '<id> <value>', got {line[:60]!r}; re-extract the {kind} archive")
    return table


def _int_field(value: str, path: Path, key: int) -> int:
    try:
        return int(value.split()[0])
    except (ValueError, IndexError):
        raise UserError(f"{path}: entry {key} has non-integer value {value!r}; re-extract the cub200 archive") from None


def read_cub200(root: Path, split: str) -> SplitIndex:
    base = _cub_base(_abs(root))
    _require(
        base, ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt", "images/"), "cub200", CUB_LAYOUT
    )
    images = _read_id_table(base / "images.txt", "cub200")
    labels_txt = _read_id_table(base / "image_class_labels.txt", "cub200")
    split_txt = _read_id_table(base / "train_test_split.txt", "cub200")
    classes_txt = _read_id_table(base / "classes.txt", "cub200")

    class_ids = sorted(classes_txt)
    if class_ids != list(range(1, len(class_ids) + 1)):
        raise UserError(f"{base / 'classes.txt'}: class ids must run 1..N without gaps; re-extract the cub200 archive")
    # "001.Black_footed_Albatross" -> "Black footed Albatross"
    raw = [classes_txt[c] for c in class_ids]
    classes = _unique_names(_readable(re.sub(r"^\d+\.", "", r)) for r in raw)

    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for image_id in sorted(images):
        for table, name in ((labels_txt, "image_class_labels.txt"), (split_txt, "train_test_split.txt")):
            if image_id not in table:
                raise UserError(f"{base / name}: no entry for image id {image_id} of images.txt; re-extract the cub200 archive")
        label = _int_field(labels_txt[image_id], base / "image_class_labels.txt", image_id)
        if not 1 <= label <= len(classes):
            raise UserError(f"{base / 'image_class_labels.txt'}: image {image_id} has class {label}, outside 1..{len(classes)} of classes.txt")
        is_train = _int_field(split_txt[image_id], base / "train_test_split.txt", image_id)
        path = str(base / "images" / images[image_id])
        (train if is_train == 1 else test).append((path, label - 1))

    samples, note = _select(test if split == "test" else train, split)
    _check_images(samples, base / "images.txt", "cub200")
    return SplitIndex(classes, samples, note)


# ---------------------------------------------------------------- Stanford Dogs


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
        raise UserError(f"{path}: file_list has {len(files)} entries but labels has {len(labels)}; re-download lists.tar")
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
        raise UserError(f"{base / 'lists'}: labels must run 1..N without gaps (got {labels[0]}..{labels[-1]}, {len(labels)} used)")
    # "n02085620-Chihuahua" -> "Chihuahua"; "n02085782-Japanese_spaniel" -> "Japanese spaniel"
    classes = _unique_names(_readable(folders[y].split("-", 1)[1] if "-" in folders[y] else folders[y]) for y in labels)

    listed = "test_list.mat" if split == "test" else "train_list.mat"
    official = [(str(base / "Images" / rel), label - 1) for rel, label in lists[listed]]
    samples, note = _select(official, split)
    _check_images(samples, base / "lists" / listed, "stanford_dogs")
    return SplitIndex(classes, samples, note)


# ---------------------------------------------------------------- torchvision-backed readers


def _tv_root(root: Path, folder: str, kind: str, layout: str) -> Path:
    """The directory that holds ``folder`` (what torchvision calls ``root``); ROOT/folder itself is accepted."""
    if (root / folder).is_dir():
        return root
    if root.name == folder and root.is_dir():
        return root.parent
    _wrong_root(root, kind, layout, lambda p: _dirs(p / folder, *([p] if p.name == folder else [])))


def _tv_build(factory: Callable[[], object], base: Path, kind: str, layout: str):
    try:
        return factory()
    except RuntimeError as exc:
        raise UserError(f"{base}: {kind} dataset not found or corrupted (torchvision: {_one_line(exc)}); expected {layout}") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise UserError(
            f"{base}: cannot parse the {kind} metadata ({type(exc).__name__}: {_one_line(exc)}); expected {layout}"
        ) from None


def _tv_attr(ds: object, name: str, kind: str):
    try:
        return getattr(ds, name)
    except AttributeError:
        import torchvision

        raise UserError(
            f"torchvision {torchvision.__version__}: {type(ds).__name__} has no attribute {name!r}; "
            f"the {kind} reader needs a torchvision release where it exists (0.19 - 0.29 are known to work)"
        ) from None


def read_flowers102(root: Path, split: str) -> SplitIndex:
    from torchvision.datasets import Flowers102
    from torchvision.datasets import flowers102 as tv_flowers

    kind = "flowers102"
    tv_root = _tv_root(_abs(root), "flowers-102", kind, FLOWERS_LAYOUT)
    base = tv_root / "flowers-102"
    _require(base, ("imagelabels.mat", "setid.mat", "jpg/"), kind, FLOWERS_LAYOUT)
    try:
        ds = Flowers102(str(tv_root), split=split, download=False)
    except RuntimeError:
        # files exist (checked above), so torchvision's md5 check failed: name the file
        for key in ("label", "setid"):
            filename, md5 = Flowers102._file_dict[key]
            if not tv_flowers.check_integrity(str(base / filename), md5):
                raise UserError(
                    f"{base / filename}: fails torchvision's md5 check (corrupted or not the official file); "
                    "re-download it from https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
                ) from None
        raise UserError(f"{base}: flowers102 dataset not found or corrupted; expected {FLOWERS_LAYOUT}") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise UserError(f"{base}: cannot parse the flowers102 metadata ({type(exc).__name__}: {_one_line(exc)})") from None
    files = _tv_attr(ds, "_image_files", kind)
    labels = _tv_attr(ds, "_labels", kind)
    classes = _unique_names(ds.classes)
    samples = [(str(p), int(y)) for p, y in zip(files, labels)]
    bad = [y for _, y in samples if not 0 <= y < len(classes)]
    if bad:
        raise UserError(f"{base / 'imagelabels.mat'}: label {bad[0] + 1} outside 1..{len(classes)}; re-download it")
    _check_images(samples, base / "setid.mat", kind)
    return SplitIndex(classes, samples, _OFFICIAL_NOTE)


def read_oxford_pets(root: Path, split: str) -> SplitIndex:
    from torchvision.datasets import OxfordIIITPet

    kind = "oxford_pets"
    tv_root = _tv_root(_abs(root), "oxford-iiit-pet", kind, PETS_LAYOUT)
    base = tv_root / "oxford-iiit-pet"
    _require(base, ("annotations/trainval.txt", "annotations/test.txt", "images/"), kind, PETS_LAYOUT)
    sets = {
        s: _tv_build(lambda s=s: OxfordIIITPet(str(tv_root), split=s, download=False), base, kind, PETS_LAYOUT)
        for s in ("trainval", "test")
    }
    # torchvision names the classes per split from the labels present; merge both so every
    # split gets the same list, indexed by the official label.
    names: dict[int, str] = {}
    for s, ds in sets.items():
        present = sorted(set(int(y) for y in _tv_attr(ds, "_labels", kind)))
        for label, name in zip(present, ds.classes):
            if names.setdefault(label, name) != name:
                raise UserError(
                    f"{base / 'annotations' / (s + '.txt')}: class id {label + 1} names both {names[label]!r} and {name!r}; "
                    "re-extract annotations.tar.gz"
                )
    labels = sorted(names)
    if labels != list(range(len(labels))):
        raise UserError(f"{base / 'annotations'}: class ids must run 1..N without gaps across trainval.txt and test.txt")
    classes = _unique_names(names[y] for y in labels)

    ds = sets["test" if split == "test" else "trainval"]
    official = [(str(p), int(y)) for p, y in zip(_tv_attr(ds, "_images", kind), _tv_attr(ds, "_labels", kind))]
    samples, note = _select(official, split, official_train="trainval")
    _check_images(samples, base / "annotations" / ("test.txt" if split == "test" else "trainval.txt"), kind)
    return SplitIndex(classes, samples, note)


def read_stanford_cars(root: Path, split: str) -> SplitIndex:
    from torchvision.datasets import StanfordCars

    kind = "stanford_cars"
    tv_root = _tv_root(_abs(root), "stanford_cars", kind, CARS_LAYOUT)
    base = tv_root / "stanford_cars"
    if split == "test":
        needed = ("devkit/cars_meta.mat", "cars_test_annos_withlabels.mat", "cars_test/")
        listed = base / "cars_test_annos_withlabels.mat"
    else:
        needed = ("devkit/cars_meta.mat", "devkit/cars_train_annos.mat", "cars_train/")
        listed = base / "devkit" / "cars_train_annos.mat"
    _require(base, needed, kind, CARS_LAYOUT)
    tv_split = "test" if split == "test" else "train"
    ds = _tv_build(lambda: StanfordCars(str(tv_root), split=tv_split, download=False), base, kind, CARS_LAYOUT)
    classes = _unique_names(ds.classes)
    official = [(str(p), int(y)) for p, y in _tv_attr(ds, "_samples", kind)]
    bad = [y for _, y in official if not 0 <= y < len(classes)]
    if bad:
        raise UserError(f"{listed}: class {bad[0] + 1} outside 1..{len(classes)} of devkit/cars_meta.mat; re-download it")
    samples, note = _select(official, split)
    _check_images(samples, listed, kind)
    return SplitIndex(classes, samples, note)


def read_fgvc_aircraft(root: Path, split: str) -> SplitIndex:
    from torchvision.datasets import FGVCAircraft

    kind = "fgvc_aircraft"
    tv_root = _tv_root(_abs(root), "fgvc-aircraft-2013b", kind, AIRCRAFT_LAYOUT)
    base = tv_root / "fgvc-aircraft-2013b"
    listed = f"data/images_variant_{split}.txt"
    _require(base, ("data/variants.txt", listed, "data/images/"), kind, AIRCRAFT_LAYOUT)
    try:
        ds = FGVCAircraft(str(tv_root), split=split, annotation_level="variant", download=False)
    except KeyError as exc:
        raise UserError(
            f"{base / listed}: variant {exc.args[0]!r} is not in data/variants.txt; re-extract the fgvc-aircraft archive"
        ) from None
    except RuntimeError as exc:
        raise UserError(f"{base}: {kind} dataset not found (torchvision: {_one_line(exc)}); expected {AIRCRAFT_LAYOUT}") from None
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise UserError(f"{base / listed}: cannot parse ({type(exc).__name__}: {_one_line(exc)}); expected '<image id> <variant>' lines") from None
    classes = _unique_names(ds.classes)
    samples = [(str(p), int(y)) for p, y in zip(_tv_attr(ds, "_image_files", kind), _tv_attr(ds, "_labels", kind))]
    _check_images(samples, base / listed, kind)
    return SplitIndex(classes, samples, _OFFICIAL_NOTE + " (variant level)")


# ---------------------------------------------------------------- registry

register_reader(Reader("cub200", "CUB-200-2011: " + CUB_LAYOUT + " (val carved from train)", read_cub200,
                       aliases=("cub", "cub200_2011", "cub_200_2011")))
register_reader(Reader("stanford_dogs", "Stanford Dogs: " + DOGS_LAYOUT + " (val carved from train)", read_stanford_dogs,
                       aliases=("dogs", "stanforddogs")))
register_reader(Reader("flowers102", "Oxford 102 Flowers: " + FLOWERS_LAYOUT + " (official val)", read_flowers102,
                       aliases=("flowers", "oxford_flowers102")))
register_reader(Reader("oxford_pets", "Oxford-IIIT Pet: " + PETS_LAYOUT + " (val carved from trainval)", read_oxford_pets,
                       aliases=("pets", "oxford_iiit_pet")))
register_reader(Reader("stanford_cars", "Stanford Cars: " + CARS_LAYOUT + " (val carved from train)", read_stanford_cars,
                       aliases=("cars", "stanfordcars")))
register_reader(Reader("fgvc_aircraft", "FGVC-Aircraft 2013b (variants): " + AIRCRAFT_LAYOUT + " (official val)",
                       read_fgvc_aircraft, aliases=("aircraft", "fgvc-aircraft")))
