"""The roofline's GEMM peaks: the best of torch's, onnxruntime's and OpenVINO's own kernels per precision,
OpenVINO's fp32 really f32 (read back), and a row above the peak marked, never clamped. No timing ratios."""

from __future__ import annotations

import time

import pytest
import torch

from edge_fgic.bench import report, roofline


@pytest.fixture(scope="module")
def peaks():
    threads = torch.get_num_threads()
    fp32 = roofline.gemm_peak("fp32", threads=1, sizes=(32, 64), seconds=0.06)
    int8 = roofline.gemm_peak("int8", threads=1, size=64, seconds=0.06, fp32=fp32)
    bf16 = roofline.gemm_peak("bf16", threads=1, size=64, seconds=0.04)
    assert torch.get_num_threads() == threads  # restored
    return {"fp32": fp32, "int8": int8, "bf16": bf16}


@pytest.mark.parametrize("precision", ["fp32", "int8", "bf16"])
def test_every_backend_is_measured_or_its_error_recorded(peaks, precision):
    peak = peaks[precision]
    assert peak["precision"] == precision and peak["threads"] == 1
    assert tuple(peak["backends"]) == roofline.BACKENDS[precision]
    for name, b in peak["backends"].items():
        assert b["backend"] == name and b["threads"] == 1
        if "error" in b:
            assert b["error"] and "macs_per_s" not in b
        else:
            assert (b["macs_per_s"] > 0 and b["size"] in (32, 64)
                    and b["gops"] == pytest.approx(2 * b["macs_per_s"] / 1e9))
            assert all(s["macs_per_s"] > 0 for s in b["sizes"] if "skipped" not in s)


@pytest.mark.parametrize("precision", ["fp32", "int8", "bf16"])
def test_the_peak_is_the_best_backend(peaks, precision):
    peak = peaks[precision]
    ok = {n: b for n, b in peak["backends"].items() if "macs_per_s" in b}
    assert ok
    assert peak["macs_per_s"] == max(b["macs_per_s"] for b in ok.values())
    assert peak["backend"] in ok and ok[peak["backend"]]["macs_per_s"] == peak["macs_per_s"]
    assert peak["size"] == ok[peak["backend"]]["size"]


def test_fp32_peak_includes_onnxruntime_and_openvino_kernels(peaks):
    """torch.matmul alone was no peak: onnxruntime ran a model faster than it (rows at 126-144 %)."""
    backends = peaks["fp32"]["backends"]
    assert {"torch.matmul", "onnxruntime.MatMul", "openvino.MatMul"} <= set(backends)
    for name in ("onnxruntime.MatMul", "openvino.MatMul"):  # both are dependencies: they must run here
        assert "error" not in backends[name], backends[name].get("error")


def test_openvino_fp32_peak_is_read_back_as_f32(peaks):
    """On BF16/AMX CPUs the plugin runs bf16 unless told f32: the fp32 peak must be an f32 one."""
    ov = peaks["fp32"]["backends"]["openvino.MatMul"]
    assert ov["inference_precision"] == "f32" and ov["exec_precision"] == "f32"
    assert ov["ov_threads"] == 1 and ov["layer_type"] in ("FullyConnected", "MatMul", "Gemm")


def test_openvino_int8_runs_in_integer_or_says_why(peaks):
    ov = peaks["int8"]["backends"]["openvino.MatMul.int8"]
    if "error" in ov:
        assert "integer" in ov["error"] or "openvino" in ov["error"].lower()
    else:
        assert ov["exec_precision"] in ("u8", "i8") and ov["inference_precision"] == "f32"


def test_openvino_bf16_peak_is_read_back_as_bf16_or_refused(peaks):
    ov = peaks["bf16"]["backends"]["openvino.MatMul.bf16"]
    if "error" in ov:  # a CPU without bf16: the plugin keeps f32 and the entry says so instead of a false bf16 peak
        assert "did not run the bf16 GEMM in bf16" in ov["error"]
    else:
        assert ov["inference_precision"] == "bf16" and ov["exec_precision"] == "bf16"


def test_int8_peak_carries_the_fp32_side(peaks):
    int8 = peaks["int8"]
    assert int8["fp32_macs_per_s"] == peaks["fp32"]["macs_per_s"]
    assert int8["note"] is None or "(fp32)" in int8["note"]


