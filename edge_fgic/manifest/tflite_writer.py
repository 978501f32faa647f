"""Embed metadata in a .tflite flatbuffer without TensorFlow or tflite-support (read back by :mod:`.tflite`).

Three things go in, laid out as tflite-support's ``MetadataPopulator`` does, so Android Studio's
ML Model Binding and the LiteRT Task Library see an image classifier:

* ``Model.metadata["edge_fgic_manifest"]``: our JSON manifest (UTF-8 bytes);
* ``Model.metadata["TFLITE_METADATA"]``: a ``ModelMetadata`` flatbuffer (file identifier ``M001``);
* ``labels.txt`` in an uncompressed zip archive appended after the flatbuffer (the interpreter
  ignores trailing bytes; zip readers find the archive from the end of the file).

Schema followed (field id = declaration order, union type id = member position, NONE = 0):
tensorflow/tflite-support ``tensorflow_lite_support/metadata/metadata_schema.fbs`` (schema 1.2.1;
every field used here exists since 1.0.0). ``min_parser_version`` follows
``tensorflow_lite_support/metadata/cc/metadata_version.cc``: nothing used here is newer than 1.0.0.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import flatbuffers
import flatbuffers.util
import numpy as np
from ai_edge_litert import schema_py_generated as _tfl

from . import dumps
from .tflite import (_AF, _CONTENT_FEATURE, _CONTENT_IMAGE, _CT, _IMG, _METADATA_ID, _MM, _NO_THRESHOLD,
                     _PU, _SG, _STATS, _TENSOR_AXIS_LABELS, _TFLITE_ID, _TM, _UNIT_NORMALIZATION, _UNIT_THRESHOLD,
                     LABEL_FILE, MANIFEST_KEY, MIN_PARSER_VERSION, TFLITE_METADATA_KEY, _zip)

# ----------------------------------------------------------------------------- writing
_SCALAR = {"u8": "PrependUint8Slot", "i8": "PrependInt8Slot", "u32": "PrependUint32Slot", "f32": "PrependFloat32Slot"}


def _table(b: flatbuffers.Builder, nfields: int, *fields: tuple[int, str, Any]) -> int:
    """A table from (slot, kind, value); kind: a key of _SCALAR, 'off' (a built table), 'str', 'floats'
    or 'tables' (built tables). Children are built before the table starts; None and "" are left out."""
    fields = tuple(f for f in fields if f[2] is not None and f[2] != "")
    offs = {}
    for slot, kind, value in fields:
        if kind == "str":
            offs[slot] = b.CreateString(value)
        elif kind in ("floats", "tables"):
            b.StartVector(4, len(value), 4)
            for x in reversed(value):
                if kind == "floats":
                    b.PrependFloat32(float(x))
                else:
                    b.PrependUOffsetTRelative(x)
            offs[slot] = b.EndVector()
    b.StartObject(nfields)
    for slot, kind, value in fields:
        if kind in _SCALAR:
            getattr(b, _SCALAR[kind])(slot, value, 0)
        else:
            b.PrependUOffsetTRelativeSlot(slot, offs.get(slot, value), 0)
    return b.EndObject()


def _metadata_flatbuffer(*, name: str, description: str, version: str, author: str, license: str,
                         input_desc: str, output_desc: str, input_size: int, mean255: list[float],
                         std255: list[float], stats: tuple[list[float], list[float]] | None,
                         embedding_at: int | None = None, embedding_desc: str = "") -> bytes:
    b = flatbuffers.Builder(1024)
    # input: ImageProperties (RGB, default_size), NormalizationOptions, Stats
    size = _table(b, 2, (0, "u32", input_size), (1, "u32", input_size))  # ImageSize
    image = _table(b, 2, (_IMG["color_space"], "i8", 1), (_IMG["default_size"], "off", size))  # 1 = RGB
    content_in = _table(b, 3, (_CT["content_properties_type"], "u8", _CONTENT_IMAGE),
                        (_CT["content_properties"], "off", image))
    norm = _table(b, 2, (0, "floats", mean255), (1, "floats", std255))  # NormalizationOptions
    unit = _table(b, 2, (_PU["options_type"], "u8", _UNIT_NORMALIZATION), (_PU["options"], "off", norm))
    stats_off = None if stats is None else _table(b, 2, (_STATS["max"], "floats", stats[1]),
                                                  (_STATS["min"], "floats", stats[0]))
    tin = _table(b, 7, (_TM["name"], "str", "image"), (_TM["description"], "str", input_desc),
                 (_TM["content"], "off", content_in), (_TM["process_units"], "tables", [unit]),
                 (_TM["stats"], "off", stats_off))
    # output: FeatureProperties, keep-all score threshold, labels.txt as TENSOR_AXIS_LABELS
    label = _table(b, 4, (_AF["name"], "str", LABEL_FILE),
                   (_AF["description"], "str", "Class names, one per line, in output order."),
                   (_AF["type"], "i8", _TENSOR_AXIS_LABELS))
    keep_all = _table(b, 1, (0, "f32", _NO_THRESHOLD))  # ScoreThresholdingOptions
    threshold = _table(b, 2, (_PU["options_type"], "u8", _UNIT_THRESHOLD), (_PU["options"], "off", keep_all))
    content_out = _table(b, 3, (_CT["content_properties_type"], "u8", _CONTENT_FEATURE),
                         (_CT["content_properties"], "off", _table(b, 0)))  # FeatureProperties has no fields
    tout = _table(b, 7, (_TM["name"], "str", "probability"), (_TM["description"], "str", output_desc),
                  (_TM["content"], "off", content_out), (_TM["process_units"], "tables", [threshold]),
                  (_TM["associated_files"], "tables", [label]))
    outs = [tout]
    if embedding_at is not None:  # export --embedding: a second output, metadata in the subgraph's output order
        content_emb = _table(b, 3, (_CT["content_properties_type"], "u8", _CONTENT_FEATURE),
                             (_CT["content_properties"], "off", _table(b, 0)))
        temb = _table(b, 7, (_TM["name"], "str", "embedding"), (_TM["description"], "str", embedding_desc),
                      (_TM["content"], "off", content_emb))
        outs.insert(embedding_at, temb)
    sub = _table(b, 4, (_SG["input_tensor_metadata"], "tables", [tin]),
                 (_SG["output_tensor_metadata"], "tables", outs))
    root = _table(b, 8, (_MM["name"], "str", name), (_MM["description"], "str", description),
                  (_MM["version"], "str", version), (_MM["subgraph_metadata"], "tables", [sub]),
                  (_MM["author"], "str", author), (_MM["license"], "str", license),
                  (_MM["min_parser_version"], "str", MIN_PARSER_VERSION))
    b.Finish(root, file_identifier=_METADATA_ID)
    return bytes(b.Output())


class _AlignedBufferT(_tfl.BufferT):
    """BufferT packed with its data 16-byte aligned, as schema.fbs asks (``force_align: 16``), which the
    generated Python ``Pack`` ignores; the converter's C++ writer honours it, so we keep it."""

    @classmethod
    def of(cls, buf: _tfl.BufferT | None = None, data: bytes | None = None) -> _AlignedBufferT:
        out = cls()
        if buf is not None:
            out.data, out.offset, out.size = buf.data, buf.offset, buf.size
        if data is not None:
            out.data = np.frombuffer(data, dtype=np.uint8)
        return out

    def Pack(self, builder: flatbuffers.Builder) -> int:
        data = None
        if self.data is not None:
            raw = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(raw), 16)
            builder.head -= len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            data = builder.EndVector()
        _tfl.BufferStart(builder)
        if data is not None:
            _tfl.BufferAddData(builder, data)
        _tfl.BufferAddOffset(builder, self.offset)
        _tfl.BufferAddSize(builder, self.size)
        return _tfl.BufferEnd(builder)


