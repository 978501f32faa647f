"""The manifest inside a .tflite file, read without TensorFlow or tflite-support.

Three entries, laid out as tflite-support's ``MetadataPopulator`` does (written by
:mod:`.tflite_writer`, through :func:`embed`): ``Model.metadata["edge_fgic_manifest"]`` (our JSON manifest),
``Model.metadata["TFLITE_METADATA"]`` (a ``ModelMetadata`` flatbuffer, file identifier ``M001``) and
``labels.txt`` in an uncompressed zip appended after the flatbuffer. The schema followed is
tensorflow/tflite-support ``metadata_schema.fbs`` (see the writer's docstring). The flatbuffer ``Model``
is parsed with LiteRT's generated schema (``ai_edge_litert``, imported when a file is read); the
metadata table with a minimal reader of our own, so the tests prove the bytes well-formed per the schema.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import flatbuffers.util
import numpy as np

MANIFEST_KEY = "edge_fgic_manifest"  # our own Model.metadata entry: UTF-8 JSON bytes
TFLITE_METADATA_KEY = "TFLITE_METADATA"  # the standard entry tflite-support reads
LABEL_FILE = "labels.txt"
MIN_PARSER_VERSION = "1.0.0"  # metadata_version.cc: no member added after 1.0.0 is used here

_TFLITE_ID, _METADATA_ID = b"TFL3", b"M001"
# metadata_schema.fbs enum and union values
_COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}  # ColorSpaceType
_CONTENT_FEATURE, _CONTENT_IMAGE = 1, 2  # ContentProperties: FeatureProperties, ImageProperties
_UNIT_NORMALIZATION, _UNIT_THRESHOLD = 1, 3  # ProcessUnitOptions: NormalizationOptions, ScoreThresholdingOptions
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
# The Task Library drops scores under ScoreThresholdingOptions.global_score_threshold (0 when absent): with
# logits that hides every negative class by default, so the output carries the lowest float32 instead.
_NO_THRESHOLD = float(np.finfo(np.float32).min)
# field ids (vtable slots) of the tables used, in schema declaration order
_MM = dict(name=0, description=1, version=2, subgraph_metadata=3, author=4, license=5, associated_files=6,
           min_parser_version=7)  # ModelMetadata
_SG = dict(name=0, description=1, input_tensor_metadata=2, output_tensor_metadata=3)  # SubGraphMetadata
_TM = dict(name=0, description=1, dimension_names=2, content=3, process_units=4, stats=5, associated_files=6)
_CT = dict(content_properties_type=0, content_properties=1, range=2)  # Content
_IMG = dict(color_space=0, default_size=1)  # ImageProperties; ImageSize: width=0, height=1
_PU = dict(options_type=0, options=1)  # ProcessUnit; NormalizationOptions: mean=0, std=1
_STATS = dict(max=0, min=1)  # Stats; ScoreThresholdingOptions: global_score_threshold=0
_AF = dict(name=0, description=1, type=2, locale=3)  # AssociatedFile


def _load(path_or_bytes: bytes | bytearray | memoryview | str | os.PathLike) -> bytes:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes)
    return Path(path_or_bytes).read_bytes()


def _zip(buf: bytes) -> zipfile.ZipFile | None:
    try:
        return zipfile.ZipFile(io.BytesIO(buf))
    except zipfile.BadZipFile:
        return None


def _entry(buf: bytes, key: str) -> bytes | None:
    from ai_edge_litert import schema_py_generated as _tfl
    model = _tfl.Model.GetRootAs(buf, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == key.encode():
            data = model.Buffers(entry.Buffer()).DataAsNumpy()  # 0, not an array, when the buffer is empty
            return data.tobytes() if isinstance(data, np.ndarray) else b""
    return None


def read_manifest(path_or_bytes) -> dict | None:
    """Our JSON manifest back from Model.metadata; None if absent."""
    raw = _entry(_load(path_or_bytes), MANIFEST_KEY)
    return None if raw is None else json.loads(raw.decode("utf-8"))


def read_labels(path_or_bytes) -> list[str] | None:
    """The output's label file (``labels.txt``) from the appended zip; None if absent."""
    buf = _load(path_or_bytes)
    name = ((read_standard_metadata(buf) or {}).get("output") or {}).get("label_file") or LABEL_FILE
    zf = _zip(buf)
    if zf is None or name not in zf.namelist():
        return None
    return zf.read(name).decode("utf-8").splitlines()


