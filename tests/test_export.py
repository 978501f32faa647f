"""Export: every target x precision is a real round trip through its own runtime on tiny models
(32 px), the manifest is inside and beside each artifact, and bad input writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge_fgic.cli import app
from edge_fgic.errors import UserError
from edge_fgic.export.exporter import ExportConfig, export
from edge_fgic.manifest import read_embedded, read_manifest, sidecar_path
from edge_fgic.export.profiles import list_profiles, load_profile
from edge_fgic.targets import TARGETS
from edge_fgic.fileio import sha256_file
from edge_fgic.runtime import open_runner
from edge_fgic.runtime.tensorrt_runner import tensorrt_available

runner = CliRunner()


def _one_line(result) -> str:
    """A refusal as users must see it: exit 2 (not 3, a bug shown as one line), the last line says why."""
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2 and lines and lines[-1].startswith("error:"), result.output
    assert "Traceback" not in result.output
    return lines[-1]


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _assert_artifact(path: Path, target: str, precision: str, classes_n: int) -> dict:
    side = json.loads(sidecar_path(path).read_text())
    assert side["artifact"] == {"file": path.name, "target": target, "precision": precision}
    assert len(side["classes"]) == classes_n and side["input"]["input_size"] == 32
    assert side["round_trip"]["passed"] and side["round_trip"]["images"] > 0
    assert side["files"]["sha256"][path.name] == sha256_file(path)  # the sidecar describes the final bytes
    embedded = read_embedded(path)
    assert embedded is not None, f"{path.name}: no manifest inside the artifact"
    assert {k: v for k, v in side.items() if k != "files"} == embedded.to_dict()
    return side


@pytest.fixture(scope="module")
def fp32_exports(tiny_bnrelu_run, tmp_path_factory):
    """`edge-fgic export --target all` (FP32) through the CLI: every target this machine can build."""
    out = tmp_path_factory.mktemp("exp") / "fp32"
    r = runner.invoke(app, ["export", "-m", str(tiny_bnrelu_run), "--target", "all", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out, r.output


def test_target_all_exports_and_proves_every_target(fp32_exports, tiny_bnrelu_run):
    out, output = fp32_exports
    names = _visible(out)
    assert not [n for n in names if n.startswith(".")], names  # no temp leftovers
    for target, fname in [("onnx", "run-fp32.onnx"), ("tensorrt", "run-fp32-trt.onnx"), ("tflite", "run-fp32.tflite"),
                          ("openvino", "run-fp32.xml")]:
        side = _assert_artifact(out / fname, target, "fp32", 6)
        assert side["round_trip"]["agreement"] == 100.0 and side["round_trip"]["max_rel_diff"] < 1e-3
        assert side["source"]["sha256"] == sha256_file(tiny_bnrelu_run)
    assert (out / "run-fp32.bin").is_file() and (out / "run-fp32.trtexec.sh").is_file()
    assert "--stronglyTyped" in (out / "run-fp32.trtexec.sh").read_text()
    if not tensorrt_available()[0]:
        assert "engine not built here" in output and "trtexec.sh" in output


def test_artifacts_run_in_their_runtime_on_their_own_manifest(fp32_exports, tiny_synth):
    """The readers' path: open an artifact by suffix, preprocessing from its manifest only."""
    out, _ = fp32_exports
    from edge_fgic.data.datasets import open_split
    from edge_fgic.data.transforms import PreprocessConfig, eval_transform
    outs = {}
    for fname in ["run-fp32.onnx", "run-fp32.tflite", "run-fp32.xml"]:
        run = open_runner(out / fname, threads=1)
        m = run.manifest
        pre = PreprocessConfig(**m.input.preprocess())
        ds = open_split(f"synthetic={tiny_synth}", "test", eval_transform(pre), progress=False)
        x = np.stack([ds[i][0].numpy() for i in range(len(ds))])
        outs[fname] = run.predict(x)  # a batch of 6 through batch-1 artifacts
        assert outs[fname].shape == (6, len(m.classes))
    a, b, c = outs.values()
    assert np.abs(a - b).max() < 1e-3 and np.abs(a - c).max() < 1e-3


def test_tflite_carries_android_metadata_and_builtin_ops_only(fp32_exports):
    from edge_fgic.manifest.tflite import read_labels, read_standard_metadata
    out, _ = fp32_exports
    path = out / "run-fp32.tflite"
    side = read_manifest(path)
    assert read_labels(path) == side.classes
    std = read_standard_metadata(path)
    assert std["input"]["width"] == 32 and np.allclose(std["input"]["mean"], [127.5] * 3)  # mean 0.5 on the 0-255 scale
    assert side.input.layout == "NHWC" and side.export["options"]["builtin_ops_only"]
    assert not [o for o in side.export["options"]["ops"] if o.startswith("Flex")]


