"""The ``imagefolder`` reader: ROOT/{train,val,test}/<class>/<image> (what a plain ``--data PATH`` means)."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ..images import SKIP_DIRS, list_images
from ..registry import SPLITS, Reader, SplitIndex, register_reader


def read_imagefolder(root: Path, split: str) -> SplitIndex:
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
        read_imagefolder,
        aliases=("folder",),
    )
)
