"""The runner interface and the lookup from an artifact to its runner."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError


class Runner:
    """Base class. Subclasses implement :meth:`_load` and :meth:`_run` (one static-shape batch).

    ``predict`` takes what the manifest's preprocessing produces — NCHW, float32, normalized —
    and does the rest: layout (NHWC for TFLite), integer input/output (de)quantization, and
    splitting a batch for artifacts exported with a fixed batch size.
    """

    backend = ""      # "onnxruntime", "openvino", ...
    extra = ""        # the pip extra that installs the backend

    def __init__(self, path: str | Path, manifest: dict[str, Any] | None = None, *, threads: int | None = None,
                 device: str = "cpu"):
        from ..export.manifest import read_manifest
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"{self.path}: no such artifact")
        self.manifest = manifest if manifest is not None else read_manifest(self.path)
        self.threads = threads
        self.device = device
        self.batch: int | None = None   # fixed batch size of the artifact; None = dynamic
        self._load()

    # -- subclass API
    def _load(self) -> None:
        raise NotImplementedError

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def version(cls) -> str:
        return ""

    # -- shared
    @property
    def layout(self) -> str:
        return ((self.manifest or {}).get("input") or {}).get("layout", "NCHW")

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.layout == "NHWC":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if self.batch is None or self.batch == len(x):
            return np.asarray(self._run(x), dtype=np.float32)
        outs = []
        for i in range(0, len(x), self.batch):
            chunk = x[i:i + self.batch]
            pad = self.batch - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            outs.append(np.asarray(self._run(chunk), dtype=np.float32)[:self.batch - pad])
        return np.concatenate(outs)

    def describe(self) -> str:
        return f"{self.backend} {self.version()}".strip()


# suffix -> (module, class); the export target table names the same runners
_RUNNERS = {
    "onnxruntime": ("edge_fgic.runtime.onnxruntime_runner", "OnnxRuntimeRunner"),
    "openvino": ("edge_fgic.runtime.openvino_runner", "OpenVINORunner"),
    "litert": ("edge_fgic.runtime.litert_runner", "LiteRTRunner"),
    "tensorrt": ("edge_fgic.runtime.tensorrt_runner", "TensorRTRunner"),
    "torch": ("edge_fgic.runtime.torch_runner", "TorchRunner"),
}


def runner_for(backend: str) -> type[Runner]:
    if backend not in _RUNNERS:
        raise UserError(f"unknown runtime {backend!r}; known: {', '.join(_RUNNERS)}")
    module, cls = _RUNNERS[backend]
    return getattr(importlib.import_module(module), cls)


def backend_of(path: str | Path) -> str:
    name = str(path).lower()
    if name.endswith(".onnx"):
        return "onnxruntime"
    if name.endswith(".xml"):
        return "openvino"
    if name.endswith(".tflite"):
        return "litert"
    if name.endswith((".engine", ".plan")):
        return "tensorrt"
    if name.endswith(".pt"):
        return "torch"
    raise UserError(f"{path}: not an artifact edge-fgic can run (.onnx, .xml, .tflite, .engine, or a .pt checkpoint)")


def open_runner(path: str | Path, manifest: dict[str, Any] | None = None, **kwargs: Any) -> Runner:
    """The right runner for ``path`` (by suffix), loaded."""
    return runner_for(backend_of(path))(path, manifest, **kwargs)


def missing_backend(module: str, extra: str, what: str) -> UserError:
    return UserError(f"{what} needs the `{module}` package; install it with `pip install \"edge-fgic[{extra}]\"`")
