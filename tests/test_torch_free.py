"""Running exported artifacts needs no torch: ``predict``, ``camera`` and ``bench`` of ONNX / TFLite artifacts in a
process where torch, torchvision, timm, NNCF, scipy and matplotlib cannot be imported (a ``sitecustomize`` on
PYTHONPATH installs a ``sys.meta_path`` finder that refuses them, in the CLI and in every worker it starts), with
the same answers as the full environment. And the NumPy + Pillow preprocessing they use is bit-identical to
torchvision's eval transform."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_fgic.data.transforms import PreprocessConfig, center_crop_array, eval_array, eval_transform

BLOCKED = ("torch", "torchvision", "timm", "nncf", "scipy", "matplotlib")
# the prelude every blocked process runs first (Python imports sitecustomize at start-up, children included)
SITECUSTOMIZE = f'''
import sys
BLOCKED = {set(BLOCKED)!r}


class _Blocked:
    """Refuses the build side's packages, as an install without them would."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by tests/test_torch_free.py)", name=name)
        return None


sys.meta_path.insert(0, _Blocked())
'''


@pytest.fixture
def blocked_env(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "blocked-site"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {**os.environ, "PYTHONPATH": str(folder), "EDGE_FGIC_NO_PROGRESS": "1"}


def _cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_fgic", *args], capture_output=True, text=True, timeout=600,
                          env=env or {**os.environ, "EDGE_FGIC_NO_PROGRESS": "1"}, cwd=cwd)


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    return lines[0]


# ------------------------------------------------------------------ fast: preprocessing and imports


def test_numpy_preprocessing_is_bit_identical_to_torchvision():
    rng = np.random.default_rng(17)
    for i in range(120):
        w, h = (int(v) for v in rng.integers(1, 200, 2))
        if i % 4 == 0:  # very thin or tiny images, both orientations
            w = int(rng.integers(1, 12))
        if i % 8 == 0:
            w, h = h, w
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        cfg = PreprocessConfig(input_size=int(rng.integers(4, 160)),
                               interpolation=("bilinear", "bicubic", "nearest")[i % 3],
                               crop_pct=1.0 if i % 5 == 0 else float(rng.uniform(0.3, 1.0)),
                               mean=tuple(rng.uniform(0, 1, 3)), std=tuple(rng.uniform(0.05, 1, 3)))
        ours, theirs = eval_array(img, cfg), eval_transform(cfg)(img).numpy()
        assert ours.dtype == np.float32 and ours.shape == theirs.shape == (3, cfg.input_size, cfg.input_size)
        assert np.array_equal(ours, theirs), (w, h, cfg)
    # already at the resize size (torchvision returns it untouched), and grayscale input converted to RGB
    img = Image.fromarray(rng.integers(0, 256, (36, 32, 3), dtype=np.uint8))
    cfg = PreprocessConfig(input_size=32, crop_pct=1.0)
    assert np.array_equal(eval_array(img, cfg), eval_transform(cfg)(img).numpy())
    gray = img.convert("L")
    assert np.array_equal(eval_array(gray, cfg), eval_transform(cfg)(gray.convert("RGB")).numpy())


def test_center_crop_pads_like_torchvision_when_the_image_is_smaller():
    from torchvision import transforms as T
    rng = np.random.default_rng(3)
    for _ in range(60):
        w, h, size = (int(v) for v in rng.integers(1, 40, 3))
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        assert np.array_equal(center_crop_array(np.asarray(img), size), np.asarray(T.CenterCrop(size)(img)))


def test_running_an_artifact_imports_no_torch():
    code = ("import json, sys; import edge_fgic.predict, edge_fgic.camera, edge_fgic.bench.harness, "
            "edge_fgic.bench.report, edge_fgic.bench.stats, edge_fgic.bench.reference_model, edge_fgic.data.datasets; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_the_blocker_blocks(blocked_env):
    proc = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, env=blocked_env)
    assert proc.returncode == 1 and "blocked by tests/test_torch_free.py" in proc.stderr


def _manifest(target: str, precision: str, checkpoint: str = "/nowhere/best.pt"):
    from edge_fgic.manifest import ArtifactInfo, InputSpec, Manifest
    return Manifest(classes=["a", "b"], input=InputSpec(input_size=8, mean=[0.5] * 3, std=[0.25] * 3),
                    artifact=ArtifactInfo(file="x", target=target, precision=precision),
                    source={"checkpoint": checkpoint, "data": "synthetic=/nowhere"})


def test_without_a_checkpoint_the_fp32_artifact_is_the_reference(tmp_path, monkeypatch):
    from edge_fgic.bench import reference_model as rm
    from edge_fgic.errors import UserError
    monkeypatch.setattr(rm, "have", lambda module: True)  # every runtime "installed", torch too
    files = [tmp_path / n for n in ("m-int8.onnx", "m-fp32.tflite", "m-fp32.xml", "m-fp32.onnx", "m-fp32-trt.onnx")]
    manifests = [_manifest("onnx", "int8"), _manifest("tflite", "fp32"), _manifest("openvino", "fp32"),
                 _manifest("onnx", "fp32"), _manifest("tensorrt", "fp32")]
    # the checkpoint the manifests name is not here: ONNX first, then OpenVINO, then TFLite; int8 never
    for drop, expected in [(None, "m-fp32.onnx"), ("m-fp32.onnx", "m-fp32.xml"), ("m-fp32.xml", "m-fp32.tflite")]:
        if drop:
            i = [f.name for f in files].index(drop)
            del files[i], manifests[i]
        ref = rm.pick_reference("", files, manifests)
        assert (Path(ref.path).name, ref.kind) == (expected, "artifact")
        assert "/nowhere/best.pt is not on this machine" in ref.why and ref.record()["kind"] == "artifact"
    # one whose runtime is installed comes first
    monkeypatch.setattr(rm, "have", lambda module: module != "openvino")
    files, manifests = [tmp_path / "m-fp32.tflite", tmp_path / "m-fp32.xml"], [_manifest("tflite", "fp32"),
                                                                               _manifest("openvino", "fp32")]
    assert Path(rm.pick_reference("", files, manifests).path).name == "m-fp32.tflite"
    # torch missing: a checkpoint that is here cannot be the reference either
    monkeypatch.setattr(rm, "have", lambda module: module != "torch")
    (tmp_path / "best.pt").write_bytes(b"")
    ref = rm.pick_reference("", files, [_manifest("tflite", "fp32", str(tmp_path / "best.pt")), manifests[1]])
    assert ref.kind == "artifact" and "torch is not installed" in ref.why
    with pytest.raises(UserError, match="--reference"):
        rm.pick_reference("", [tmp_path / "m-int8.onnx"], [_manifest("onnx", "int8")])
    with pytest.raises(UserError, match="needs|not installed"):
        rm.pick_reference(str(tmp_path / "best.pt"), files, manifests)


def test_a_reference_artifact_must_be_fp32_with_a_manifest(tmp_path):
    from edge_fgic.bench.reference_model import pick_reference
    from edge_fgic.errors import UserError
    with pytest.raises(UserError, match="no such reference"):
        pick_reference(str(tmp_path / "gone.onnx"), [], [])
    (tmp_path / "plain.onnx").write_bytes(b"\x08")
    with pytest.raises(UserError, match="no edge-fgic manifest"):
        pick_reference(str(tmp_path / "plain.onnx"), [], [])
    (tmp_path / "q.onnx").write_bytes(b"\x08")
    (tmp_path / "q.onnx.json").write_text(_manifest("onnx", "int8").dumps())
    with pytest.raises(UserError, match="int8 artifact cannot be the reference"):
        pick_reference(str(tmp_path / "q.onnx"), [], [])


# ------------------------------------------------------------------ slow: the CLI with torch blocked
# (predict, bench and camera in a real torch-free install, against the full one: tests/test_packaging.py)


def _synth_spec(exports: Path) -> str:
    return json.loads((exports / "m-fp32.onnx.json").read_text())["source"]["data"]


def _bench(env, out: Path, *args: str) -> dict:
    _ok(_cli("bench", *args, "--runs", "10", "--batch", "4", "--threads", "1", "--out", str(out), env=env))
    return json.loads((out / "bench.json").read_text())


def test_bench_without_a_usable_reference_is_one_line(tiny_fp32_exports, tiny_bnrelu_run, blocked_env, tmp_path):
    line = _one_line(_cli("bench", str(tiny_bnrelu_run), "--out", str(tmp_path / "a"), env=blocked_env))
    assert "no FP32 reference" in line and "torch is not installed" in line and "--reference" in line
    line = _one_line(_cli("bench", str(tiny_fp32_exports / "m-fp32.onnx"), "--reference", str(tiny_bnrelu_run),
                          "--out", str(tmp_path / "b"), env=blocked_env))
    assert str(tiny_bnrelu_run) in line and "not installed" in line and "--reference" in line
    # with torch, a device that lacks the checkpoint the manifests name: the FP32 artifact is the reference too
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("m-fp32.onnx", "m-fp32.onnx.json"):
        shutil.copy(tiny_fp32_exports / name, moved / name)
    side = json.loads((moved / "m-fp32.onnx.json").read_text())
    side["source"]["checkpoint"] = str(tmp_path / "elsewhere" / "best.pt")
    (moved / "m-fp32.onnx.json").write_text(json.dumps(side))
    report = _bench(None, tmp_path / "c", str(moved / "m-fp32.onnx"))
    assert report["reference"]["kind"] == "artifact" and "is not on this machine" in report["reference"]["why"]
    assert [r["name"] for r in report["rows"]] == ["reference: m-fp32.onnx"]


def test_onnx_manifest_reads_without_the_onnx_package(tmp_path, monkeypatch):
    """A bare .onnx (no sidecar) in the deploy install: onnxruntime reads the embedded manifest, same dict."""
    import onnx
    from onnx import TensorProto, helper

    from edge_fgic.manifest import onnx as codec
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    want = {"schema": "edge-fgic/manifest", "classes": ["a", "b", "c"], "nested": {"k": [1, 2.5]}}
    model.metadata_props.add(key=codec.MANIFEST_KEY, value=json.dumps(want))
    path = tmp_path / "bare.onnx"
    onnx.save(model, str(path))
    assert codec.read_manifest(path) == want
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError, as in the slim install
    assert codec.read_manifest(path) == want