def _set_entry(model: _tfl.ModelT, key: str, data: bytes) -> None:
    """Model.metadata[key] -> a buffer holding ``data``: an existing entry is reused, duplicates dropped."""
    entries = [m for m in model.metadata or [] if m.name in (key, key.encode())]
    if entries:
        for dup in entries[1:]:  # empty the buffers of dropped duplicates (indices stay valid)
            model.buffers[dup.buffer] = _AlignedBufferT()
        model.buffers[entries[0].buffer] = _AlignedBufferT.of(data=data)
        model.metadata = [m for m in model.metadata if m is entries[0] or all(m is not e for e in entries)]
        return
    model.buffers.append(_AlignedBufferT.of(data=data))
    entry = _tfl.MetadataT()
    entry.name, entry.buffer = key, len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]


def _logits_position(model: _tfl.ModelT) -> int:
    """Where the logits sit among the subgraph's outputs of a two-output model: the tensor its signature
    names first (litert-torch: output_0 = the module's first output), else the first output."""
    sg = model.subgraphs[0]
    sigs = [o for d in model.signatureDefs or [] for o in d.outputs or []]
    named = sorted(sigs, key=lambda o: (o.name or b"").decode() if isinstance(o.name, bytes) else str(o.name or ""))
    first = named[0].tensorIndex if named else sg.outputs[0]
    return [int(i) for i in sg.outputs].index(int(first)) if int(first) in [int(i) for i in sg.outputs] else 0


def _check_io(model: _tfl.ModelT, input_size: int, n_classes: int, layout: str, outputs: int = 1) -> int:
    """Validate the one input/``outputs`` output signature against the arguments; return the input TensorType."""
    sg = model.subgraphs[0]
    if len(sg.inputs) != 1 or len(sg.outputs) != outputs:
        raise ValueError(f"expected 1 input and {outputs} output tensor(s), got {len(sg.inputs)} and "
                         f"{len(sg.outputs)}")
    tin, tout = sg.tensors[sg.inputs[0]], sg.tensors[sg.outputs[_logits_position(model) if outputs > 1 else 0]]
    ishape = [int(d) for d in (tin.shapeSignature if tin.shapeSignature is not None else tin.shape)]
    want = [3, input_size, input_size] if layout == "NCHW" else [input_size, input_size, 3]
    if len(ishape) != 4 or any(0 < got != w for got, w in zip(ishape[1:], want)):
        raise ValueError(f"input shape {ishape} is not {layout} with size {input_size} and 3 channels")
    oshape = [int(d) for d in tout.shape]
    if not oshape or oshape[-1] != n_classes:
        raise ValueError(f"output shape {oshape} does not end in {n_classes} classes")
    return tin.type


