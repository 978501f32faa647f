"""android_demo/: the app's pure Kotlin logic (manifest reader, preprocessing, postprocessing) on a plain JVM,
checked against fixtures that the project's own Python code makes.

* models: tiny runnable .tflite files (one MEAN op, built with the TFLite schema's object API: milliseconds,
  where litert-torch takes seconds) carrying a manifest from ``Manifest.from_checkpoint`` embedded by the exporter's own
  ``embed_tflite``; float32, int8 and uint8 I/O; plus a manifest moved to a file offset, a model without a
  manifest, a non-model, and any real ``runs/*/export/*.tflite`` lying around.
* preprocess: synthetic camera frames (odd sizes, rotations, saturated blocks) fed through ``predict.Classifier``
  (the eval transform the manifest describes) and the LiteRT runner, which quantizes; the tensor it hands the
  interpreter is the expectation.
* postprocess: the runner's raw and dequantized outputs, ``predict.softmax``, plus edge cases.
* artifacts: assets folders as a user fills them (``model.tflite`` and ``model.tflite.json``, copied from an export
  whose sidecar is written as the exporter writes it): as exported, renamed, without the sidecar, with an edited
  byte, with another export's sidecar, with a sidecar that disagrees with the manifest inside, with a manifest that
  disagrees with the model's own tensors. The app's loader must accept or refuse each as recorded, and the
  Python runner (``Runner._check_bytes`` / ``_check_manifest``) must decide as recorded too.

``android_demo/jvm-test.sh`` compiles the logic and its JUnit tests with kotlinc and runs them; the same build
must then fail on a tampered copy of the fixtures, so the Kotlin assertions are shown to bite.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "android_demo" / "jvm-test.sh"
JARS = [Path(os.environ.get("JUNIT_JAR", "/usr/share/java/junit4.jar")),
        Path(os.environ.get("HAMCREST_JAR", "/usr/share/java/hamcrest-core.jar"))]
pytestmark = pytest.mark.skipif(
    not (shutil.which("kotlinc") and shutil.which("java") and all(j.exists() for j in JARS)),
    reason="needs kotlinc, java and JUnit 4 (install: apt-get install kotlin junit4)")

CLASSES = ["ant", "honey bee", "čmelák 🐝"]  # spaces and non-ASCII (json.dumps escapes them as \\u, pairs too)
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
# name, frame (w, h), rotation, input size, crop_pct, interpolation, (mean, std), input/output quantization
CASES = [
    ("float-bilinear-down", (45, 30), 0, 16, 0.875, "bilinear", IMAGENET, None),             # 30 -> 18: antialiased
    ("int8-bicubic-rot90", (45, 30), 90, 16, 0.8, "bicubic", HALF,
     (("int8", 0.013576973229646683, 12), ("int8", 0.019267478957772255, -40))),            # the demo export's I/O
    ("uint8-nearest-rot270-up", (20, 14), 270, 24, 24 / 26, "nearest", HALF,
     (("uint8", 0.01, 128), ("uint8", 0.004, 128))),                                         # 14 -> 26, clamps
    ("float-bicubic-rot180-nocrop", (31, 17), 180, 16, 16 / 17, "bicubic",
     ((0.3, 0.6, 0.1), (0.5, 0.2, 0.3)), None),                                              # no resize; offsets .5
    ("int8-bilinear-up", (12, 9), 0, 16, 0.875, "bilinear", IMAGENET,
     (("int8", 1 / 255, -128), ("int8", 0.05, 3))),
]


# ----------------------------------------------------------------------------- fixture makers
def _tiny_tflite(size: int, io, nchw: bool = False) -> bytes:
    """[1, size, size, 3] -> MEAN over H, W -> [1, 3]: a real model the interpreter runs, built directly
    (``nchw``: [1, 3, size, size], the layout an ONNX-style graph has, which the app must refuse)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    types = {"float32": s.TensorType.FLOAT32, "int8": s.TensorType.INT8, "uint8": s.TensorType.UINT8}

    def tensor(name, shape, dtype, buffer, q=None):
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, types.get(dtype, dtype), buffer
        if q is not None:
            t.quantization = s.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [q[1]], [q[2]]
        return t

    (qin, qout) = io if io else ((("float32",) * 3), (("float32",) * 3))
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.MEAN
    code.version = 2 if qin[0] == "int8" else 1
    axis = s.BufferT()
    axis.data = np.array([2, 3] if nchw else [1, 2], np.int32).view(np.uint8)
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.ReducerOptions, s.ReducerOptionsT()
    sg = s.SubGraphT()
    sg.tensors = [tensor("image", [1, 3, size, size] if nchw else [1, size, size, 3], qin[0], 0, qin if io else None),
                  tensor("axis", [2], s.TensorType.INT32, 1),
                  tensor("logits", [1, 3], qout[0], 0, qout if io else None)]
    sg.inputs, sg.outputs, sg.operators, sg.name = [0], [2], [op], "main"
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [sg], [s.BufferT(), axis]
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _export_like(raw: bytes, path: Path, pre, precision: str, *, classes=CLASSES, tweak=None,
                 unchecked: bool = False) -> dict:
    """What ``edge-fgic export --target tflite`` does after conversion: Manifest.from_checkpoint + embed_tflite.

    Hostile files: ``tweak`` edits the manifest before it is embedded; ``unchecked`` bypasses the embedder's own
    I/O check (class count, input size and layout vs the tensors), as a tool that rewrote a model and kept
    another export's manifest would."""
    from edge_fgic.manifest import Manifest, Quantization
    from edge_fgic.export.tflite_export import _io_quantization
    from edge_fgic.manifest.tflite import embed as embed_tflite

    io = _io_quantization(raw)
    quantized = io["input"]["dtype"] != "float32"
    ckpt = SimpleNamespace(preprocess=pre, metrics={}, model=SimpleNamespace(name="tiny_fgic"), train_config={},
                           classes=list(classes), path="tiny/best.pt", sha256="0" * 64)
    typed = Manifest.from_checkpoint(ckpt, target="tflite", precision=precision, file=path.name, layout="NHWC",
                                     input_dtype=io["input"]["dtype"],
                                     quantization=Quantization(scheme="test", io=io) if quantized else None)
    manifest = typed.to_dict()
    if tweak is not None:
        tweak(manifest)
        typed = Manifest.from_dict(manifest, "tweaked manifest")
    path.write_bytes(raw)
    if unchecked:
        def input_type(m, *_):
            sg = m.subgraphs[0]
            return sg.tensors[sg.inputs[0]].type
        with mock.patch("edge_fgic.manifest.tflite_writer._check_io", input_type):
            embed_tflite(path, typed)
    else:
        embed_tflite(path, typed)
    return manifest


