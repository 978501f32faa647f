"""TFLite metadata: our manifest, the standard TFLITE_METADATA flatbuffer and labels.txt in the appended zip."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge_fgic.manifest.tflite_writer import embed_metadata
from edge_fgic.manifest.tflite import (MANIFEST_KEY, TFLITE_METADATA_KEY, read_labels, read_manifest,
                                       read_standard_metadata)

SIZE = 16
CLASSES = ["ant", "honey bee", "čmelák 🐝"]  # spaces and non-ASCII must survive
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MANIFEST = {"schema": "edge-fgic/manifest", "classes": CLASSES, "preprocess": {"mean": list(MEAN)}, "note": "ü"}


@pytest.fixture(scope="module")
def raw_model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A tiny NHWC float classifier (3 classes), converted by litert-torch like the real export (~5 s)."""
    torch = pytest.importorskip("torch")
    litert_torch = pytest.importorskip("litert_torch")

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                           torch.nn.Linear(4, len(CLASSES)))

        def forward(self, x):
            return self.net(x.permute(0, 3, 1, 2))

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tflite") / "tiny.tflite"
    litert_torch.convert(Tiny().eval(), (torch.zeros(1, SIZE, SIZE, 3),)).export(str(path))
    return path.read_bytes()


def _embed(model: bytes, **overrides) -> bytes:
    kwargs = dict(manifest=MANIFEST, classes=CLASSES, input_size=SIZE, mean=MEAN, std=STD, name="tiny-fgic",
                  description="A tiny test classifier.", version="0.1.0", license="Apache-2.0")
    return embed_metadata(model, **{**kwargs, **overrides})


@pytest.fixture(scope="module")
def embedded(raw_model: bytes) -> bytes:
    return _embed(raw_model)


def _metadata_names(model: bytes) -> list[str]:
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAs(model, 0)
    return [m.Metadata(i).Name().decode() for i in range(m.MetadataLength())]