def embed_metadata(model: bytes, *, manifest: dict, classes: list[str], input_size: int,
                   mean: tuple[float, float, float], std: tuple[float, float, float],
                   name: str, description: str, version: str, author: str = "edge-fgic",
                   license: str = "", layout: str = "NHWC", embedding_desc: str = "") -> bytes:
    """Return the .tflite bytes with (a) MANIFEST_KEY holding json.dumps(manifest), (b) a TFLite
    Metadata flatbuffer (file identifier "M001") under TFLITE_METADATA_KEY, and (c) the label file
    `labels.txt` (one class per line) packed as an associated file the way tflite-support's
    MetadataPopulator does (a zip archive appended to the flatbuffer).

    ``mean``/``std`` are on the 0..1 scale (timm); the standard metadata gets them times 255, as the
    Task Library normalizes raw 0..255 pixels. ``embedding_desc``: the model has a second output, the
    embedding (``export --embedding``), described in the metadata next to the logits.

    Everything else in the model is kept (other metadata
    entries, other files already packed); an entry of the same name is replaced, not duplicated.
    """
    model = bytes(model)
    if layout not in ("NHWC", "NCHW"):
        raise ValueError(f"layout must be NHWC or NCHW, got {layout!r}")
    if not classes or any(not c or "\n" in c or "\r" in c for c in classes):
        raise ValueError("classes must be non-empty names without line breaks")
    if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
        raise ValueError("mean and std need 3 values each, std > 0")
    if not flatbuffers.util.BufferHasIdentifier(model, 0, _TFLITE_ID):
        raise ValueError("not a TFLite flatbuffer (file identifier TFL3 missing)")
    m = _tfl.ModelT.InitFromPackedBuf(model, 0)
    for buf in m.buffers or []:
        # ai-edge-quantizer writes its buffers after the flatbuffer (offset/size), even for small models:
        # pull them back inline, since the model is repacked (and the label zip appended) below
        if buf is not None and buf.offset > 1:
            if buf.offset + buf.size > len(model):
                raise ValueError("a buffer points past the end of the model; the file is truncated")
            buf.data = np.frombuffer(model, np.uint8, buf.size, buf.offset).copy()
            buf.offset = buf.size = 0
    in_type = _check_io(m, input_size, len(classes), layout, 2 if embedding_desc else 1)
    logits_at = _logits_position(m) if embedding_desc else 0

    mean255, std255 = [float(x) * 255.0 for x in mean], [float(x) * 255.0 for x in std]
    stats = None  # the range the input tensor sees, as tflite-support's metadata writers record it
    if in_type == _tfl.TensorType.FLOAT32:
        stats = ([-mu / s for mu, s in zip(mean255, std255)], [(255.0 - mu) / s for mu, s in zip(mean255, std255)])
    elif in_type == _tfl.TensorType.UINT8:
        stats = ([0.0], [255.0])
    meta = _metadata_flatbuffer(
        name=name, description=description, version=version, author=author, license=license,
        input_desc=f"RGB image, {layout}, {input_size}x{input_size}, fed as (pixel - mean) / std, pixel in 0..255.",
        output_desc=f"Logits over {len(classes)} classes (not probabilities: apply softmax for those).",
        input_size=input_size, mean255=mean255, std255=std255, stats=stats,
        embedding_at=(1 - logits_at) if embedding_desc else None, embedding_desc=embedding_desc)

    m.buffers = [_AlignedBufferT.of(b) for b in m.buffers or []]
    _set_entry(m, MANIFEST_KEY, dumps(manifest, indent=None).encode("utf-8"))
    _set_entry(m, TFLITE_METADATA_KEY, meta)
    b = flatbuffers.Builder(len(model) + len(meta) + 4096)
    b.Finish(m.Pack(b), file_identifier=_TFLITE_ID)

    out = io.BytesIO()
    out.write(b.Output())
    old = _zip(model)
    # ZipInfo(name): stored (the Task Library reads files in place) and dated 1980-01-01, so output is reproducible
    with zipfile.ZipFile(out, "a") as zf:
        for info in old.infolist() if old is not None else []:
            if info.filename != LABEL_FILE:
                zf.writestr(zipfile.ZipInfo(info.filename), old.read(info))
        zf.writestr(zipfile.ZipInfo(LABEL_FILE), "\n".join(classes).encode("utf-8"))
    return out.getvalue()
