"""LiteRT (``ai-edge-litert``): the standalone TFLite interpreter Android runs, XNNPACK on CPU."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .base import Runner, missing_backend


class LiteRTRunner(Runner):
    backend = "litert"
    extra = "tflite"

    @classmethod
    def version(cls) -> str:
        from importlib.metadata import version
        return version("ai-edge-litert")

    def _load(self) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise missing_backend("ai-edge-litert", self.extra, str(self.path)) from None
        from ..export.tflite_export import quiet_native_logs
        try:
            with quiet_native_logs():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interp = Interpreter(model_path=str(self.path), num_threads=self.threads or None)
                self.interp.allocate_tensors()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise UserError(f"{self.path}: the LiteRT interpreter cannot load it ({first}); re-export it") from None
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.batch = int(self.inp["shape"][0])

    def _run(self, x: np.ndarray) -> np.ndarray:
        dtype = self.inp["dtype"]
        if dtype != np.float32:  # full-integer model: quantize the normalized input
            scale, zp = self.inp["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zp), info.min, info.max).astype(dtype)
        self.interp.set_tensor(self.inp["index"], x)
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"])
        if y.dtype != np.float32:
            scale, zp = self.out["quantization"]
            y = (y.astype(np.float32) - zp) * scale
        return y
