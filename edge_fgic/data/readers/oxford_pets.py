"""The ``oxford_pets`` reader: Oxford-IIIT Pet (torchvision OxfordIIITPet) in its native layout
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

PETS_LAYOUT = "ROOT/oxford-iiit-pet/{images/*.jpg,annotations/trainval.txt,annotations/test.txt}"


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
                    f"{base / 'annotations' / (s + '.txt')}: class id {label + 1} names both {names[label]!r} "
                    f"and {name!r}; "
                    "re-extract annotations.tar.gz"
                )
    labels = sorted(names)
    if labels != list(range(len(labels))):
        raise UserError(f"{base / 'annotations'}: class ids must run 1..N without gaps "
                        "across trainval.txt and test.txt")
    classes = _unique_names(names[y] for y in labels)

    ds = sets["test" if split == "test" else "trainval"]
    official = [(str(p), int(y)) for p, y in zip(_tv_attr(ds, "_images", kind), _tv_attr(ds, "_labels", kind))]
    samples, note = _select(official, split, official_train="trainval")
    _check_images(samples, base / "annotations" / ("test.txt" if split == "test" else "trainval.txt"), kind)
    return SplitIndex(classes, samples, note)


register_reader(Reader("oxford_pets", "Oxford-IIIT Pet: " + PETS_LAYOUT + " (val carved from trainval)",
                       read_oxford_pets, aliases=("pets", "oxford_iiit_pet")))
