"""The ``fgvc_aircraft`` reader: FGVC-Aircraft 2013b, variant level (torchvision FGVCAircraft) in its
native layout (see :mod:`edge_fgic.data.readers`)."""

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

AIRCRAFT_LAYOUT = "ROOT/fgvc-aircraft-2013b/data/{variants.txt,images_variant_{train,val,test}.txt,images/}"


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
            f"{base / listed}: variant {exc.args[0]!r} is not in data/variants.txt; "
            "re-extract the fgvc-aircraft archive"
        ) from None
    except RuntimeError as exc:
        raise UserError(f"{base}: {kind} dataset not found (torchvision: {_one_line(exc)}); "
                        f"expected {AIRCRAFT_LAYOUT}") from None
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise UserError(f"{base / listed}: cannot parse ({type(exc).__name__}: {_one_line(exc)}); "
                        "expected '<image id> <variant>' lines") from None
    classes = _unique_names(ds.classes)
    samples = [(str(p), int(y)) for p, y in zip(_tv_attr(ds, "_image_files", kind), _tv_attr(ds, "_labels", kind))]
    _check_images(samples, base / listed, kind)
    return SplitIndex(classes, samples, _OFFICIAL_NOTE + " (variant level)")


register_reader(Reader("fgvc_aircraft", "FGVC-Aircraft 2013b (variants): " + AIRCRAFT_LAYOUT + " (official val)",
                       read_fgvc_aircraft, aliases=("aircraft", "fgvc-aircraft")))
