"""OpenVINO runtime (CPU): on x86 the runtime that executes NNCF's INT8 convolutions in integer."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .base import Runner, missing_backend


class OpenVINORunner(Runner):
    backend = "openvino"
    extra = "openvino"

    @classmethod
    def version(cls) -> str:
        import openvino as ov
        return ov.get_version().split("-")[0]

    def _load(self) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise missing_backend("openvino", self.extra, str(self.path)) from None
        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        try:
            model = core.read_model(str(self.path))
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise UserError(f"{self.path}: OpenVINO cannot load it ({first}); re-export it") from None
        self.request = self.compiled.create_infer_request()
        shape = self.compiled.input(0).get_partial_shape()
        self.batch = shape[0].get_length() if shape[0].is_static else None

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.request.infer({0: x})[self.compiled.output(0)].copy()
