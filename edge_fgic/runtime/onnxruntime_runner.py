"""onnxruntime (CPU execution provider; CUDA when asked and available)."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .base import Runner, missing_backend


class OnnxRuntimeRunner(Runner):
    backend = "onnxruntime"
    extra = "onnx"

    @classmethod
    def version(cls) -> str:
        import onnxruntime as ort
        return ort.__version__

    def _load(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise missing_backend("onnxruntime", self.extra, str(self.path)) from None
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if self.device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as exc:  # corrupt / truncated / not ONNX
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise UserError(f"{self.path}: onnxruntime cannot load it ({first}); re-export it") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        b = inp.shape[0]
        self.batch = b if isinstance(b, int) else None

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]
