"""PyTorch eager (the reference): an edge-fgic checkpoint, FP32 or NNCF INT8 (fake-quantized).

The reference must be the same arithmetic on every machine: float32 matmuls and convolutions in
IEEE fp32 (oneDNN may otherwise use bf16/tf32 where ``fp32_precision`` or
``set_float32_matmul_precision`` allow it), a fixed thread count, and the ISA torch dispatched to
recorded. bf16 (CPU autocast) only when asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..manifest import Manifest
from .base import Runner


def exact_fp32() -> dict[str, Any]:
    """Ask torch for IEEE fp32 matmuls/convolutions; return what it reports back."""
    import torch
    mk = torch.backends.mkldnn
    for part in (mk.matmul, mk.conv):
        if hasattr(part, "fp32_precision"):
            part.fp32_precision = "ieee"
    return torch_read_back()


def torch_read_back() -> dict[str, Any]:
    import torch
    mk = torch.backends.mkldnn
    prec = {name: getattr(getattr(mk, name), "fp32_precision", None) for name in ("matmul", "conv")}
    exact = all(p in ("ieee", None) for p in prec.values()) or (
        all(p in ("ieee", "none", None) for p in prec.values()) and torch.get_float32_matmul_precision() == "highest")
    return {"precision": "f32" if exact else "reduced", "fp32_precision": prec,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}


class TorchRunner(Runner):
    backend = "torch"
    compute_precisions = ("f32", "bf16")

    @classmethod
    def version(cls) -> str:
        import torch
        return torch.__version__.split("+")[0]

    def _load(self) -> None:
        import torch

        from ..models.checkpoint import load_model
        from ..quiet import quiet_nncf
        quiet_nncf()
        torch.set_num_threads(self.threads)
        exact_fp32()
        self.requested = {"precision": self.compute_precision, "threads": self.threads, "fp32_precision": "ieee"}
        self.model, self.ckpt = load_model(self.path)
        dev = "cuda" if self.device.startswith("cuda") and torch.cuda.is_available() else "cpu"
        self.model = self.model.to(dev).eval()
        self._dev = dev
        if self.manifest is None:  # a checkpoint describes itself
            self.manifest = Manifest.from_checkpoint(self.ckpt, target="torch", file=self.path.name,
                                                     precision="int8" if self.ckpt.is_quantized else "fp32")
        self.batch = None

    def _read_back(self) -> dict[str, Any]:
        import torch
        out = torch_read_back()
        out["device"] = self._dev
        if self.precision == "bf16":
            out["precision"] = "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "bf16 (emulated)"
        return out

    def _run(self, x: np.ndarray) -> np.ndarray:
        import torch
        with torch.inference_mode(), torch.autocast(self._dev, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return self.model(torch.from_numpy(x).to(self._dev)).float().cpu().numpy()
