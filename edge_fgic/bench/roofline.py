"""Compute roofline for the bench report: a model's achieved MAC/s next to this CPU's measured GEMM peak.

"12 ms" says little across machines; "31 % of the FP32 GEMM peak" says whether a model is compute- or
overhead-bound on this CPU, and whether INT8 kernels are actually faster here than FP32 (they are not
everywhere: without VNNI / dot-product instructions an INT8 GEMM can lose to a good FP32 one).

The peak of a precision is the best square GEMM of the runtimes' own kernels, measured by the process's first
bench at the bench's threads (reused by its later benches): torch, onnxruntime (constant, prepacked weight as
in a model) and OpenVINO (constant weight; fp32 compiled with an explicit ``INFERENCE_PRECISION_HINT: f32``,
since on BF16/AMX CPUs the plugin otherwise runs bf16 and an "fp32" peak would be a bf16 one; what it compiled
is read back and a GEMM that did not run in the asked precision is an error entry, not a peak). int8:
torch._int_mm, onnxruntime MatMulInteger, OpenVINO FakeQuantize + i8-weight MatMul (kept only if the plugin
ran it in u8/i8). bf16, only for rows that ran bf16: torch bf16 matmul and OpenVINO with the bf16 hint. A
runtime beating its square GEMM in a model (Winograd, a fused kernel) can still put a row above the peak: the
row keeps its real rate and says so (``above_peak``); nothing is clamped.

Size: a little over 400 lines: one GEMM probe per runtime and precision (seven, each asking its runtime
explicitly and reading back what ran), the MAC counter and the report's entries belong together.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

SIZES = (256, 512, 1024)
BACKENDS = {"fp32": ("torch.matmul", "onnxruntime.MatMul", "openvino.MatMul"),
            "int8": ("torch._int_mm", "onnxruntime.MatMulInteger", "openvino.MatMul.int8"),
            # only for rows whose arithmetic ran in bf16 (--compute-precision bf16): onnxruntime has no bf16 CPU GEMM
            "bf16": ("torch.matmul.bf16", "openvino.MatMul.bf16")}
ABOVE_PEAK = "above the measured GEMM peak: the peak is a lower bound"
_GEMM_LAYERS = ("FullyConnected", "MatMul", "Gemm")
# ISA caps recorded with the peaks when set. Measured (torch 2.14 / OpenVINO 2026.4 / onnxruntime 1.32, AMX CPU):
# ONEDNN_MAX_CPU_ISA caps oneDNN only: torch._int_mm, torch convs, OpenVINO convs and int8 FullyConnected;
# not torch.matmul fp32 (MKL: MKL_ENABLE_INSTRUCTIONS), not OpenVINO's fp32 FullyConnected (MLAS), not
# onnxruntime (MLAS, its own CPUID dispatch, no knob). ATEN_CPU_CAPABILITY changes ATen's own kernels only.
ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")


def _best_seconds(fn: Callable[[], object], seconds: float, warmup: int = 2) -> float:
    """Fastest single call of ``fn`` over repeats filling ``seconds`` (at least 3 repeats)."""
    for _ in range(warmup):
        fn()
    best, start, n = float("inf"), time.perf_counter(), 0
    while n < 3 or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        n += 1
    return best


# --------------------------------------------------------------------------- one GEMM per backend
# each maker builds a size x size x size GEMM at ``threads`` and returns (call, what it compiled to)

def _torch_matmul(size: int, threads: int) -> tuple[Callable[[], object], dict]:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)

    def call() -> object:
        with torch.inference_mode():
            return torch.matmul(a, b)
    return call, {"isa": torch.backends.cpu.get_cpu_capability()}


def _torch_int_mm(size: int, threads: int) -> tuple[Callable[[], object], dict]:
    """torch._int_mm: int8 x int8 -> int32 (fast with VNNI/AMX via oneDNN; a very slow fallback on AVX2-only CPUs)."""
    if not hasattr(torch, "_int_mm"):
        raise RuntimeError("torch._int_mm not in this torch")
    g = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 128, (size, size), dtype=torch.int8, generator=g)
    b = torch.randint(-128, 128, (size, size), dtype=torch.int8, generator=g)

    def call() -> object:
        with torch.inference_mode():
            return torch._int_mm(a, b)
    return call, {"isa": torch.backends.cpu.get_cpu_capability()}


def _ort_session(node: str, a_type: int, y_type: int, weight: np.ndarray, size: int, threads: int):
    import onnxruntime as ort
    from onnx import helper, numpy_helper
    graph = helper.make_graph(
        [helper.make_node(node, ["A", "B"], ["Y"])], "gemm_peak",
        [helper.make_tensor_value_info("A", a_type, [size, size])],
        [helper.make_tensor_value_info("Y", y_type, [size, size])],
        initializer=[numpy_helper.from_array(weight, "B")])  # a constant: MLAS prepacks it, as in a model
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # loadable by the older onnxruntime builds shipped for Jetson
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _ort_matmul(size: int, threads: int) -> tuple[Callable[[], object], dict]:
    from onnx import TensorProto
    rng = np.random.default_rng(0)
    session = _ort_session("MatMul", TensorProto.FLOAT, TensorProto.FLOAT,
                           rng.standard_normal((size, size), dtype=np.float32), size, threads)
    feed = {"A": rng.standard_normal((size, size), dtype=np.float32)}
    return lambda: session.run(None, feed), {}


def _ort_matmul_integer(size: int, threads: int) -> tuple[Callable[[], object], dict]:
    """onnxruntime MatMulInteger, uint8 activations x int8 constant weights (prepacked, as in a QDQ model).

    Weights are 7-bit ([-64, 63], what ORT's quantizer does with reduce_range): MLAS's AVX2 u8s8 kernel
    sums pairs in int16 and saturates with full-range int8 weights; timing is the same either way."""
    from onnx import TensorProto
    rng = np.random.default_rng(0)
    session = _ort_session("MatMulInteger", TensorProto.UINT8, TensorProto.INT32,
                           rng.integers(-64, 64, (size, size), dtype=np.int8), size, threads)
    feed = {"A": rng.integers(0, 256, (size, size), dtype=np.uint8)}
    return lambda: session.run(None, feed), {}


def _ov_text(value: Any) -> str:
    return value.astype(str) if hasattr(value, "astype") else str(value)


def _ov_compile(model, threads: int, hint: str = "f32") -> tuple[Callable[[], object], dict]:
    """Compile for CPU at ``threads`` with the precision ``hint`` asked for explicitly; read back what the plugin
    made of it: its precision hint and the GEMM node's layer type, runtime precision and kernel (primitiveType)."""
    import openvino as ov
    config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
              "INFERENCE_NUM_THREADS": threads, "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}
    compiled = ov.Core().compile_model(model, "CPU", config)
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    info: dict[str, Any] = {"inference_precision": (hint.get_type_name() if hasattr(hint, "get_type_name")
                                                    else str(hint)),
                            "ov_threads": int(compiled.get_property("INFERENCE_NUM_THREADS"))}
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        layer = _ov_text(rt["layerType"]) if "layerType" in rt else ""
        if layer in _GEMM_LAYERS:
            info.update(layer_type=layer, exec_precision=_ov_text(rt["runtimePrecision"]),
                        kernel=_ov_text(rt["primitiveType"]) if "primitiveType" in rt else None)
    request = compiled.create_infer_request()
    return request, info


def _ov_matmul(size: int, threads: int, hint: str = "f32") -> tuple[Callable[[], object], dict]:
    """OpenVINO MatMul, f32 activations x f32 constant weight, compiled for ``hint`` arithmetic; refused
    unless the plugin read back that hint and the GEMM ran in it."""
    import openvino as ov
    import openvino.opset13 as ops
    rng = np.random.default_rng(0)
    a = ops.parameter([size, size], np.float32, name="A")
    y = ops.matmul(a, ops.constant(rng.standard_normal((size, size), dtype=np.float32)), False, False)
    request, info = _ov_compile(ov.Model([y], [a], "gemm_peak"), threads, hint)
    if info.get("inference_precision") != hint or info.get("exec_precision") != hint:
        raise RuntimeError(f"OpenVINO did not run the {'fp32' if hint == 'f32' else hint} GEMM in {hint} "
                           "(hint read back "
                           f"{info.get('inference_precision')}, GEMM ran {info.get('exec_precision')})")
    x = rng.standard_normal((size, size), dtype=np.float32)
    return lambda: request.infer({0: x}), info


def _ov_matmul_int8(size: int, threads: int) -> tuple[Callable[[], object], dict]:
    """OpenVINO int8 MatMul as NNCF writes it: FakeQuantize (u8) on the activations, an i8 constant weight
    dequantized by Convert + Multiply. The CPU plugin folds both into an integer FullyConnected (u8 x i8;
    the activation quantization runs with it, as in a model); refused unless the GEMM ran in u8/i8."""
    import openvino as ov
    import openvino.opset13 as ops
    rng = np.random.default_rng(0)

    def c(v: float):
        return ops.constant(np.array(v, dtype=np.float32))
    a = ops.parameter([size, size], np.float32, name="A")
    aq = ops.fake_quantize(a, c(0.0), c(255 / 64), c(0.0), c(255 / 64), 256)
    w = ops.multiply(ops.convert(ops.constant(rng.integers(-127, 128, (size, size), dtype=np.int8)), np.float32),
                     c(1 / 64))
    request, info = _ov_compile(ov.Model([ops.matmul(aq, w, False, False)], [a], "gemm_peak_int8"), threads)
    if info.get("exec_precision") not in ("u8", "i8"):
        raise RuntimeError(f"OpenVINO did not run the int8 GEMM in integer (GEMM ran {info.get('exec_precision')})")
    x = rng.random((size, size), dtype=np.float32) * 3
    return lambda: request.infer({0: x}), info


def _torch_matmul_bf16(size: int, threads: int) -> tuple[Callable[[], object], dict]:
    """torch.matmul on bf16 tensors (oneDNN: AVX512-BF16 / AMX where the CPU has them, else emulated)."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=g).to(torch.bfloat16) for _ in range(2))

    def call() -> object:
        with torch.inference_mode():
            return torch.matmul(a, b)
    native = bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())
    return call, {"isa": torch.backends.cpu.get_cpu_capability(),
                  "exec_precision": "bf16" if native else "bf16 (emulated)"}


MAKERS: dict[str, Callable[[int, int], tuple[Callable[[], object], dict]]] = {
    "torch.matmul": _torch_matmul, "onnxruntime.MatMul": _ort_matmul, "openvino.MatMul": _ov_matmul,
    "torch._int_mm": _torch_int_mm, "onnxruntime.MatMulInteger": _ort_matmul_integer,
    "openvino.MatMul.int8": _ov_matmul_int8,
    "torch.matmul.bf16": _torch_matmul_bf16,
    "openvino.MatMul.bf16": lambda size, threads: _ov_matmul(size, threads, "bf16"),
}


ROUNDS = 2  # each backend's time is split over rounds interleaved with the others': a burst of other load
#           (a shared VM, a second process) then costs one round of one backend, not a backend's whole peak


def _measure_all(names: tuple[str, ...], sizes: tuple[int, ...], threads: int, seconds: float) -> dict[str, dict]:
    """Every backend over ``sizes`` (ascending), ``seconds`` shared by all, best of ``ROUNDS`` interleaved
    rounds; a backend's entry is its best size. A size whose single call, at the backend's best rate so
    far, would take over half its share of a round (a slow fallback kernel) is skipped, not run. A backend
    that fails gets an ``error`` entry instead."""
    share = seconds / (len(names) * len(sizes) * ROUNDS)
    calls: dict[tuple[str, int], Callable[[], object]] = {}
    per_size: dict[str, dict[int, dict]] = {n: {s: {"size": s} for s in sizes} for n in names}
    info: dict[str, dict] = {n: {} for n in names}
    errors: dict[str, str] = {}
    for _ in range(ROUNDS):
        for name in names:
            for size in sizes:
                if name in errors:
                    break
                entry = per_size[name][size]
                rate = max((e["macs_per_s"] for e in per_size[name].values() if "macs_per_s" in e), default=None)
                if rate and "macs_per_s" not in entry and size**3 / rate > share / 2:
                    entry["skipped"] = "would not fit the time budget"
                    continue
                try:
                    if (name, size) not in calls:
                        calls[name, size], info[name] = MAKERS[name](size, threads)
                    best = _best_seconds(calls[name, size], share, warmup=1 if "macs_per_s" in entry else 2)
                except Exception as exc:  # noqa: BLE001 - one backend missing must not hide the others
                    errors[name] = f"{type(exc).__name__}: {exc}"[:300]
                    break
                entry.pop("skipped", None)
                if best < entry.get("best_ms", float("inf")) / 1e3:
                    entry.update(macs_per_s=size**3 / best, best_ms=best * 1e3)
    calls.clear()
    out: dict[str, dict] = {}
    for name in names:
        if name in errors:
            out[name] = {"backend": name, "threads": threads, "error": errors[name]}
            continue
        rows = list(per_size[name].values())
        top = max((s for s in rows if "macs_per_s" in s), key=lambda s: s["macs_per_s"])
        out[name] = {"backend": name, "macs_per_s": top["macs_per_s"], "gops": 2 * top["macs_per_s"] / 1e9,
                     "best_ms": top["best_ms"], "size": top["size"], "threads": threads, **info[name], "sizes": rows}
    return out


def gemm_peak(precision: str = "fp32", *, threads: int | None = None, sizes: tuple[int, ...] = SIZES,
              size: int | None = None, seconds: float = 1.0, fp32: dict | None = None) -> dict:
    """Measured square-GEMM peak of ``precision`` at ``threads`` CPU threads: the best of the runtimes'
    kernels (``BACKENDS``), each over ``sizes`` (``size``: just that one), ``seconds`` shared by all.

    ``backends`` holds every backend's entry (backend, size, threads, macs_per_s, for OpenVINO the precision
    read back) or its ``error``; ``macs_per_s``/``backend``/``size`` are the best one's (None if all failed).
    int8 also gets ``fp32_macs_per_s`` and a ``note`` naming runtimes whose int8 GEMM is slower than their
    fp32 one; the fp32 side is ``fp32`` (a gemm_peak("fp32") result) or, without it, measured here at a
    third of the time."""
    if precision not in BACKENDS:
        raise ValueError(f"precision must be one of {', '.join(BACKENDS)}, not {precision!r}")
    sizes = (size,) if size else tuple(sorted(sizes))
    old = torch.get_num_threads()
    threads = threads or old
    torch.set_num_threads(threads)
    try:
        if precision == "int8" and fp32 is None:
            fp32 = gemm_peak("fp32", threads=threads, sizes=sizes, seconds=seconds / 3)
            seconds -= seconds / 3
        backends = _measure_all(BACKENDS[precision], sizes, threads, seconds)
        ok = [b for b in backends.values() if "macs_per_s" in b]
        best = max(ok, key=lambda b: b["macs_per_s"]) if ok else {}
        out = {"precision": precision, "macs_per_s": best.get("macs_per_s"), "backend": best.get("backend"),
               "size": best.get("size"), "threads": threads, "backends": backends,
               "isa_env": {k: os.environ[k] for k in ISA_ENV if k in os.environ}}
        out["gops" if precision == "int8" else "gflops"] = best.get("gops")
        if precision == "int8":
            out["fp32_macs_per_s"] = fp32.get("macs_per_s")
            out["note"] = _int8_note(backends, fp32)
        return out
    finally:
        torch.set_num_threads(old)


def _int8_note(int8: dict[str, dict], fp32: dict) -> str | None:
    """Runtimes whose int8 GEMM loses to their own fp32 one (no VNNI / dot product: it happens)."""
    runtime = lambda name: name.split(".")[0]  # noqa: E731
    f32 = {runtime(n): b for n, b in (fp32.get("backends") or {}).items() if b.get("macs_per_s")}
    notes = [f"{n} is {f32[runtime(n)]['macs_per_s'] / b['macs_per_s']:.1f}x slower than "
             f"{f32[runtime(n)]['backend']} (fp32)"
             for n, b in int8.items()
             if b.get("macs_per_s") and runtime(n) in f32 and b["macs_per_s"] < f32[runtime(n)]["macs_per_s"]]
    return "; ".join(notes) or None


def roofline_entry(macs: int, latency_ms: float, peak: dict) -> dict:
    """A row's roofline: its achieved MAC/s against ``peak`` (a gemm_peak result). The fraction is never
    clamped: above 1 the row says so (``above_peak``: the square-GEMM peak is then a lower bound)."""
    rate = achieved(macs, latency_ms)
    p = peak.get("macs_per_s")
    fraction = rate / p if p else None
    out = {"macs": macs, "achieved_macs_per_s": rate, "peak_macs_per_s": p, "peak_backend": peak.get("backend"),
           "fraction_of_peak": fraction, "above_peak": bool(fraction and fraction > 1.0)}
    if out["above_peak"]:
        out["note"] = ABOVE_PEAK
    return out


def achieved(macs_per_inference: float, latency_ms: float) -> float:
    """MAC/s a model sustains at ``latency_ms`` per inference."""
    return macs_per_inference / (latency_ms / 1e3)


def count_macs(model: nn.Module, input_size: int) -> int:
    """MACs of every Conv2d and Linear for one 1x3xSxS image, by forward hooks on a real forward pass.

    Conv: Cout*Hout*Wout * (Cin/groups)*kh*kw (so depthwise is Cout*Hout*Wout*kh*kw); Linear: outputs *
    in_features. Biases, norms, activations and functional matmuls (attention) are not counted."""
    total = 0

    def conv_hook(module: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output[0].numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features  # batch is 1: every output element is one dot product

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters(), None)
        x = torch.zeros(1, 3, input_size, input_size, dtype=param.dtype if param is not None else torch.float32,
                        device=param.device if param is not None else "cpu")
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)


# ------------------------------------------------------------------ the bench's roofline section


def _source_macs(path: str, cache: dict) -> int | None:
    """MACs of one image through the model an artifact was exported from (conv + linear layers)."""
    if path not in cache:
        try:
            from ..models.checkpoint import load_checkpoint
            from ..models.factory import FGClassifier
            ck = load_checkpoint(path)
            cache[path] = count_macs(FGClassifier(ck.model).eval(), ck.preprocess.input_size)
        except Exception:  # the source checkpoint moved or is unreadable: no roofline for that row
            cache[path] = None
    return cache[path]


def peak_for(row: dict) -> str:
    """Which measured peak a row is held against: int8 artifacts the int8 one; a row whose float arithmetic
    ran in bf16 (asked for with --compute-precision, or read back so) the bf16 one; every other the fp32 one."""
    if row.get("precision") == "int8":
        return "int8"
    ran = str((((row.get("execution") or {}).get("effective") or {}).get("precision")) or "")
    asked = (row.get("variant") or {}).get("precision") or ""
    return "bf16" if "bf16" in ran or asked == "bf16" else "fp32"


_PEAKS: dict[tuple[str, int | None], dict] = {}


def _peak(precision: str, threads: int | None, **kw: Any) -> dict:
    """:func:`gemm_peak` for a bench (1 s per kernel), measured once per process and precision/threads: a
    process that benches again (a notebook, the pipeline, the test suite) reuses it (about 3 s per bench)."""
    key = (precision, threads)
    if key not in _PEAKS:
        _PEAKS[key] = gemm_peak(precision, threads=threads, seconds=1.0, **kw)
    return _PEAKS[key]


def bench_roofline(rows: list[dict], threads: int | None) -> dict:
    """The CPU's measured GEMM peak per precision (the best of torch's, onnxruntime's and OpenVINO's own
    GEMM kernels, at the bench's threads; bf16 only when a row ran bf16), and each artifact's achieved
    MAC/s against it. A row above the peak keeps its real rate and is marked (``above_peak``), never clamped."""
    threads = threads or None
    ok = [r for r in rows if r.get("status") == "ok" and r.get("latency_ms")]
    fp32 = _peak("fp32", threads)
    peaks = {"fp32": fp32, "int8": _peak("int8", threads, fp32=fp32)}
    if any(peak_for(r) == "bf16" for r in ok):
        peaks["bf16"] = _peak("bf16", threads)
    cache: dict = {}
    for row in ok:
        src = row.get("source_checkpoint") or row["artifact"]
        macs = _source_macs(src, cache)
        if not macs:
            continue
        row["roofline"] = {**roofline_entry(macs, row["latency_ms"]["p50"], peaks[peak_for(row)]),
                           "peak": peak_for(row)}
    above = sorted(r["name"] for r in rows if (r.get("roofline") or {}).get("above_peak"))
    return {"peaks": peaks, "threads": threads or "default", "above_peak": above}