class _Table:
    """Just enough of a flatbuffer table reader: little-endian, 32-bit (s/u)offsets, 16-bit vtable entries."""

    def __init__(self, buf: bytes, pos: int):
        self.buf, self.pos = buf, pos
        self.vt = pos - struct.unpack_from("<i", buf, pos)[0]

    def _field(self, slot: int) -> int:  # offset of the field from the table start, 0 if absent
        o, vt_size = 4 + 2 * slot, struct.unpack_from("<H", self.buf, self.vt)[0]
        return struct.unpack_from("<H", self.buf, self.vt + o)[0] if o < vt_size else 0

    def _target(self, slot: int) -> int | None:  # where an offset field points
        off = self._field(slot)
        return None if not off else self.pos + off + struct.unpack_from("<I", self.buf, self.pos + off)[0]

    def scalar(self, slot: int, fmt: str, default: int | float = 0) -> int | float:
        off = self._field(slot)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + off)[0] if off else default

    def table(self, slot: int) -> _Table | None:
        p = self._target(slot)
        return None if p is None else _Table(self.buf, p)

    def _vector(self, slot: int) -> tuple[int, int]:  # (first element, length); strings are byte vectors
        p = self._target(slot)
        return (0, 0) if p is None else (p + 4, struct.unpack_from("<I", self.buf, p)[0])

    def string(self, slot: int) -> str | None:
        start, n = self._vector(slot)
        return None if self._target(slot) is None else self.buf[start:start + n].decode("utf-8")

    def floats(self, slot: int) -> list[float]:
        start, n = self._vector(slot)
        return list(struct.unpack_from(f"<{n}f", self.buf, start)) if n else []

    def tables(self, slot: int) -> list[_Table]:
        start, n = self._vector(slot)
        at = [start + 4 * i for i in range(n)]
        return [_Table(self.buf, p + struct.unpack_from("<I", self.buf, p)[0]) for p in at]


def _options(tensor: _Table, unit_type: int) -> _Table | None:
    """The options table of the tensor's first process unit of ``unit_type``."""
    units = [u for u in tensor.tables(_TM["process_units"]) if u.scalar(_PU["options_type"], "B") == unit_type]
    return units[0].table(_PU["options"]) if units else None


def read_standard_metadata(path_or_bytes) -> dict | None:
    """Parse the TFLITE_METADATA flatbuffer far enough to return
    {"name", "description", "version", "author", "license", "min_parser_version",
     "input": {"name", "color_space", "width", "height", "mean": [...], "std": [...], "min", "max"},
     "output": {"name", "label_file", "score_threshold"}}, with a minimal reader of our own so the
    tests prove the bytes are well-formed per the schema. Absent fields are None; None if no entry."""
    raw = _entry(_load(path_or_bytes), TFLITE_METADATA_KEY)
    if raw is None:
        return None
    if not flatbuffers.util.BufferHasIdentifier(raw, 0, _METADATA_ID):
        raise ValueError("TFLITE_METADATA lacks the M001 file identifier")
    root = _Table(raw, struct.unpack_from("<I", raw, 0)[0])
    out: dict[str, Any] = {k: root.string(_MM[k]) for k in
                           ("name", "description", "version", "author", "license", "min_parser_version")}
    out["input"] = out["output"] = None
    sub = (root.tables(_MM["subgraph_metadata"]) or [None])[0]
    if sub is None:
        return out
    for tin in sub.tables(_SG["input_tensor_metadata"])[:1]:
        inp: dict[str, Any] = dict(name=tin.string(_TM["name"]), color_space=None, width=None, height=None)
        content = tin.table(_TM["content"])
        if content is not None and content.scalar(_CT["content_properties_type"], "B") == _CONTENT_IMAGE:
            image = content.table(_CT["content_properties"])
            inp["color_space"] = _COLOR_SPACES.get(image.scalar(_IMG["color_space"], "b"))
            size = image.table(_IMG["default_size"])
            if size is not None:
                inp["width"], inp["height"] = size.scalar(0, "I"), size.scalar(1, "I")
        norm = _options(tin, _UNIT_NORMALIZATION)
        inp["mean"], inp["std"] = (norm.floats(0), norm.floats(1)) if norm else ([], [])
        stats = tin.table(_TM["stats"])
        inp["min"], inp["max"] = (stats.floats(_STATS["min"]), stats.floats(_STATS["max"])) if stats else ([], [])
        out["input"] = inp
    for tout in sub.tables(_SG["output_tensor_metadata"])[:1]:
        labels = [f.string(_AF["name"]) for f in tout.tables(_TM["associated_files"])
                  if f.scalar(_AF["type"], "b") == _TENSOR_AXIS_LABELS]
        threshold = _options(tout, _UNIT_THRESHOLD)
        out["output"] = dict(name=tout.string(_TM["name"]), label_file=labels[0] if labels else None,
                             score_threshold=threshold.scalar(0, "f", 0.0) if threshold else None)
    return out


def embed(path: Path, manifest) -> None:
    """Our manifest + the standard TFLite metadata (labels, normalization) for Android tooling, in place."""
    from .. import __version__
    from .tflite_writer import embed_metadata
    inp = manifest.input
    data = embed_metadata(path.read_bytes(), manifest=manifest, classes=manifest.classes,
                          input_size=int(inp.input_size), mean=tuple(inp.mean), std=tuple(inp.std),
                          name=f"{manifest.model.name} ({manifest.precision})",
                          description=f"Fine-grained image classifier over {len(manifest.classes)} classes "
                                      "(edge-fgic); outputs logits",
                          version=__version__, layout=inp.layout,
                          embedding_desc=_embedding_desc(manifest))
    path.write_bytes(data)


def _embedding_desc(manifest) -> str:
    emb = getattr(manifest, "embedding", None)
    if emb is None:
        return ""
    norm = ", L2-normalised: cosine similarity = dot product" if emb.normalized else ""
    return f"Embedding ({emb.dim} values{norm}) for retrieval or open-set rejection."
