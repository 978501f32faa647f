"""PyTorch eager (the reference): an edge-fgic checkpoint, FP32 or NNCF INT8 (fake-quantized)."""

from __future__ import annotations

import numpy as np

from .base import Runner


class TorchRunner(Runner):
    backend = "torch"
    extra = "core"

    @classmethod
    def version(cls) -> str:
        import torch
        return torch.__version__.split("+")[0]

    def _load(self) -> None:
        import torch

        from ..models.checkpoint import load_model
        from ..quant.nncf_quant import _quiet_nncf
        _quiet_nncf()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        self.model, self.ckpt = load_model(self.path)
        dev = "cuda" if self.device.startswith("cuda") and torch.cuda.is_available() else "cpu"
        self.model = self.model.to(dev).eval()
        self._dev = dev
        if self.manifest is None:
            self.manifest = {"classes": list(self.ckpt.classes), "input": {**self.ckpt.preprocess.to_dict(), "layout": "NCHW"},
                             "artifact": {"target": "torch", "precision": "int8" if self.ckpt.is_quantized else "fp32",
                                          "file": self.path.name}}
        self.batch = None

    def _run(self, x: np.ndarray) -> np.ndarray:
        import torch
        with torch.inference_mode():
            return self.model(torch.from_numpy(x).to(self._dev)).float().cpu().numpy()
