"""The ``flowers102`` reader: Oxford 102 Flowers (torchvision Flowers102) in its native layout
(see :mod:`edge_fgic.data.readers`)."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ..registry import Reader, SplitIndex, register_reader
from .common import (
    _OFFICIAL_NOTE,
    _abs,
    _check_images,
    _one_line,
    _require,
    _tv_attr,
    _tv_root,
    _unique_names,
)

FLOWERS_LAYOUT = "ROOT/flowers-102/{jpg/image_00001.jpg,imagelabels.mat,setid.mat}"


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
        raise UserError(f"{base}: cannot parse the flowers102 metadata "
                        f"({type(exc).__name__}: {_one_line(exc)})") from None
    files = _tv_attr(ds, "_image_files", kind)
    labels = _tv_attr(ds, "_labels", kind)
    classes = _unique_names(ds.classes)
    samples = [(str(p), int(y)) for p, y in zip(files, labels)]
    bad = [y for _, y in samples if not 0 <= y < len(classes)]
    if bad:
        raise UserError(f"{base / 'imagelabels.mat'}: label {bad[0] + 1} outside 1..{len(classes)}; re-download it")
    _check_images(samples, base / "setid.mat", kind)
    return SplitIndex(classes, samples, _OFFICIAL_NOTE)


register_reader(Reader("flowers102", "Oxford 102 Flowers: " + FLOWERS_LAYOUT + " (official val)", read_flowers102,
                       aliases=("flowers", "oxford_flowers102")))