def _write_sidecar(path: Path, manifest: dict) -> Path:
    """The exporter's sidecar (edge_fgic/export/exporter.py ``_export_one``): the manifest + files.sha256/size_bytes."""
    from edge_fgic.manifest import dumps, sidecar_path
    from edge_fgic.fileio import sha256_file

    side = {"sha256": {path.name: sha256_file(path)}, "size_bytes": path.stat().st_size}
    sidecar_path(path).write_text(dumps({**manifest, "files": side}) + "\n", encoding="utf-8")
    return sidecar_path(path)


def _tensors(model: bytes) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    out = {}
    for which, d in (("input", it.get_input_details()[0]), ("output", it.get_output_details()[0])):
        scale, zp = d["quantization"]
        out[which] = (np.dtype(d["dtype"]).name, float(scale), int(zp), [int(x) for x in d["shape"]])
    return out


def _metadata_names(model: bytes) -> list[str]:
    from ai_edge_litert import schema_py_generated as s

    m = s.Model.GetRootAs(model, 0)
    return [m.Metadata(i).Name().decode() for i in range(m.MetadataLength())]


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))  # shortest text that parses back to the same double (float32 values exactly)
    return str(v)


def _tsv(path: Path, records: list[tuple[str | None, dict]]) -> None:
    lines = []
    for name, fields in records:
        if name:
            lines.append(f"case\t{name}")
        for key, value in fields.items():
            values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
            lines.append("\t".join([key, *map(_fmt, values)]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _expected_model(model: bytes, classes, pre_input: dict, precision: str, name: str) -> dict:
    """The spec the app must read: preprocessing as configured, I/O types as the interpreter reports them."""
    t = _tensors(model)
    fields = {"model_name": name, "precision": precision, "classes": classes,
              "input_size": pre_input["input_size"], "resize_size": pre_input["resize_size"],
              "crop_pct": pre_input["crop_pct"], "interpolation": pre_input["interpolation"],
              "mean": pre_input["mean"], "std": pre_input["std"], "layout": "NHWC"}
    for which in ("input", "output"):
        dtype, scale, zp, shape = t[which]
        fields.update({f"{which}_dtype": dtype, f"{which}_scale": scale, f"{which}_zero_point": zp,
                       f"tensor_{which}_shape": shape})
    fields["metadata_names"] = _metadata_names(model)
    return fields


def _frame(w: int, h: int, seed: int) -> np.ndarray:
    """Noise over a gradient, with a white and a black block: bicubic overshoot must clip as Pillow does."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, w)[None, :, None] * np.array([1.0, 0.5, 0.0])
    arr = np.clip(ramp + rng.normal(0, 60, (h, w, 3)), 0, 255).astype(np.uint8)
    arr[: h // 3, : w // 4] = 255
    arr[-(h // 4):, -(w // 3):] = 0
    return arr


class _Recorder:
    """Stands in for the runner's interpreter and keeps the tensors the runner set and got."""

    def __init__(self, interp):
        self.interp, self.sent, self.got = interp, None, None

    def set_tensor(self, index, value):
        self.sent = np.array(value)
        return self.interp.set_tensor(index, value)

    def get_tensor(self, index):
        self.got = np.array(self.interp.get_tensor(index))
        return self.got

    def __getattr__(self, name):
        return getattr(self.interp, name)


def _postprocess_fields(raw: np.ndarray, dtype: str, scale: float, zp: int, logits: np.ndarray, labels) -> dict:
    from edge_fgic.predict import softmax

    probs = softmax(np.asarray(logits, np.float64))
    top = np.argsort(-probs.astype(np.float32), kind="stable")[:3]  # the app sorts float32 probabilities, ties by index
    fields = {"dtype": dtype, "scale": scale, "zero_point": zp, "raw": raw, "labels": labels}
    if dtype != "float32":
        fields["dequantized"] = np.asarray(logits, np.float32)
    return {**fields, "probs": probs, "top": top}


def _build_fixtures(root: Path) -> dict[str, int]:
    from PIL import Image

    from edge_fgic.data.transforms import PreprocessConfig, eval_transform
    from edge_fgic.predict import Classifier

    models, pre_dir, post_dir = root / "models", root / "preprocess", root / "postprocess"
    for d in (models, pre_dir, post_dir):
        d.mkdir(parents=True)
    post: list[tuple[str, dict]] = []
    for i, (name, (w, h), rot, size, crop_pct, interp, (mean, std), io) in enumerate(CASES):
        pre = PreprocessConfig(input_size=size, mean=mean, std=std, interpolation=interp, crop_pct=crop_pct)
        precision = "fp32" if io is None else "int8"
        path = models / f"{name}.tflite"
        manifest = _export_like(_tiny_tflite(size, io), path, pre, precision)
        data = path.read_bytes()
        expected = _expected_model(data, CLASSES, manifest["input"], precision, "tiny_fgic")
        _tsv(path.with_suffix(".expected.tsv"), [(None, expected)])

        frame = _frame(w, h, seed=i)
        upright = Image.fromarray(np.ascontiguousarray(np.rot90(frame, k=-(rot // 90))))
        clf = Classifier(path)  # reads the embedded manifest, as `edge-fgic predict` would
        assert clf.preprocess.resize_size == manifest["input"]["resize_size"]
        x = clf.to_input([upright])  # NCHW float32, the eval transform
        rec = _Recorder(clf.runner.interp)
        clf.runner.interp = rec
        logits = clf.runner.predict(x)[0]  # NHWC, quantized by the runner when the input is int8/uint8
        tv = eval_transform(clf.preprocess)  # torchvision's, the reference the NumPy path matches bit for bit
        rgb = np.asarray(tv.transforms[1](tv.transforms[0](upright)))  # Resize, CenterCrop
        dtype, scale, zp, _ = _tensors(data)["input"]
        fields = {"model": path.name, "width": w, "height": h, "rotation": rot, "rgb": frame.tobytes().hex(),
                  "expected_rgb": rgb.tobytes().hex(), "expected_float": x[0].transpose(1, 2, 0).ravel()}
        if dtype != "float32":
            fields["expected_quantized"] = rec.sent.ravel().astype(int)
        _tsv(pre_dir / f"{name}.tsv", [(None, fields)])
        odtype, oscale, ozp, _ = _tensors(data)["output"]
        raw = rec.got.ravel().astype(int) if odtype != "float32" else rec.got.ravel()
        post.append((name, _postprocess_fields(raw, odtype, oscale, ozp, logits, CLASSES)))

    # the float manifest stored outside the flatbuffer (Buffer.offset/size, as for models over 2 GB)
    base = (models / f"{CASES[0][0]}.tflite").read_bytes()
    moved = models / "offset-buffer.tflite"
    moved.write_bytes(_manifest_at_offset(base))
    lines = (models / f"{CASES[0][0]}.expected.tsv").read_text(encoding="utf-8").splitlines()
    names = "\t".join(["metadata_names", *_metadata_names(moved.read_bytes())])
    moved.with_suffix(".expected.tsv").write_text(
        "\n".join(names if ln.startswith("metadata_names\t") else ln for ln in lines) + "\n", encoding="utf-8")
    # refusals
    (models / "no-manifest.tflite").write_bytes(_tiny_tflite(16, None))
    refusal = "not an edge-fgic export: re-export with `edge-fgic export --target tflite`"  # the app's exact words
    _tsv(models / "no-manifest.expected.tsv", [(None, {"error": refusal})])
    (models / "not-a-model.tflite").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    _tsv(models / "not-a-model.expected.tsv", [(None, {"error": "not a TFLite model"})])
    real = _real_exports(models)
    artifacts = _artifact_cases(root, real)

    labels = ["a", "b", "c", "d", "e"]
    for name, dtype, scale, zp, raw in [
        ("large-logits", "float32", 0.0, 0, np.array([1000, 999, -1000, 998.5, 0], np.float32)),
        ("ties", "float32", 0.0, 0, np.array([1, 3, 3, 0, 3], np.float32)),
        ("int8-full-range", "int8", 0.019267478957772255, -40, np.array([-128, 127, 0, -40, 126])),
        ("uint8-full-range", "uint8", 0.1, 128, np.array([0, 255, 128, 127, 200])),
    ]:
        logits = raw if dtype == "float32" else (raw.astype(np.float32) - zp) * scale  # LiteRTRunner._run
        post.append((name, _postprocess_fields(raw, dtype, scale, zp, logits, labels)))
    _tsv(post_dir / "cases.tsv", post)
    return {"models": len(CASES) + 3 + len(real), "preprocess": len(CASES), "postprocess": len(post),
            "artifacts": artifacts}


def _manifest_at_offset(model: bytes) -> bytes:
    """The same model with the manifest's bytes after the flatbuffer, found through Buffer.offset/size."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(model, 0)
    entry = next(e for e in m.metadata if e.name in (b"edge_fgic_manifest", "edge_fgic_manifest"))
    buf = m.buffers[entry.buffer]
    data = np.asarray(buf.data, np.uint8).tobytes()
    buf.data, buf.size = None, len(data)

    def pack(offset: int) -> bytes:
        buf.offset = offset
        b = flatbuffers.Builder(len(model))
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    first = pack(2)  # any value > 1 gives the layout; the real offset only changes the field's value
    at = -(-len(first) // 16) * 16
    out = pack(at)
    assert len(out) == len(first)
    moved = s.Model.GetRootAs(out, 0).Buffers(entry.buffer)
    assert moved.DataLength() == 0 and moved.Offset() == at and moved.Size() == len(data)
    return out + bytes(at - len(out)) + data


def _real_exports(models: Path) -> list[tuple[str, bytes, str]]:
    """Extra cases when exports lie in runs/*/export (a demo was run here): one per (precision, input dtype),
    taken only when the copy's SHA-256 is the one its sidecar records (runs/ may be rewritten meanwhile).
    Returns (case name, model bytes, sidecar text) of each, for the artifact cases."""
    import hashlib
    import json

    seen, taken = set(), []
    for path in sorted(ROOT.glob("runs/*/export/*.tflite")):
        side = path.with_name(path.name + ".json")
        try:
            text = side.read_text(encoding="utf-8")
            m = json.loads(text)
            key = (m["artifact"]["precision"], m["input"]["dtype"])
            want = m["files"]["sha256"][path.name]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if key in seen:
            continue
        dest = models / f"real-{path.parent.parent.name}-{path.name}"
        shutil.copyfile(path, dest)
        data = dest.read_bytes()
        if hashlib.sha256(data).hexdigest() != want:
            dest.unlink()
            continue
        fields = _expected_model(data, m["classes"], m["input"], m["artifact"]["precision"], m["model"]["name"])
        _tsv(dest.with_suffix(".expected.tsv"), [(None, fields)])
        seen.add(key)
        taken.append((dest.stem, data, text))
    return taken


def _accepted(source: str, manifest: dict, note: list[str] | None = None) -> dict:
    fields = {"outcome": "accepted", "source": source, "classes": manifest["classes"],
              "input_size": manifest["input"]["input_size"]}
    return {**fields, "note": note} if note else fields


def _refused(file: str, *contains: str) -> dict:
    return {"outcome": "refused", "file": file, "contains": list(contains)}


def _artifact_cases(root: Path, real: list[tuple[str, bytes, str]]) -> int:
    """Assets folders (artifacts/<case>/) with what the app must do with each, and what the Python runner does
    (``python``: where the two differ, the app is the stricter one, since it feeds the model by its manifest)."""
    import json

    from edge_fgic.data.transforms import PreprocessConfig
    from edge_fgic.fileio import sha256_file

    arts, exports = root / "artifacts", root / "exports"
    arts.mkdir()
    exports.mkdir()
    _, _, _, size, crop_pct, interp, (mean, std), io = CASES[1]  # int8 I/O, the demo export's scales
    pre = PreprocessConfig(input_size=size, mean=mean, std=std, interpolation=interp, crop_pct=crop_pct)
    f_size, f_crop, f_interp, (f_mean, f_std) = CASES[0][3], CASES[0][4], CASES[0][5], CASES[0][6]
    pre_fp32 = PreprocessConfig(input_size=f_size, mean=f_mean, std=f_std, interpolation=f_interp, crop_pct=f_crop)

    def export(stem: str, *, raw: bytes | None = None, p=pre, precision="int8", folder: Path = exports, **kw):
        """An export as `edge-fgic export` leaves it: folder/stem.tflite + folder/stem.tflite.json."""
        folder.mkdir(exist_ok=True)
        path = folder / f"{stem}.tflite"
        m = _export_like(raw if raw is not None else _tiny_tflite(size, io), path, p, precision, **kw)
        return path, _write_sidecar(path, m), m

    def case(name: str, model, sidecar, expect: dict, python: str, as_name: str = "model.tflite") -> None:
        """The user's copy step: `cp X.tflite assets/model.tflite && cp X.tflite.json assets/model.tflite.json`."""
        d = arts / name
        d.mkdir()
        (d / as_name).write_bytes(model.read_bytes() if isinstance(model, Path) else model)
        if sidecar is not None:
            (d / f"{as_name}.json").write_bytes(sidecar.read_bytes() if isinstance(sidecar, Path) else sidecar)
        _tsv(d / "expected.tsv", [(None, {"model": as_name, **expect, "python": python})])

    def sidecar_for(model: Path, manifest: dict, stem: str = "student-int8") -> Path:
        """`manifest`'s sidecar, hashing `model`'s bytes (as if that export had produced this very file)."""
        folder = exports / f"mixed-{model.stem}"
        folder.mkdir()
        copy = folder / f"{stem}.tflite"
        shutil.copyfile(model, copy)
        return _write_sidecar(copy, manifest)

    student, student_side, m = export("student-int8")
    note = ["no model.tflite.json: using the manifest inside model.tflite", "copy the sidecar too"]
    case("as-exported", student, student_side, _accepted("student-int8.tflite.json", m), "accepted",
         as_name="student-int8.tflite")
    case("renamed", student, student_side, _accepted("model.tflite.json", m), "accepted")
    case("no-sidecar", student, None, _accepted("embedded", m, note), "accepted")

    data = student.read_bytes()
    at = data.index(b'"tiny_fgic"') + 1  # inside the embedded manifest: still valid JSON, still a model
    edited = data[:at] + b"T" + data[at + 1:]
    got, want = hashlib.sha256(edited).hexdigest(), sha256_file(student)
    case("edited-byte", edited, student_side,
         _refused("model.tflite", "its bytes differ from model.tflite.json", f"sha256 {got[:12]}… vs {want[:12]}…",
                  "re-export it, or copy the sidecar that belongs to this file"), "refused")
    case("edited-byte-no-sidecar", edited, None, _accepted("embedded", m, note), "accepted")

    fp32, fp32_side, mf = export("student-fp32", raw=_tiny_tflite(f_size, None), p=pre_fp32, precision="fp32")
    case("renamed-fp32", fp32, fp32_side, _accepted("model.tflite.json", mf), "accepted")
    case("sidecar-of-another-export", student, fp32_side,
         _refused("model.tflite", "its bytes differ from model.tflite.json",
                  "recorded at export for student-fp32.tflite",
                  "copy the sidecar that belongs to this file"), "refused")

    # the sidecar hashes these very bytes, but the manifest inside is another export's
    reversed_, _, _ = export("reversed", classes=CLASSES[::-1])
    case("other-export-classes", reversed_, sidecar_for(reversed_, m),
         _refused("model.tflite", "model.tflite.json and the manifest inside the model disagree on classes",
                  f'entry 0: sidecar "{CLASSES[0]}", inside "{CLASSES[-1]}"',
                  "copy the sidecar that belongs to this file"),
         "refused")
    shifted = PreprocessConfig(input_size=size, mean=(0.4, 0.5, 0.5), std=std, interpolation=interp, crop_pct=crop_pct)
    other_mean, _, _ = export("other-mean", p=shifted)
    case("other-export-input", other_mean, sidecar_for(other_mean, m),
         _refused("model.tflite", "disagree on input", "mean: sidecar [0.5, 0.5, 0.5], inside [0.4, 0.5, 0.5]"),
         "refused")

    # manifests (sidecar and embedded agreeing) that do not fit the model's own tensors
    fit = "model.tflite.json does not fit the model's own tensors"
    four, four_side, _ = export("four-classes", classes=[*CLASSES, "wasp"], unchecked=True)
    case("class-count", four, four_side,
         _refused("model.tflite", fit, "the manifest names 4 classes, the model outputs 3 (output shape [1, 3])",
                  "use the export's own manifest: re-export it"), "refused")
    case("class-count-no-sidecar", four, None,
         _refused("model.tflite", "the manifest inside model.tflite does not fit the model's own tensors",
                  "the manifest names 4 classes, the model outputs 3"), "refused")
    big = PreprocessConfig(input_size=20, mean=mean, std=std, interpolation=interp, crop_pct=crop_pct)
    size20, size20_side, _ = export("input-20", p=big, unchecked=True)
    case("input-size", size20, size20_side,
         _refused("model.tflite", fit, "the manifest says input 20x20, the model takes 16x16 (shape [1, 16, 16, 3])"),
         "refused")
    nchw, nchw_side, _ = export("nchw", raw=_tiny_tflite(size, io, nchw=True), unchecked=True)
    case("nchw", nchw, nchw_side,
         _refused("model.tflite", fit,
                  "the manifest says input NHWC [1, 16, 16, 3], the model takes NCHW [1, 3, 16, 16]"),
         "refused")

    def zp(man):
        man["quantization"]["io"]["input"]["zero_point"] += 1

    def as_float(man):
        man["quantization"] = None
        man["input"]["dtype"] = man["output"]["dtype"] = "float32"

    zp_path, zp_side, _ = export("zero-point", tweak=zp)
    case("zero-point", zp_path, zp_side,
         _refused("model.tflite", fit, "the manifest says input scale/zero-point (", ", 13)"),
         "accepted")  # Python quantizes with the interpreter's own scale/zero-point
    fl_path, fl_side, _ = export("dtype", tweak=as_float)
    case("dtype", fl_path, fl_side,
         _refused("model.tflite", fit, "the manifest says input dtype float32, the model's is int8",
                  "the manifest says output dtype float32, the model's is int8"),
         "accepted")  # Python: the interpreter's

    # broken sidecars
    text = student_side.read_text(encoding="utf-8")
    no_hash = {k: v for k, v in json.loads(text).items() if k != "files"}
    case("sidecar-no-hash", student, json.dumps(no_hash).encode(),
         _refused("model.tflite.json", "records no sha256 for student-int8.tflite",
                  "delete it to use the manifest inside model.tflite"), "accepted")  # Python skips the byte check
    case("sidecar-not-json", student, text[: len(text) // 2].encode(),
         _refused("model.tflite.json", "not a valid manifest (invalid JSON at offset"), "refused")
    companion = json.loads(text)
    companion["files"]["sha256"]["student-int8.labels.txt"] = "0" * 64
    case("sidecar-companion", student, json.dumps(companion).encode(),
         _refused("model.tflite.json", "lists student-int8.labels.txt beside student-int8.tflite"), "refused")
    # a model without an embedded manifest, vouched for by its sidecar's hash (Python: the sidecar speaks)
    bare = exports / "bare.tflite"
    bare.write_bytes(_tiny_tflite(size, io))
    case("sidecar-without-embedded", bare, sidecar_for(bare, m),
         _accepted("model.tflite.json", m, ["model.tflite carries no manifest of its own: using model.tflite.json"]),
         "accepted")

    for name, model, side in real:  # real exports, copied as the README says
        case(name, model, side.encode("utf-8"), _accepted("model.tflite.json", json.loads(side)), "accepted")
    return sum(1 for _ in arts.iterdir())


# ----------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("torchvision")
    root = tmp_path_factory.mktemp("android_fixtures")
    return root, _build_fixtures(root)


@pytest.fixture(scope="module")
def jvm_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jvm_build")  # compiled once per session, reused by the second run


def _jvm_test(fixture_dir: Path, build: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDGE_FGIC_FIXTURES": str(fixture_dir), "JVM_TEST_BUILD": str(build)}
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)


def test_kotlin_logic_matches_the_python_side(fixtures, jvm_build):
    root, counts = fixtures
    run = _jvm_test(root, jvm_build)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert re.search(r"^OK \(\d+ tests\)$", run.stdout, re.M), out[-3000:]
    for what, n in counts.items():  # every fixture was read, none skipped
        assert f"[fixtures] {what}: {n} checked" in run.stdout, out[-3000:]


def test_kotlin_tests_fail_on_tampered_fixtures(fixtures, jvm_build, tmp_path):
    """One off-by-one per fixture kind must turn the run red, in exactly the test that owns it."""
    root, _ = fixtures
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)

    def edit(path: Path, key: str, change) -> None:
        lines = path.read_text(encoding="utf-8").splitlines()
        i = next(i for i, ln in enumerate(lines) if ln.startswith(key + "\t"))
        parts = lines[i].split("\t")
        parts[1] = change(parts[1])
        lines[i] = "\t".join(parts)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    edit(bad / "models" / "int8-bicubic-rot90.expected.tsv", "input_zero_point", lambda v: str(int(v) + 1))
    edit(bad / "preprocess" / "int8-bicubic-rot90.tsv", "expected_quantized", lambda v: str(int(v) + 1))
    edit(bad / "postprocess" / "cases.tsv", "probs", lambda v: repr(float(v) + 1e-5))
    # the edited model byte undone: the file is the export again, so the refusal the case records cannot happen
    shutil.copyfile(bad / "artifacts" / "renamed" / "model.tflite", bad / "artifacts" / "edited-byte" / "model.tflite")
    run = _jvm_test(bad, jvm_build)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-3000:]
    assert "Failures: 4" in run.stdout, out[-3000:]
    for test in ("exportedModelsReadBackAsPythonWroteThem", "matchesTheProjectsEvalTransform",
                 "matchesPythonOnKnownOutputs", "artifactsAreCheckedBeforeTheyRun"):
        assert test in run.stdout, out[-3000:]


def test_python_runner_decides_the_artifact_cases_as_recorded(fixtures):
    """The Python side (Runner._check_bytes / _check_manifest) on the same assets folders: the app refuses every
    file Python refuses; it refuses a few more (it feeds the model by its manifest's dtype and scale/zero-point,
    and a sidecar without hashes cannot vouch for the bytes), and those are recorded as such."""
    from edge_fgic.errors import UserError
    from edge_fgic.runtime.litert_runner import LiteRTRunner

    root, _ = fixtures
    seen = 0
    for d in sorted(p for p in (root / "artifacts").iterdir() if p.is_dir()):
        fields = dict(line.split("\t", 1) for line in (d / "expected.tsv").read_text(encoding="utf-8").splitlines())
        try:
            LiteRTRunner(d / fields["model"], threads=1)
            got = "accepted"
        except UserError as exc:
            got, why = "refused", str(exc)
            assert "\n" not in why and str(d) in why, why
        assert got == fields["python"], f"{d.name}: Python {got}, recorded {fields['python']}"
        if fields["python"] == "refused":
            assert fields["outcome"] == "refused", d.name
        seen += 1
    assert seen >= 17