def test_a_bf16_openvino_gemm_is_refused_not_counted(monkeypatch):
    """If the plugin ran the 'fp32' GEMM in bf16 it is an error entry, never the fp32 peak."""
    real = roofline._ov_compile

    def bf16(model, threads, hint="f32"):
        request, info = real(model, threads, hint)
        return request, {**info, "inference_precision": "bf16", "exec_precision": "bf16"}
    monkeypatch.setattr(roofline, "_ov_compile", bf16)
    peak = roofline.gemm_peak("fp32", threads=1, size=32, seconds=0.03)
    assert "did not run the fp32 GEMM in f32" in peak["backends"]["openvino.MatMul"]["error"]
    assert peak["backend"] != "openvino.MatMul" and peak["macs_per_s"] > 0


def test_sizes_that_would_not_fit_the_budget_are_skipped(monkeypatch):
    def slow(size, threads):
        return (lambda: time.sleep(0.01)), {}
    monkeypatch.setitem(roofline.MAKERS, "torch.matmul", slow)
    b = roofline._measure_all(("torch.matmul",), (8, 64), threads=1, seconds=0.2)["torch.matmul"]
    assert [s["size"] for s in b["sizes"]] == [8, 64] and "skipped" in b["sizes"][1] and b["size"] == 8


def test_all_backends_failing_gives_no_peak_and_no_fraction(monkeypatch):
    def broken(size, threads):
        raise RuntimeError("not here")
    for name in roofline.BACKENDS["fp32"]:
        monkeypatch.setitem(roofline.MAKERS, name, broken)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    peak = roofline.gemm_peak("fp32", threads=1, size=32, seconds=0.01)
    assert peak["isa_env"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"  # an ISA cap in force is recorded with the peak
    assert peak["macs_per_s"] is None and peak["backend"] is None
    assert all("not here" in b["error"] for b in peak["backends"].values())
    entry = roofline.roofline_entry(1e9, 10.0, peak)
    assert entry["fraction_of_peak"] is None and entry["above_peak"] is False
    assert report.roofline_cell(entry) == "100.0 (no peak)"


def test_a_row_above_the_peak_keeps_its_real_fraction_and_is_marked():
    peak = {"macs_per_s": 1e11, "backend": "onnxruntime.MatMul"}
    above = roofline.roofline_entry(1.5e9, 10.0, peak)  # 1.5e11 MAC/s against 1e11
    assert above["fraction_of_peak"] == pytest.approx(1.5) and above["above_peak"] is True
    assert above["note"] == roofline.ABOVE_PEAK and above["peak_backend"] == "onnxruntime.MatMul"
    below = roofline.roofline_entry(0.5e9, 10.0, peak)
    assert below["fraction_of_peak"] == pytest.approx(0.5) and below["above_peak"] is False and "note" not in below
    assert report.roofline_cell(above) == "150.0 (150 % ⚠ above peak)" and report.roofline_cell(below) == "50.0 (50 %)"


def _fake_peak(precision, macs_per_s):
    names = roofline.BACKENDS[precision]
    backends = {n: {"backend": n, "macs_per_s": macs_per_s / (i + 1), "size": 512, "threads": 2}
                for i, n in enumerate(names)}
    backends[names[-1]].update(inference_precision="f32", exec_precision="f32" if precision == "fp32" else "u8")
    backends[names[1]] = {"backend": names[1], "threads": 2, "error": "ImportError: no module"}
    return {"precision": precision, "macs_per_s": macs_per_s, "backend": names[0], "size": 512, "threads": 2,
            "backends": backends, **({"note": None, "fp32_macs_per_s": 1e11} if precision == "int8" else {})}


def test_bench_roofline_marks_rows_above_the_peak_and_the_report_names_the_kernels(monkeypatch):
    calls = []

    def fake_gemm_peak(precision, *, threads=None, seconds=1.0, fp32=None, **kw):
        calls.append((precision, threads, fp32 is not None))
        return _fake_peak(precision, {"fp32": 1e11, "int8": 4e11, "bf16": 3e11}[precision])
    monkeypatch.setattr(roofline, "gemm_peak", fake_gemm_peak)
    monkeypatch.setattr(roofline, "_PEAKS", {})  # peaks an earlier bench of this process measured
    monkeypatch.setattr(roofline, "_source_macs", lambda path, cache: 1_000_000_000)
    rows = [{"name": "fast.onnx", "artifact": "fast.onnx", "status": "ok", "precision": "fp32",
             "latency_ms": {"p50": 5.0}},
            {"name": "slow.xml", "artifact": "slow.xml", "status": "ok", "precision": "int8",
             "latency_ms": {"p50": 10.0}},
            {"name": "broken.onnx", "artifact": "broken.onnx", "status": "failed"},
            {"name": "fast.xml [bf16]", "artifact": "fast.xml", "status": "ok", "precision": "fp32",
             "latency_ms": {"p50": 5.0},
             "variant": {"label": "bf16", "precision": "bf16", "isa": None}}]
    roof = roofline.bench_roofline(rows, 2)
    # int8 reuses the fp32 peak for its note
    assert calls == [("fp32", 2, False), ("int8", 2, True), ("bf16", 2, False)]
    fast, slow = rows[0]["roofline"], rows[1]["roofline"]
    assert fast["fraction_of_peak"] == pytest.approx(2.0) and fast["above_peak"]  # 2e11 against 1e11: not clamped
    assert slow["fraction_of_peak"] == pytest.approx(0.25) and not slow["above_peak"] and "roofline" not in rows[2]
    bf16 = rows[3]["roofline"]  # held against the bf16 peak (3e11), not the fp32 one it would exceed
    assert bf16["peak"] == "bf16" and bf16["fraction_of_peak"] == pytest.approx(2 / 3) and not bf16["above_peak"]
    assert (roof["above_peak"] == ["fast.onnx"] and roof["threads"] == 2
            and set(roof["peaks"]) == {"fp32", "int8", "bf16"})
    text = report.roofline_text(roof, rows)
    assert "fp32 100.0 GMAC/s by torch.matmul (512³)" in text and "int8 400.0 GMAC/s by torch._int_mm" in text
    assert "openvino.MatMul [ran f32] 33.3" in text and "openvino.MatMul.int8 [ran u8, hint f32]" in text
    assert "onnxruntime.MatMul failed (ImportError" in text and "bf16 300.0 GMAC/s by torch.matmul.bf16" in text
    assert ("fast.onnx: above the measured GEMM peak: the peak is a lower bound" in text
            and "slow.xml" not in text.split("⚠")[1])


@pytest.mark.parametrize("row, peak", [
    ({"precision": "int8"}, "int8"), ({"precision": "fp32"}, "fp32"), ({"precision": "fp16"}, "fp32"),
    ({"precision": "fp32", "variant": {"precision": "bf16"}}, "bf16"),
    ({"precision": "fp32", "execution": {"effective": {"precision": "bf16"}}}, "bf16"),  # ran bf16 unasked
    ({"precision": "fp32", "execution": {"effective": {"precision": "mixed(bf16+f32)"}}}, "bf16"),
    ({"precision": "int8", "execution": {"effective": {"precision": "bf16"}}}, "int8")])
def test_each_row_is_held_against_the_peak_of_what_it_ran(row, peak):
    assert roofline.peak_for(row) == peak


def test_rows_without_bf16_measure_no_bf16_peak(monkeypatch):
    calls = []
    monkeypatch.setattr(roofline, "gemm_peak", lambda p, **kw: calls.append(p) or _fake_peak(p, 1e11))
    monkeypatch.setattr(roofline, "_source_macs", lambda path, cache: 10**9)
    monkeypatch.setattr(roofline, "_PEAKS", {})  # peaks an earlier bench of this process measured
    rows = [{"name": "a.onnx", "artifact": "a.onnx", "status": "ok", "precision": "fp32", "latency_ms": {"p50": 50.0}}]
    roof = roofline.bench_roofline(rows, None)
    assert calls == ["fp32", "int8"] and "bf16" not in roof["peaks"] and roof["threads"] == "default"
    assert "bf16" not in report.roofline_text(roof, rows)
    # a second bench in the same process reuses the peaks; other threads are measured anew
    assert roofline.bench_roofline(rows, None)["peaks"] == roof["peaks"] and calls == ["fp32", "int8"]
    roofline.bench_roofline(rows, 1)
    assert calls == ["fp32", "int8", "fp32", "int8"]


def test_unknown_precision():
    with pytest.raises(ValueError):
        roofline.gemm_peak("fp8")
