"""The benchmark harness end to end on tiny exports: every runner in its own worker process,
statistics against the reference, the gate's exit code, and the report files."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_fgic.cli import app
from edge_fgic.export.exporter import ExportConfig, export

runner = CliRunner()


@pytest.fixture(scope="module")
def exports(tiny_bnrelu_run, ptq_unsigned, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench-exports")
    for model, target, precision in [(tiny_bnrelu_run, "onnx", "fp32"), (tiny_bnrelu_run, "tflite", "fp32"),
                                     (ptq_unsigned / "best.pt", "openvino", "int8")]:
        export(ExportConfig(model=str(model), target=target, precision=precision, out=str(out), name="m",
                            split="train", check_images=0, min_agreement=80.0), progress=False)
    return out


@pytest.fixture(scope="module")
def bench_run(exports, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "report"
    bad = exports.parent / "broken"
    bad.mkdir(exist_ok=True)
    corrupt = bad / "corrupt.onnx"
    corrupt.write_bytes(b"\x08garbage")
    shutil.copy(exports / "m-fp32.onnx.json", bad / "corrupt.onnx.json")  # a manifest, but the file is broken
    r = runner.invoke(app, ["bench", str(exports), str(corrupt), "--split", "val", "--runs", "10", "--batch", "4",
                            "--threads", "1", "--out", str(out)])
    return r, out


def test_report_has_every_artifact_with_statistics_against_the_reference(bench_run, tiny_bnrelu_run):
    r, out = bench_run
    report = json.loads((out / "bench.json").read_text())
    assert report["schema"] == "edge-fgic/bench" and report["config"]["reference"] == str(tiny_bnrelu_run)
    rows = {row["name"]: row for row in report["rows"]}
    ref = rows["reference: run/best.pt"]
    # the reference against itself: zero drop, a bootstrap CI that is exactly [0, 0], full agreement
    assert (ref["drop"] == 0 and ref["drop_ci"] == [0, 0] and ref["agreement"] == 100.0
            and ref["mcnemar"]["p_value"] == 1.0)
    for name in ["m-fp32.onnx", "m-fp32.tflite", "m-int8.xml"]:
        row = rows[name]
        assert row["status"] == "ok", row
        assert row["latency_ms"]["runs"] >= 10 and row["latency_ms"]["p50"] > 0 and row["fps_batch"] > 0
        assert row["load_ms"] > 0 and row["peak_rss_mb"] > 0 and row["preprocess_ms"] >= 0
        assert len(row["drift"]) == 6 and row["drop_ci"][0] <= row["drop"] <= row["drop_ci"][1]
    for name in ["m-fp32.onnx", "m-fp32.tflite"]:  # FP32 artifacts reproduce the reference exactly
        assert rows[name]["agreement"] == 100.0 and rows[name]["drop"] == 0 and rows[name]["max_abs_logit_diff"] < 1e-3
    assert "openvino" in rows["m-int8.xml"]["runtime"] and rows["m-int8.xml"]["precision"] == "int8"


def test_a_broken_artifact_is_reported_and_does_not_stop_the_others(bench_run):
    r, out = bench_run
    report = json.loads((out / "bench.json").read_text())
    broken = [row for row in report["rows"] if row["name"] == "corrupt.onnx"][0]
    # its sidecar (copied from a good export) records other bytes: refused before onnxruntime parses it
    assert (broken["status"] == "failed" and "bytes differ from its manifest" in broken["reason"]
            and not broken["passed"])
    assert r.exit_code == 1, r.output  # one failed artifact fails the run (CI/CD guard)
    assert "corrupt.onnx" in r.output and "Traceback" not in r.output


def test_report_files_exist_and_parse(bench_run):
    _, out = bench_run
    md = (out / "bench.md").read_text()
    assert "| Artifact | Runtime | Precision | Status | Size MB | top-1 | Δ top-1 [95 % CI] |" in md
    assert "m-fp32.tflite" in md and "litert" in md
    rows = list(csv.reader((out / "drift.csv").read_text().splitlines()))
    assert rows[0] == ["artifact", "class", "n", "ref_acc", "art_acc", "delta", "flips"] and len(rows) == 1 + 3 * 6
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".bench-")]  # the worker folder is cleaned up


def test_gate_flips_the_exit_code(exports, tmp_path):
    args = ["bench", str(exports / "m-fp32.onnx"), "--runs", "10", "--out", str(tmp_path / "a")]
    assert runner.invoke(app, [*args, "--rounds", "2"]).exit_code == 0
    assert "**Verdict: pass.** All 1 exported artifacts ran" in (tmp_path / "a" / "bench.md").read_text()
    rows = json.loads((tmp_path / "a" / "bench.json").read_text())["rows"]
    # pooled
    assert all(r["rounds"] == 2 and r["latency_ms"]["runs"] == len(r["latency_samples_ms"]) >= 20 for r in rows)
    # a negative allowance: even a zero drop breaks it
    r = runner.invoke(app, [*args[:-2], "--max-drop", "-1", "--out", str(tmp_path / "b")])
    md = (tmp_path / "b" / "bench.md").read_text()
    assert r.exit_code == 1 and "✗ gate" in md and "**Verdict: FAIL.** 1 of 2 rows: m-fp32.onnx (drop 0.00 pt)." in md


def test_bad_input_is_one_line(exports, tmp_path, tiny_synth, imagefolder):
    for args, needle in [([str(tmp_path / "nothing")], "no such artifact"),
                         ([str(exports / "m-fp32.onnx"), "--data", str(imagefolder("other", classes=["x", "y"]))],
                          "classes differ")]:
        r = runner.invoke(app, ["bench", *args, "--out", str(tmp_path / "o")])
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert r.exit_code == 2 and lines[-1].startswith("error:") and needle in lines[-1], r.output


def test_artifact_without_manifest_or_with_other_classes_fails_alone(exports, tmp_path, tiny_bnrelu_run):
    import torch
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 6, 32), (torch.zeros(1, 3, 32, 32),), str(plain), dynamo=False)
    other = tmp_path / "other.onnx"
    shutil.copy(exports / "m-fp32.onnx", other)
    side = json.loads((exports / "m-fp32.onnx.json").read_text())
    side["classes"] = side["classes"][::-1]
    (tmp_path / "other.onnx.json").write_text(json.dumps(side))
    r = runner.invoke(app, ["bench", str(plain), str(other), str(exports / "m-fp32.onnx"),
                            "--reference", str(tiny_bnrelu_run),
                            "--runs", "10", "--out", str(tmp_path / "r")])
    rows = {row["name"]: row for row in json.loads((tmp_path / "r" / "bench.json").read_text())["rows"]}
    assert "no manifest" in rows["plain.onnx"]["reason"] and "classes differ" in rows["other.onnx"]["reason"]
    assert rows["m-fp32.onnx"]["status"] == "ok" and r.exit_code == 1


def test_roofline_puts_each_artifact_against_the_measured_gemm_peak(bench_run):
    _, out = bench_run
    report = json.loads((out / "bench.json").read_text())
    peaks = report["roofline"]["peaks"]
    assert peaks["fp32"]["macs_per_s"] > 0 and peaks["int8"]["macs_per_s"] > 0
    rows = {row["name"]: row for row in report["rows"]}
    onnx, xml = rows["m-fp32.onnx"]["roofline"], rows["m-int8.xml"]["roofline"]
    assert onnx["macs"] == xml["macs"] > 0  # the same model, counted from the source checkpoints
    assert (onnx["peak_macs_per_s"] == peaks["fp32"]["macs_per_s"]
            and xml["peak_macs_per_s"] == peaks["int8"]["macs_per_s"])
    assert "GEMM peaks measured in this run" in (out / "bench.md").read_text()
    cpu = report["machine"]["cpu"]
    assert cpu["logical_cores"] >= 1 and isinstance(cpu["isa"], list)


def test_jetson_target_integrates_tegrastats_power_over_the_timed_loop(exports, tmp_path, monkeypatch):
    """The worker's Jetson path with a stand-in `tegrastats` printing a real Orin Nano line (VDD_IN 4673 mW)."""
    import os
    import stat

    import numpy as np

    from edge_fgic.bench.worker import measure
    line = [ln for ln in (Path(__file__).parent / "data" / "tegrastats" / "orin_nano.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")][0]
    (tmp_path / "line.txt").write_text(line + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "tegrastats"
    script.write_text(f'#!/bin/sh\nwhile true; do cat "{tmp_path}/line.txt"; sleep 0.02; done\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    np.save(tmp_path / "x.npy", np.zeros((4, 3, 32, 32), np.float32))
    res = measure({"artifact": str(exports / "m-fp32.onnx"), "images": str(tmp_path / "x.npy"), "target": "jetson",
                   "runs": 20, "warmup": 2, "batch": 2, "logits": str(tmp_path / "l.npy"), "min_seconds": 0.5})
    e = res["energy"]
    from edge_fgic.bench.tegrastats import parse_line, total_power_mw
    mw = total_power_mw(parse_line(line))
    assert e["rail"] == "VDD_IN" and e["samples_in_window"] >= 2 and e["mean_power_mw"] == pytest.approx(mw)
    assert e["mj_per_inference"] == pytest.approx(mw * 1e-3 * res["latency_ms"]["mean"], rel=0.5)


def test_an_artifact_without_manifest_runs_with_explicit_preprocessing(exports, tmp_path, tiny_bnrelu_run):
    """Someone else's export: no sidecar, nothing inside; --input-size/--mean/--std/--labels say how to feed it."""
    import onnx
    bare = tmp_path / "bare.onnx"
    m = onnx.load(str(exports / "m-fp32.onnx"))
    del m.metadata_props[:]
    onnx.save(m, str(bare))
    side = json.loads((exports / "m-fp32.onnx.json").read_text())
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(side["classes"]) + "\n")
    r = runner.invoke(app, ["bench", str(bare), "--reference", str(tiny_bnrelu_run), "--runs", "10",
                            "--input-size", "32",
                            "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--labels", str(labels),
                            "--out", str(tmp_path / "r")])
    rows = {row["name"]: row for row in json.loads((tmp_path / "r" / "bench.json").read_text())["rows"]}
    assert r.exit_code == 0, r.output
    assert rows["bare.onnx"]["status"] == "ok" and rows["bare.onnx"]["agreement"] == 100.0
    bad = runner.invoke(app, ["bench", str(bare), "--mean", "0.5,0.5", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "three comma-separated numbers" in bad.output
