"""The ``synthetic`` reader: the embedded default, generated on first use (:mod:`edge_fgic.data.synthetic`)."""

from __future__ import annotations

from pathlib import Path

from ..registry import Reader, SplitIndex, register_reader
from ..synthetic import generate
from .imagefolder import read_imagefolder


def read_synthetic(root: Path, split: str) -> SplitIndex:
    """``synthetic=PATH``: generate into PATH on first use (default config), then read it as ImageFolder."""
    if not (root / "synthetic.json").exists():
        from ...progress import console

        console.print(f"generating the synthetic fine-grained dataset into {root} (first use, about 20 s)")
        generate(root)
    index = read_imagefolder(root, split)
    index.note = "procedurally generated (edge_fgic.data.synthetic)"
    return index


register_reader(
    Reader(
        "synthetic",
        "embedded default: generated on first use into PATH (ImageFolder layout), "
        "6 classes differing only in two small parts",
        read_synthetic,
    )
)
