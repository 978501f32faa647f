"""The ``stanford_cars`` reader: Stanford Cars (torchvision StanfordCars) in its native layout
(see :mod:`edge_fgic.data.readers`)."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ..registry import Reader, SplitIndex, register_reader
from .common import (
    _abs,
    _check_images,
    _require,
    _select,
    _tv_attr,
    _tv_build,
    _tv_root,
    _unique_names,
)

CARS_LAYOUT = (
    "ROOT/stanford_cars/{devkit/cars_meta.mat,devkit/cars_train_annos.mat,cars_train/,"
    "cars_test_annos_withlabels.mat,cars_test/}"
)


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
        raise UserError(f"{listed}: class {bad[0] + 1} outside 1..{len(classes)} of devkit/cars_meta.mat; "
                        "re-download it")
    samples, note = _select(official, split)
    _check_images(samples, listed, kind)
    return SplitIndex(classes, samples, note)


register_reader(Reader("stanford_cars", "Stanford Cars: " + CARS_LAYOUT + " (val carved from train)",
                       read_stanford_cars, aliases=("cars", "stanfordcars")))
