"""onnxruntime (CPU execution provider; CUDA when asked and available).

Nothing that changes numbers is left to the build's defaults: the graph optimisation level, the
thread pools, denormal handling and ARM64's opt-in bf16 "fastmath" GEMM are set explicitly. What ran
is read back from the session (its providers and threads) and from the graph onnxruntime optimised
for this machine: which convolutions / matmuls became integer kernels and in which float type the
others compute (the CPU EP runs fp16 nodes through fp32 casts where it has no fp16 kernel, e.g.
on x86, but natively on ARM64).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections import Counter
from typing import Any

import numpy as np

from ..errors import UserError, exc_line
from .base import Runner, missing_backend

INTEGER_OPS = frozenset({"QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul", "MatMulIntegerToFloat",
                         "QGemm", "DynamicQuantizeMatMul", "QAttention", "DynamicQuantizeLSTM"})
FLOAT_OPS = frozenset({"Conv", "FusedConv", "MatMul", "FusedMatMul", "Gemm", "FusedGemm",
                       "ConvTranspose"})
# settings that change numbers: explicit, so every machine runs the same arithmetic
SESSION_CONFIG = {"session.set_denormal_as_zero": "0", "mlas.enable_gemm_fastmath_arm64_bfloat16": "0"}
_FLOAT = {1: "f32", 10: "f16", 16: "bf16", 11: "f64"}   # onnx.TensorProto element types


def optimized_graph_summary(path: str) -> dict[str, Any]:
    """Compute nodes of an optimised ONNX graph: integer kernels, and the float type the rest use
    (from their weight initialisers, which ORT casts to f32 where it has no f16 kernel)."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    g = model.graph
    inits = {i.name: i.data_type for i in g.initializer}
    ops: Counter = Counter()
    floats: Counter = Counter()
    integer = compute = 0
    for node in g.node:
        ops[node.op_type] += 1
        if node.op_type in INTEGER_OPS:
            integer += 1
            compute += 1
        elif node.op_type in FLOAT_OPS:
            compute += 1
            w = node.input[1] if len(node.input) > 1 else ""
            floats[_FLOAT.get(inits.get(w, 1), "?")] += 1
    kinds = sorted(floats)
    precision = kinds[0] if len(kinds) == 1 else ("mixed(" + "+".join(kinds) + ")" if kinds else None)
    return {"integer_ops": integer, "compute_ops": compute, "float_ops_precision": precision,
            "float_ops_by_type": dict(floats), "optimized_ops": dict(ops)}


class OnnxRuntimeRunner(Runner):
    backend = "onnxruntime"

    @classmethod
    def version(cls) -> str:
        import onnxruntime as ort
        return ort.__version__

    def _options(self):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        for k, v in SESSION_CONFIG.items():
            opts.add_session_config_entry(k, v)
        return opts

    def _load(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise missing_backend("onnxruntime", self.backend, str(self.path)) from None
        providers = ["CPUExecutionProvider"]
        if self.device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.requested = {"precision": self.compute_precision, "threads": self.threads, "providers": providers,
                          "graph_optimization_level": "ORT_ENABLE_ALL", "inter_op_threads": 1, **SESSION_CONFIG}
        try:
            self.session = ort.InferenceSession(str(self.path), self._options(), providers=providers)
        except Exception as exc:  # corrupt / truncated / not ONNX
            first = exc_line(exc)
            raise UserError(f"{self.path}: onnxruntime cannot load it ({first}); re-export it") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        # outputs by name: logits is "logits" where the graph names it (a second output, "embedding", may follow)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.logits_index = self.output_names.index("logits") if "logits" in self.output_names else 0
        b = inp.shape[0]
        self.batch = b if isinstance(b, int) else None

    def _io_shapes(self):
        return (list(self.session.get_inputs()[0].shape),
                list(self.session.get_outputs()[self.logits_index].shape))

    def _embedded(self):
        from ..manifest.onnx import from_metadata_map
        return from_metadata_map(self.session.get_modelmeta().custom_metadata_map)

    def _read_back(self) -> dict[str, Any]:
        """The session's providers and threads, and the graph ORT optimised for this CPU (read with ``onnx``;
        without it, as in a slim install, the record says so instead)."""
        opts = self.session.get_session_options()
        out: dict[str, Any] = {"providers": self.session.get_providers(), "threads": int(opts.intra_op_num_threads),
                               "inter_op_threads": int(opts.inter_op_num_threads),
                               "graph_optimization_level": str(opts.graph_optimization_level).split(".")[-1]}
        if importlib.util.find_spec("onnx") is None:  # a slim (deploy) install: the session itself is unaffected
            out["read_back_error"] = ("the optimised graph (integer kernels, float types) is not read back: it needs "
                                      "the onnx package (pip install onnx)")
            out["precision"] = None  # unknown, not assumed
            return out
        out.update(self._optimized_summary())
        fp = out.get("float_ops_precision")
        # an all-integer graph has no float compute nodes: its float parts (Q/DQ, adds) are f32 in the CPU EP
        out["precision"] = fp if fp else ("f32" if "CPUExecutionProvider" == out["providers"][0] else None)
        return out

    def _optimized_summary(self) -> dict[str, Any]:
        """A second, throwaway session writes the graph ORT optimised for this CPU; the timed one is untouched."""
        import onnxruntime as ort
        with tempfile.TemporaryDirectory(prefix="edge-fgic-ort-") as tmp:
            dump = os.path.join(tmp, "optimized.onnx")
            probe = self._options()
            probe.optimized_model_filepath = dump
            try:
                ort.InferenceSession(str(self.path), probe, providers=self.session.get_providers())
                return optimized_graph_summary(dump)
            except Exception as exc:  # noqa: BLE001 - read-back must not break a working session
                return {"read_back_error": f"{type(exc).__name__}: {exc_line(exc, 160)}"}

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_names[self.logits_index]], {self.input_name: x})[0]

    def _run_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        out = dict(zip(self.output_names, self.session.run(None, {self.input_name: x})))
        out["logits"] = out[self.output_names[self.logits_index]]
        return out