CASES = [("onnx", "fp16", "fp32"), ("openvino", "fp16", "fp32"), ("tflite", "fp16", "fp32"),
         ("tensorrt", "fp16", "fp32"),
         ("onnx", "int8", "unsigned"), ("openvino", "int8", "unsigned"), ("tflite", "int8", "signed"),
         ("tensorrt", "int8", "signed")]


def _assert_nncf_ranges_carried(path: Path, carried: dict) -> None:
    """Every NNCF activation quantizer's range is the int8 grid of its TFLite tensor: no recalibration."""
    from ai_edge_litert.interpreter import Interpreter
    assert carried["carried"] == carried["nncf_activation_quantizers"] > 0 and carried["unmatched"] == [], carried
    interp = Interpreter(model_path=str(path))
    by_name = {d["name"]: d for d in interp.get_tensor_details()}
    for t in carried["tensors"]:
        low, high = t["range"]
        scale, zp = by_name[t["tensor"]]["quantization"]
        assert scale == pytest.approx((high - low) / 255, rel=1e-5), t
        assert zp == round(-128 - low / ((high - low) / 255)), t  # signed NNCF quantizer: zero-point 0


@pytest.mark.parametrize("target,precision,source", CASES, ids=[f"{t}-{p}" for t, p, _ in CASES])
def test_export_matrix_round_trips(target, precision, source, tiny_bnrelu_run, ptq_signed, ptq_unsigned, tmp_path):
    model = {"fp32": tiny_bnrelu_run, "signed": ptq_signed / "best.pt", "unsigned": ptq_unsigned / "best.pt"}[source]
    # int8 is judged on all 36 train images; one flipped near-tie of a 2-epoch model is 2.8 %
    kw = dict(split="train", check_images=0, min_agreement=85.0) if precision == "int8" else {}
    res = export(ExportConfig(model=str(model), target=target, precision=precision, out=str(tmp_path), name="m", **kw),
                 progress=False)
    assert res[0].status == "ok", res
    side = _assert_artifact(Path(res[0].artifact), target, precision, 6)
    rt = side["round_trip"]
    if precision == "int8":
        q = side["quantization"]
        assert q["calibration"]["images"] == 20 and q["per_channel_weights"]
        assert rt["agreement"] >= 85.0
    if target == "tensorrt" and precision == "int8":
        assert q["details"]["tensorrt_rule_violations"] == 0
    if target == "tflite" and precision == "int8":
        assert side["input"]["dtype"] == "int8" and q["io"]["input"]["dtype"] == "int8"
        assert side["output"]["dtype"] == q["io"]["output"]["dtype"] == "int8"  # what the Android app dequantizes
        _assert_nncf_ranges_carried(Path(res[0].artifact), q["details"]["activation_ranges"])
    if target == "onnx" and precision == "int8":
        assert side["quantization"]["details"]["graph"]["ops"].get("QuantizeLinear", 0) > 0
    assert not [n for n in _visible(tmp_path) if n.startswith(".")]


def test_dynamic_batch_onnx_takes_any_batch(tiny_bnrelu_run, tmp_path):
    res = export(ExportConfig(model=str(tiny_bnrelu_run), target="onnx", out=str(tmp_path), name="d",
                              dynamic_batch=True), progress=False)
    run = open_runner(res[0].artifact)
    assert run.batch is None and run.predict(np.zeros((5, 3, 32, 32), np.float32)).shape == (5, 6)


@pytest.mark.gpu
@pytest.mark.skipif(not tensorrt_available()[0], reason=f"TensorRT engine build: {tensorrt_available()[1]}")
def test_tensorrt_engine_builds_and_round_trips(tiny_bnrelu_run, ptq_signed, tmp_path):
    for model, precision in [(tiny_bnrelu_run, "fp16"), (ptq_signed / "best.pt", "int8")]:
        res = export(ExportConfig(model=str(model), target="tensorrt", precision=precision, out=str(tmp_path), name="e",
                                  split="train", check_images=0, min_agreement=85.0), progress=False)
        engine = [r for r in res if r.artifact.endswith(".engine")]
        assert engine and engine[0].status == "ok" and engine[0].round_trip["passed"]


# ---------------------------------------------------------------- bad input: one line, nothing written


