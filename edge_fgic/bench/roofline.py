"""Compute roofline for the bench report: a model's achieved MAC/s next to this CPU's measured GEMM peak.

"12 ms" says little across machines; "31 % of the FP32 GEMM peak" says whether a model is compute- or
overhead-bound on this CPU, and whether INT8 kernels are actually faster here than FP32 (they are not
everywhere: without VNNI / dot-product instructions an INT8 GEMM can lose to a good FP32 one).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn


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


def _entry(macs: float, best_s: float, backend: str) -> dict:
    return {"backend": backend, "macs_per_s": macs / best_s, "gops": 2 * macs / best_s / 1e9, "best_ms": best_s * 1e3}


def _torch_fp32(size: int, seconds: float) -> dict:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
    with torch.inference_mode():
        return _entry(size**3, _best_seconds(lambda: torch.matmul(a, b), seconds), "torch.matmul")


def _torch_int_mm(size: int, seconds: float) -> dict:
    """torch._int_mm: int8 x int8 -> int32 (fast with VNNI/AMX via oneDNN; a very slow fallback on AVX2-only CPUs)."""
    if not hasattr(torch, "_int_mm"):
        raise RuntimeError("torch._int_mm not in this torch")
    g = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 128, (size, size), dtype=torch.int8, generator=g)
    b = torch.randint(-128, 128, (size, size), dtype=torch.int8, generator=g)
    with torch.inference_mode():
        return _entry(size**3, _best_seconds(lambda: torch._int_mm(a, b), seconds), "torch._int_mm")


def _ort_matmul_integer(size: int, seconds: float, threads: int) -> dict:
    """onnxruntime MatMulInteger, uint8 activations x int8 constant weights (prepacked, as in a QDQ model).

    Weights are 7-bit ([-64, 63], what ORT's quantizer does with reduce_range): MLAS's AVX2 u8s8 kernel
    sums pairs in int16 and saturates with full-range int8 weights; timing is the same either way."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = rng.integers(-64, 64, (size, size), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "gemm_peak",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [size, size])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [size, size])],
        initializer=[numpy_helper.from_array(weight, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # loadable by the older onnxruntime builds shipped for Jetson
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = {"A": rng.integers(0, 256, (size, size), dtype=np.uint8)}
    return _entry(size**3, _best_seconds(lambda: session.run(None, feed), seconds), "onnxruntime.MatMulInteger")


def gemm_peak(precision: str = "fp32", *, threads: int | None = None, size: int = 512, seconds: float = 1.0) -> dict:
    """Measured square-GEMM throughput (best of repeats within ``seconds``) at ``threads`` CPU threads.

    fp32: torch.matmul. int8: torch._int_mm and onnxruntime MatMulInteger, both reported under
    ``backends``; ``macs_per_s``/``backend`` name the faster, ``note`` flags INT8 slower than FP32."""
    if precision not in ("fp32", "int8"):
        raise ValueError(f"precision must be 'fp32' or 'int8', not {precision!r}")
    old = torch.get_num_threads()
    threads = threads or old
    torch.set_num_threads(threads)
    try:
        if precision == "fp32":
            best = _torch_fp32(size, seconds)
            return {"precision": "fp32", "macs_per_s": best["macs_per_s"], "gflops": best["gops"], "size": size,
                    "threads": threads, "backend": best["backend"]}
        share = seconds / 3  # fp32 reference + two int8 backends share the budget
        fp32 = _torch_fp32(size, share)
        backends: dict[str, dict] = {}
        for name, run in (("torch._int_mm", lambda: _torch_int_mm(size, share)),
                          ("onnxruntime.MatMulInteger", lambda: _ort_matmul_integer(size, share, threads))):
            try:
                backends[name] = run()
            except Exception as exc:  # noqa: BLE001 - one backend missing must not hide the other
                backends[name] = {"backend": name, "error": f"{type(exc).__name__}: {exc}"}
        ok = [b for b in backends.values() if "macs_per_s" in b]
        best = max(ok, key=lambda b: b["macs_per_s"]) if ok else {"backend": None, "macs_per_s": None, "gops": None}
        notes = [f"{b['backend']} is {fp32['macs_per_s'] / b['macs_per_s']:.1f}x slower than FP32 torch.matmul"
                 for b in ok if b["macs_per_s"] < fp32["macs_per_s"]]
        return {"precision": "int8", "macs_per_s": best["macs_per_s"], "gops": best["gops"], "size": size,
                "threads": threads, "backend": best["backend"], "backends": backends,
                "fp32_macs_per_s": fp32["macs_per_s"], "note": "; ".join(notes) or None}
    finally:
        torch.set_num_threads(old)


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
