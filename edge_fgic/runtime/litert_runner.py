"""LiteRT (``ai-edge-litert``): the standalone TFLite interpreter Android runs, XNNPACK on CPU.

The interpreter applies the XNNPACK delegate by default (FP32 student: 0.57 ms with it, 2.09 ms on
the built-in kernels), and XNNPACK takes only the nodes it supports: so the resolver is named
explicitly, the thread count is explicit, and after ``allocate_tensors`` the execution plan is read
back: how many of the model's nodes XNNPACK took and which ops were left to the built-in kernels.
XNNPACK runs fp32 (and float16-weight models, dequantized) in fp32 unless a model opts into fp16
inference, which ours do not; int8 models run its QS8 kernels.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..errors import UserError, exc_line
from .base import Runner, missing_backend


def delegation(interp) -> dict[str, Any]:
    """Which nodes the delegate took, after ``allocate_tensors``.

    The node list keeps the model's own nodes and appends one DELEGATE node per partition; a node was
    taken by a partition when it lies between that partition's input and output tensors (walked
    back from its outputs through the nodes that produce them)."""
    ops = interp._get_ops_details()
    model_nodes = [o for o in ops if o["op_name"] != "DELEGATE"]
    partitions = [o for o in ops if o["op_name"] == "DELEGATE"]
    producer = {int(t): o["index"] for o in model_nodes for t in o["outputs"]}
    taken: set[int] = set()
    for part in partitions:
        boundary = {int(t) for t in part["inputs"]}
        stack = [int(t) for t in part["outputs"]]
        while stack:
            t = stack.pop()
            if t in boundary or t not in producer or producer[t] in taken:
                continue
            node = producer[t]
            taken.add(node)
            stack.extend(int(i) for i in ops[node]["inputs"] if i >= 0)
    left = Counter(o["op_name"] for o in model_nodes if o["index"] not in taken)
    return {"name": "XNNPACK" if partitions else None, "partitions": len(partitions),
            "delegated_nodes": len(taken), "total_nodes": len(model_nodes),
            "undelegated_ops": dict(left)}


class LiteRTRunner(Runner):
    backend = "litert"

    @classmethod
    def version(cls) -> str:
        from importlib.metadata import version
        return version("ai-edge-litert")

    def _load(self) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError:
            raise missing_backend("ai-edge-litert", self.backend, str(self.path)) from None
        from ..quiet import quiet_native_logs
        self.requested = {"precision": self.compute_precision, "threads": self.threads,
                          "op_resolver": "BUILTIN (default delegate: XNNPACK)", "delegate": "XNNPACK"}
        try:
            with quiet_native_logs():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interp = Interpreter(model_path=str(self.path), num_threads=self.threads,
                                          experimental_op_resolver_type=OpResolverType.BUILTIN)
                self.interp.allocate_tensors()
        except Exception as exc:
            first = exc_line(exc)
            raise UserError(f"{self.path}: the LiteRT interpreter cannot load it ({first}); re-export it") from None
        self.inp = self.interp.get_input_details()[0]
        self.outs = _named_outputs(self.interp)
        self.out = self.outs["logits"]
        self.batch = int(self.inp["shape"][0])

    def _io_shapes(self):
        return [int(d) for d in self.inp["shape"]], [int(d) for d in self.out["shape"]]

    def _embedded(self):
        from ..manifest.tflite import read_manifest
        try:
            return read_manifest(str(self.path))
        except Exception:  # noqa: BLE001 - no or unreadable metadata: only the sidecar speaks
            return None

    def _read_back(self) -> dict[str, Any]:
        d = delegation(self.interp)
        # an int8 graph may keep float I/O (Quantize/Dequantize at the ends): look at its tensors, not its input
        int8 = any(np.dtype(d["dtype"]) in (np.int8, np.uint8) for d in self.interp.get_tensor_details())
        # XNNPACK computes float graphs in f32 (no fp16 opt-in in our models) and int8 graphs in QS8/QU8
        return {"precision": "f32", "threads": self.threads, "delegate": d,
                "io_dtype": np.dtype(self.inp["dtype"]).name, "integer_graph": bool(int8)}

    def _run(self, x: np.ndarray) -> np.ndarray:
        self._invoke(x)
        return self._output(self.out)

    def _run_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self._invoke(x)
        return {name: self._output(d) for name, d in self.outs.items()}

    def _invoke(self, x: np.ndarray) -> None:
        dtype = self.inp["dtype"]
        if dtype != np.float32:  # full-integer model: quantize the normalized input
            scale, zp = self.inp["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zp), info.min, info.max).astype(dtype)
        self.interp.set_tensor(self.inp["index"], x)
        self.interp.invoke()

    def _output(self, detail: dict[str, Any]) -> np.ndarray:
        y = self.interp.get_tensor(detail["index"])
        if y.dtype != np.float32:
            scale, zp = detail["quantization"]
            y = (y.astype(np.float32) - zp) * scale
        return y


def _named_outputs(interp) -> dict[str, dict[str, Any]]:
    """Output tensor details by name: ``logits``, and ``embedding`` for an ``export --embedding`` model, whose
    signature (litert-torch's) lists the module's outputs in order as output_0, output_1; a single-output
    model keeps its first output as the logits, as before."""
    details = interp.get_output_details()
    if len(details) < 2:
        return {"logits": details[0]}
    try:
        sig = next(iter(interp._get_full_signature_list().values()))["outputs"]
    except Exception:  # noqa: BLE001 - no signature: positions are all there is
        sig = {}
    by_index = {int(d["index"]): d for d in details}
    ordered = [by_index[int(i)] for _, i in sorted(sig.items(), key=lambda kv: _output_position(kv[0]))
               if int(i) in by_index] if sig else details
    return dict(zip(("logits", "embedding"), ordered))


def _output_position(name: str) -> tuple[int, str]:
    tail = name.rsplit("_", 1)[-1]
    return (int(tail), name) if tail.isdigit() else (1 << 30, name)