def test_refusals_are_one_line_and_write_nothing(tiny_bnrelu_run, ptq_signed, ptq_unsigned, tmp_path):
    out = tmp_path / "out"
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    bad_profile = tmp_path / "p.yaml"
    bad_profile.write_text("device: jetson-tx3\n")
    cases = [
        (["-m", str(tiny_bnrelu_run), "-p", "int8"], "quantize"),                       # never quantized
        (["-m", str(ptq_signed / "best.pt"), "-p", "fp32"], "INT8 checkpoint"),        # INT8 asked for FP32
        (["-m", str(junk)], str(junk)),                                                 # not our checkpoint
        (["-m", str(tiny_bnrelu_run), "--profile", "jetson-tx3"], "no such profile"),
        (["-m", str(tiny_bnrelu_run), "--profile", str(bad_profile)], "unknown device"),
        # uint8 Q/DQ is not TensorRT-legal
        (["-m", str(ptq_unsigned / "best.pt"), "-p", "int8", "-t", "tensorrt"], "--signed"),
        (["-m", str(tiny_bnrelu_run), "-p", "fp16", "--max-rel-diff", "0"], "round trip"),    # beyond tolerance
    ]
    for args, needle in cases:
        r = runner.invoke(app, ["export", *args, "--out", str(out)])
        assert needle in _one_line(r), (args, r.output)
        assert _visible(out) == [], (args, _visible(out))


def test_existing_artifact_needs_overwrite(tiny_bnrelu_run, tmp_path):
    args = ["export", "-m", str(tiny_bnrelu_run), "--out", str(tmp_path), "--name", "x"]
    assert runner.invoke(app, args).exit_code == 0
    before = sha256_file(tmp_path / "x-fp32.onnx")
    assert "--overwrite" in _one_line(runner.invoke(app, args))
    assert sha256_file(tmp_path / "x-fp32.onnx") == before
    r = runner.invoke(app, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output


def test_a_converter_failing_midway_leaves_nothing(tiny_bnrelu_run, tmp_path, monkeypatch):
    import edge_fgic.export.onnx_export as onnx_export

    def broken(model, path, *a, **k):
        Path(path).write_bytes(b"half an onnx file")
        raise RuntimeError("converter crashed")
    monkeypatch.setattr(onnx_export, "export_float", broken)
    r = runner.invoke(app, ["export", "-m", str(tiny_bnrelu_run), "--out", str(tmp_path / "o")])
    assert "converter crashed" in _one_line(r)
    assert _visible(tmp_path / "o") == []


def test_corrupt_artifacts_and_unknown_suffixes_are_one_line(tmp_path):
    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="cannot load"):
        open_runner(bad)
    with pytest.raises(UserError, match="not an artifact"):
        open_runner(tmp_path / "m.pb")


# ---------------------------------------------------------------- table and profiles


def test_target_table_drives_the_cli_and_lists_every_target():
    """`export --target` takes every row of the table and `all`, and refuses a name the table lacks;
    `--precision` takes every precision of the table. Parsed by the real command, nothing run."""
    import click
    import typer

    from edge_fgic.targets import PRECISIONS
    group = typer.main.get_command(app)
    cmd = group.get_command(click.Context(group), "export")

    def parsed(*args: str) -> dict:
        return cmd.make_context("export", ["-m", "x.pt", *args]).params

    def value(v):
        return getattr(v, "value", v)  # typer hands the command an Enum member
    for name in [*TARGETS, "all"]:
        assert value(parsed("--target", name)["target"]) == name
    for p in PRECISIONS:
        assert value(parsed("--precision", p)["precision"]) == p
    for unknown in (["--target", "coreml"], ["--precision", "int4"]):
        with pytest.raises(typer.BadParameter, match=unknown[1]):
            parsed(*unknown)
    r = runner.invoke(app, ["export", "--target", "coreml", "-m", "x.pt"])
    assert r.exit_code == 2 and "coreml" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["export", "--help"])
    assert r.exit_code == 0
    for name in [*TARGETS, "all", "--precision", "--profile", "--overwrite", "--dynamic-batch"]:
        assert name in r.output


def test_shipped_profiles_load_and_shape_the_trtexec_command(tmp_path):
    from edge_fgic.export.tensorrt_export import trtexec_command
    assert ({"jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "desktop-gpu", "x86-cpu", "android-arm64"}
            <= set(list_profiles()))
    for name in list_profiles():
        assert load_profile(name)["device"] == name
    nx = dict(load_profile("jetson-orin-nx")["tensorrt"], dla_core=1)
    cmd = trtexec_command("a.onnx", "a.engine", nx, 224, dynamic=True)
    assert "--useDLACore=1" in cmd and "--allowGPUFallback" in cmd and "--memPoolSize=workspace:2048M" in cmd
    assert "--maxShapes=input:8x3x224x224" in cmd and "--timingCacheFile=jetson-orin-nx.timing.cache" in cmd
    with pytest.raises(UserError, match="unknown key"):
        p = tmp_path / "x.yaml"
        p.write_text("device: x86-cpu\nworkspace: 3\n")
        load_profile(str(p))


def test_manifest_json_is_strict():
    """NaN/inf become null: Android's org.json (and other strict readers) reject Python's NaN tokens."""
    from edge_fgic.manifest import dumps
    text = dumps({"round_trip": {"max_rel_diff": float("nan"), "x": [float("inf"), 1.5]}})
    assert json.loads(text) == {"round_trip": {"max_rel_diff": None, "x": [None, 1.5]}} and "NaN" not in text
