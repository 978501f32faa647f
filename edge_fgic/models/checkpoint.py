"""Checkpoint I/O: weights + preprocessing + classes + configs, never arbitrary pickles.

A checkpoint is a ``torch.save``'d dict of tensors and plain Python values only, so it is
always read back with ``torch.load(weights_only=True)``. It is written atomically.
``best.pt`` holds the model; ``last.pt`` also holds the training state for ``--resume``.
"""

from __future__ import annotations

import datetime as _dt
import pickle
import warnings
from enum import Enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..data.transforms import PreprocessConfig
from ..errors import CheckpointError, exc_line
from ..fileio import atomic_path, sha256_file
from .factory import FGClassifier, ModelConfig

FORMAT = "edge-fgic-checkpoint"
FORMAT_VERSION = 1


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile / EMA wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


@dataclass
class Checkpoint:
    model: ModelConfig
    preprocess: PreprocessConfig
    classes: list[str]
    state_dict: dict[str, torch.Tensor]
    train_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # training state etc. (resume only)
    quantization: dict[str, Any] = field(default_factory=dict)  # INT8 models: NNCF config, scheme, calibration
    path: Path | None = None
    toolkit_version: str = __version__

    @property
    def sha256(self) -> str:
        return sha256_file(self.path) if self.path else ""

    @property
    def is_quantized(self) -> bool:
        return bool(self.quantization)

    def build_model(self) -> FGClassifier:
        model = FGClassifier(self.model)
        if self.quantization:  # the deploy-folded FP32 graph + NNCF's quantizers, as they were saved
            from .quantized import rebuild_quantized
            model = rebuild_quantized(model, self.quantization, self.path)
        try:
            model.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as exc:
            first = exc_line(exc, 1000)
            raise CheckpointError(f"{self.path}: weights do not match {self.model.name} ({first}); "
                                  "the file is damaged or from another model") from None
        return model.eval()


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    classes: list[str],
    preprocess: PreprocessConfig,
    train_config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
    quantization: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temp file + rename)."""
    model = unwrap(model)
    if not isinstance(model, FGClassifier):
        raise TypeError("save_checkpoint expects an FGClassifier")
    sd = state_dict if state_dict is not None else model.state_dict()
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "toolkit_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model.cfg.to_dict(),
        "preprocess": preprocess.to_dict(),
        "classes": list(classes),
        "train_config": _plain(train_config or {}),
        "metrics": _plain(metrics or {}),
        "state_dict": {k: v.detach().cpu() for k, v in sd.items()},
        "extra": extra or {},
        "quantization": _plain(quantization or {}),
    }
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except RuntimeError as exc:
        # torch's zip writer reports a full disk as "[enforce fail at inline_container.cc] unexpected pos"
        import shutil
        try:
            free = shutil.disk_usage(Path(path).parent).free
        except OSError:
            free = -1
        if "inline_container" in str(exc) or "unexpected pos" in str(exc) or 0 <= free < (64 << 20):
            from ..errors import UserError
            raise UserError(f"{path}: the checkpoint could not be written "
                            f"({free // 1024 if free >= 0 else '?'} KiB free "
                            "on that disk: no space left?); free some space or choose another --out") from None
        raise
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint with ``weights_only=True``; one clear line for anything that is not ours."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; pass a .pt file written by `edge-fgic train`")
    try:
        with warnings.catch_warnings():  # foreign pickles warn about their protocol on stderr
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "Unsupported global" in msg:  # every weights_only failure mentions "weights_only"
            raise CheckpointError(
                f"{path}: holds arbitrary Python objects, which edge-fgic refuses to unpickle; "
                "pass a checkpoint written by `edge-fgic train`"
            ) from None
        raise CheckpointError(f"{path}: not a checkpoint (cannot unpickle); "
                              "pass a .pt file written by `edge-fgic train`") from None
    except Exception as exc:  # random bytes raise anything: KeyError, IndexError, struct.error, UnicodeDecodeError ...
        first = exc_line(exc, 120)
        raise CheckpointError(f"{path}: not a readable checkpoint ({first}); "
                              "pass a .pt file written by `edge-fgic train`") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        hint = (
            "it looks like a plain state_dict: use it with --pretrained FILE"
            if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values())
            else "pass a .pt file written by `edge-fgic train`"
        )
        raise CheckpointError(f"{path}: not an edge-fgic checkpoint; {hint}")
    if int(payload.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer edge-fgic (format {payload['format_version']}); "
                              "upgrade edge-fgic")
    try:
        return Checkpoint(
            model=ModelConfig.from_dict(payload["model"]),
            preprocess=PreprocessConfig.from_dict(payload["preprocess"]),
            classes=list(payload["classes"]),
            state_dict=payload["state_dict"],
            train_config=payload.get("train_config", {}),
            metrics=payload.get("metrics", {}),
            extra=payload.get("extra", {}),
            path=path,
            toolkit_version=payload.get("toolkit_version", "?"),
            quantization=payload.get("quantization") or {},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: damaged edge-fgic checkpoint (field {exc}); retrain or restore it") from None


def load_model(path: str | Path) -> tuple[FGClassifier, Checkpoint]:
    ckpt = load_checkpoint(path)
    return ckpt.build_model(), ckpt


def _plain(obj: Any) -> Any:
    """Reduce configs to values ``weights_only`` can read back (paths -> str, tuples -> lists)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Enum):  # e.g. NNCF's QuantizationScheme (a str enum): weights_only refuses the class
        return _plain(obj.value)
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    for t in (bool, int, float, str):  # other subclasses of plain types
        if isinstance(obj, t):
            return t(obj)
    if isinstance(obj, torch.Tensor):
        return obj
    return str(obj)