def _run(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def test_manifest_round_trips(embedded: bytes, tmp_path: Path) -> None:
    assert read_manifest(embedded) == MANIFEST
    path = tmp_path / "m.tflite"
    path.write_bytes(embedded)
    assert read_manifest(path) == MANIFEST and read_manifest(str(path)) == MANIFEST


def test_labels_round_trip_as_stored_zip_member(embedded: bytes) -> None:
    assert read_labels(embedded) == CLASSES
    zf = zipfile.ZipFile(io.BytesIO(embedded))
    info = zf.getinfo("labels.txt")
    assert zf.namelist() == ["labels.txt"]
    assert info.compress_type == zipfile.ZIP_STORED  # the Task Library reads associated files uncompressed
    assert zf.read(info).decode("utf-8").split("\n") == CLASSES


def test_standard_metadata_parses_back(embedded: bytes) -> None:
    meta = read_standard_metadata(embedded)
    assert meta is not None
    assert {k: meta[k] for k in ("name", "description", "version", "author", "license", "min_parser_version")} == {
        "name": "tiny-fgic", "description": "A tiny test classifier.", "version": "0.1.0", "author": "edge-fgic",
        "license": "Apache-2.0", "min_parser_version": "1.0.0"}
    inp = meta["input"]
    assert (inp["name"], inp["color_space"], inp["width"], inp["height"]) == ("image", "RGB", SIZE, SIZE)
    # the Task Library normalizes raw 0..255 pixels: the 0..1 mean/std are stored times 255 (as float32)
    np.testing.assert_allclose(inp["mean"], np.float32(np.array(MEAN) * 255), rtol=0, atol=0)
    np.testing.assert_allclose(inp["std"], np.float32(np.array(STD) * 255), rtol=0, atol=0)
    np.testing.assert_allclose(inp["min"], -np.array(MEAN) / np.array(STD), rtol=1e-6)
    np.testing.assert_allclose(inp["max"], (1 - np.array(MEAN)) / np.array(STD), rtol=1e-6)
    out = meta["output"]
    assert (out["name"], out["label_file"]) == ("probability", "labels.txt")
    assert out["score_threshold"] < -1e38  # logits: nothing is filtered out by default
    raw = _standard_bytes(embedded)
    assert raw[4:8] == b"M001"


def _standard_bytes(model: bytes) -> bytes:
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAs(model, 0)
    for i in range(m.MetadataLength()):
        if m.Metadata(i).Name() == TFLITE_METADATA_KEY.encode():
            return m.Buffers(m.Metadata(i).Buffer()).DataAsNumpy().tobytes()
    raise AssertionError("no TFLITE_METADATA entry")


def test_standard_metadata_layout_matches_schema_literals(embedded: bytes) -> None:
    """Re-read with flatbuffers' own Table and field ids / enum values typed in from metadata_schema.fbs,
    independent of the module's constants (a wrong union id there would fool its own reader)."""
    from flatbuffers import number_types as N
    from flatbuffers.table import Table

    def has(t: Table, fid: int) -> int:
        return t.Offset(4 + 2 * fid)

    def sub(t: Table, fid: int) -> Table:
        return Table(t.Bytes, t.Indirect(t.Pos + has(t, fid)))

    def tables(t: Table, fid: int) -> list[Table]:
        o = has(t, fid)
        start = t.Vector(o)
        return [Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(t.VectorLen(o))]

    def u8(t: Table, fid: int) -> int:
        return t.Get(N.Uint8Flags, t.Pos + has(t, fid)) if has(t, fid) else 0

    def text(t: Table, fid: int) -> str:
        return t.String(t.Pos + has(t, fid)).decode()

    raw = bytearray(_standard_bytes(embedded))
    root = Table(raw, N.UOffsetTFlags.py_type(int.from_bytes(raw[:4], "little")))
    assert text(root, 0) == "tiny-fgic" and text(root, 7) == "1.0.0"  # ModelMetadata.name / min_parser_version
    (subgraph,) = tables(root, 3)  # subgraph_metadata
    (tin,), (tout,) = tables(subgraph, 2), tables(subgraph, 3)  # input/output_tensor_metadata
    content = sub(tin, 3)  # TensorMetadata.content
    assert u8(content, 0) == 2  # ContentProperties.ImageProperties
    image = sub(content, 1)
    assert u8(image, 0) == 1  # ColorSpaceType.RGB
    size = sub(image, 1)
    assert size.Get(N.Uint32Flags, size.Pos + has(size, 0)) == SIZE == size.Get(N.Uint32Flags, size.Pos + has(size, 1))
    (unit,) = tables(tin, 4)  # process_units
    assert u8(unit, 0) == 1  # ProcessUnitOptions.NormalizationOptions
    norm = sub(unit, 1)
    assert norm.GetVectorAsNumpy(N.Float32Flags, has(norm, 0)).tolist() == np.float32(np.array(MEAN) * 255).tolist()
    stats = sub(tin, 5)  # Stats: max = 0, min = 1
    smax, smin = (stats.GetVectorAsNumpy(N.Float32Flags, has(stats, i)) for i in (0, 1))
    assert smax[0] > 2 > 0 > smin[0]
    assert u8(sub(tout, 3), 0) == 1  # ContentProperties.FeatureProperties
    (threshold,) = tables(tout, 4)
    assert u8(threshold, 0) == 3  # ProcessUnitOptions.ScoreThresholdingOptions
    (label,) = tables(tout, 6)  # associated_files
    assert text(label, 0) == "labels.txt" and u8(label, 2) == 2  # AssociatedFileType.TENSOR_AXIS_LABELS


def test_interpreter_output_bit_identical(raw_model: bytes, embedded: bytes) -> None:
    x = np.random.default_rng(0).standard_normal((1, SIZE, SIZE, 3)).astype(np.float32)
    before, after = _run(raw_model, x), _run(embedded, x)
    assert before.shape == (1, len(CLASSES)) and np.abs(before).sum() > 0
    assert before.tobytes() == after.tobytes()


def test_weight_buffers_stay_16_byte_aligned(embedded: bytes) -> None:
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAs(embedded, 0)
    starts = [m.Buffers(i)._tab.Vector(m.Buffers(i)._tab.Offset(4)) for i in range(m.BuffersLength())
              if m.Buffers(i).DataLength()]
    assert starts and all(s % 16 == 0 for s in starts)


def test_reembedding_replaces_entries(raw_model: bytes, embedded: bytes) -> None:
    original = _metadata_names(raw_model)
    assert MANIFEST_KEY not in original and TFLITE_METADATA_KEY not in original
    assert _metadata_names(embedded) == original + [MANIFEST_KEY, TFLITE_METADATA_KEY]
    second = dict(manifest={"v": 2}, classes=["x", "y", "z"], version="0.2.0", mean=(0.5,) * 3, std=(0.5,) * 3)
    again = _embed(embedded, **second)
    names = _metadata_names(again)
    assert names.count(MANIFEST_KEY) == 1 and names.count(TFLITE_METADATA_KEY) == 1
    assert names == original + [MANIFEST_KEY, TFLITE_METADATA_KEY]  # other entries are kept, in order
    assert read_manifest(again) == {"v": 2} and read_labels(again) == ["x", "y", "z"]
    meta = read_standard_metadata(again)
    assert meta["version"] == "0.2.0" and meta["input"]["mean"] == [127.5] * 3
    assert zipfile.ZipFile(io.BytesIO(again)).namelist() == ["labels.txt"]
    assert again == _embed(raw_model, **second)  # byte for byte: no leftover buffer, entry or archive


def test_model_without_metadata_reads_none(raw_model: bytes) -> None:
    assert read_manifest(raw_model) is None
    assert read_labels(raw_model) is None
    assert read_standard_metadata(raw_model) is None


def test_rejects_arguments_that_contradict_the_model(raw_model: bytes) -> None:
    with pytest.raises(ValueError, match="classes"):
        _embed(raw_model, classes=["a", "b"])
    with pytest.raises(ValueError, match="NCHW"):
        _embed(raw_model, layout="NCHW")
    with pytest.raises(ValueError, match="size"):
        _embed(raw_model, input_size=SIZE * 2)
    with pytest.raises(ValueError, match="line breaks"):
        _embed(raw_model, classes=["a", "b\nc", "d"])
    with pytest.raises(ValueError, match="TFL3"):
        _embed(b"\0" * 64)


def test_manifest_is_plain_json_in_the_entry(embedded: bytes) -> None:
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAs(embedded, 0)
    entry = next(m.Metadata(i) for i in range(m.MetadataLength()) if m.Metadata(i).Name() == MANIFEST_KEY.encode())
    assert json.loads(m.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode("utf-8")) == MANIFEST
