"""The dataset registry: ``--data KIND=PATH``, the readers registered under each kind, and the split index
a reader returns. No image decoding and no torch here (:mod:`.datasets` wraps a split index in the
Dataset class); the readers themselves live in :mod:`.readers`, one module per layout, and register
themselves when that package is first imported.

May import: errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError

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


_BUILTINS_LOADED = False


def _load_builtin_readers() -> None:
    """Import the reader modules (they register ImageFolder, the native fine-grained layouts and the
    embedded synthetic default) once."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from . import readers  # noqa: F401
