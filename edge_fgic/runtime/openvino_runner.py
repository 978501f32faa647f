"""OpenVINO runtime (CPU): on x86 the runtime that executes NNCF's INT8 convolutions in integer.

The CPU plugin's defaults follow the CPU: ``INFERENCE_PRECISION_HINT`` is bf16 where the CPU has
AVX-512 BF16 or AMX (max relative logit difference 6.8e-3 on the demo's FP32 student, against
2.9e-7 in f32), fp16 on ARM cores with fp16 arithmetic, f32 elsewhere; dynamic quantization of
fully-connected activations is on (group size 32). So every setting that changes numbers is asked
for explicitly, and what the plugin compiled is read back from the runtime model: the precision each
convolution / fully-connected / matmul node runs in and the kernel (its ISA) that runs it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..errors import UserError, exc_line
from .base import Runner, missing_backend

# nodes that do the arithmetic (their runtimePrecision is what the model computes in)
COMPUTE_LAYERS = frozenset({"Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul"})
_OV_TYPES = {"f32": "f32", "float32": "f32", "bf16": "bf16", "bfloat16": "bf16", "f16": "f16", "float16": "f16"}


def ov_precision(value: Any) -> str:
    """``<Type: 'bfloat16'>`` / ``f32`` / ``Type.f32`` -> ``bf16`` / ``f32``."""
    text = str(value).lower()
    for key in sorted(_OV_TYPES, key=len, reverse=True):
        if f"'{key}'" in text or text == key or text.endswith("." + key):
            return _OV_TYPES[key]
    return text


def _type_name(t: Any) -> str:
    """An OpenVINO element type -> f32 / bf16 / f16 / i8 / u8 / ..."""
    name = t.get_type_name() if hasattr(t, "get_type_name") else str(t)
    return {"bfloat16": "bf16", "float16": "f16", "float32": "f32"}.get(name, name)


def compiled_summary(compiled) -> dict[str, Any]:
    """Per compute node of the compiled model: the type its activations arrive in (what the kernel
    computes in: f32 / bf16 / f16 / u8 / i8), the node's runtimePrecision (for weight-compressed
    nodes that is the *weights'* type: an FP16 IR reports f16 while an f32 kernel runs it), and the
    kernel that runs it (its name carries the ISA, e.g. ``brgconv_avx512_amx_i8``)."""
    computes: Counter = Counter()
    weights: Counter = Counter()
    kernels: Counter = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer = info["layerType"].astype(str) if "layerType" in info else ""
        if layer not in COMPUTE_LAYERS:
            continue
        computes[_type_name(op.input(0).get_element_type())] += 1
        weights[info["runtimePrecision"].astype(str) if "runtimePrecision" in info else "?"] += 1
        if "primitiveType" in info:
            kernels[info["primitiveType"].astype(str)] += 1
    floats = sorted(p for p in computes if p in ("f32", "bf16", "f16"))
    integer = sum(n for p, n in computes.items() if p in ("i8", "u8"))
    precision = ("mixed(" + "+".join(floats) + ")") if len(floats) > 1 else (floats[0] if floats else None)
    return {"compute_precisions": dict(computes), "node_precisions": dict(weights), "kernels": dict(kernels),
            "integer_ops": integer, "compute_ops": sum(computes.values()), "float_ops_precision": precision}


def requested_settings(precision: str, threads: int) -> dict[str, Any]:
    """Every CPU-plugin setting that changes numbers or speed, asked for explicitly (upper case = plugin keys)."""
    return {"precision": precision, "threads": threads,
            "INFERENCE_PRECISION_HINT": precision, "EXECUTION_MODE_HINT": "PERFORMANCE",
            "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": threads,
            "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0, "CPU_DENORMALS_OPTIMIZATION": False}


def compile_cpu(path, requested: dict[str, Any]):
    """``(model, compiled)``: the IR at ``path`` read and compiled for the CPU plugin with ``requested``'s
    plugin keys (OpenVINO's own exceptions pass through). The runner and the export's compile check (in
    the export's child process, before the round trip compiles the same IR with the same settings in the
    exporting process) share it, so they cannot differ."""
    import openvino as ov

    from ..native import crash_point
    core = ov.Core()
    config = {k: v for k, v in requested.items() if k.isupper()}
    model = core.read_model(str(path))
    crash_point("openvino-compile")
    return model, core.compile_model(model, "CPU", config)


def _port_name(port, i: int) -> str:
    names = set(port.get_names())
    return next((n for n in ("logits", "embedding") if n in names), min(names) if names else f"output{i}")


class OpenVINORunner(Runner):
    backend = "openvino"
    compute_precisions = ("f32", "bf16", "f16")

    @classmethod
    def version(cls) -> str:
        import openvino as ov
        return ov.get_version().split("-")[0]

    def _load(self) -> None:
        try:
            import openvino  # noqa: F401
        except ImportError:
            raise missing_backend("openvino", self.backend, str(self.path)) from None
        self.requested = requested_settings(self.compute_precision, self.threads)
        try:
            self._model, self.compiled = compile_cpu(self.path, self.requested)
        except Exception as exc:
            first = exc_line(exc)
            raise UserError(f"{self.path}: OpenVINO cannot load it ({first}); re-export it") from None
        self.request = self.compiled.create_infer_request()
        # outputs by name: "logits", and "embedding" in an `export --embedding` IR
        self.output_ports = {_port_name(o, i): o for i, o in enumerate(self.compiled.outputs)}
        self.logits_port = next((o for o in self.compiled.outputs if "logits" in o.get_names()),
                                self.compiled.output(0))
        shape = self.compiled.input(0).get_partial_shape()
        self.batch = shape[0].get_length() if shape[0].is_static else None

    def _io_shapes(self):
        def dims(port):
            return [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]
        return dims(self.compiled.input(0)), dims(self.logits_port)

    def _embedded(self):
        from ..manifest.openvino import from_model
        return from_model(self._model)

    def _read_back(self) -> dict[str, Any]:
        c = self.compiled
        hint = ov_precision(c.get_property("INFERENCE_PRECISION_HINT"))
        summary = compiled_summary(c)
        # the precision the float arithmetic actually ran in (nodes), falling back to the plugin's hint
        ran = summary["float_ops_precision"] or hint
        return {"precision": ran, "threads": int(c.get_property("INFERENCE_NUM_THREADS")),
                "INFERENCE_PRECISION_HINT": hint,
                "EXECUTION_MODE_HINT": str(c.get_property("EXECUTION_MODE_HINT")).split(".")[-1],
                "NUM_STREAMS": int(c.get_property("NUM_STREAMS")),
                "DYNAMIC_QUANTIZATION_GROUP_SIZE": int(c.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE")),
                "EXECUTION_DEVICES": [str(d) for d in c.get_property("EXECUTION_DEVICES")],
                **summary}

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.request.infer({0: x})[self.logits_port].copy()

    def _run_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        res = self.request.infer({0: x})
        out = {name: res[port].copy() for name, port in self.output_ports.items()}
        out["logits"] = res[self.logits_port].copy()
        return out
