"""ConvNeXt / ConvNeXt V2 classifiers built through timm's registry.

``create_model`` is the one entry point: a timm model name (``convnext_atto`` ...
``convnext_large``, ``convnextv2_*``), the number of classes, optional timm overrides
(``depths``, ``dims``, ``conv_mlp``, ``norm_layer``, ``act_layer`` ...) and an optional
attention head. The resulting :class:`ModelConfig` is stored in every checkpoint, so a
model is always rebuilt exactly as it was trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from ..errors import UserError
from .attention import AttentionHead

SUPPORTED_PREFIXES = ("convnext_", "convnextv2_")

# Block variants of timm's ConvNeXt (its blocks take norm, activation and conv_mlp choices).
# "stock" is timm's block (LayerNorm, GELU, Linear MLP between permutes); the others are the
# INT8-friendly students: BatchNorm folds into the convs (models/fuse.py), ReLU/HardSwish
# quantize as one op, and 1x1 convs avoid the permutes. Trade-offs: benchmarks/quantization.md.
VARIANTS: dict[str, dict[str, Any]] = {
    "stock": {},
    "bn-relu": {"conv_mlp": True, "norm_layer": "batchnorm2d", "act_layer": "relu"},
    "bn-hswish": {"conv_mlp": True, "norm_layer": "batchnorm2d", "act_layer": "hard_swish"},
}


def variant_kwargs(variant: str, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """timm kwargs of a block variant, with explicit ``kwargs`` taking precedence."""
    if variant and variant not in VARIANTS:
        raise UserError(f"unknown student variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return {**VARIANTS.get(variant or "stock", {}), **(kwargs or {})}


def available_models() -> list[str]:
    return [m for m in timm.list_models() if m.startswith(SUPPORTED_PREFIXES)]


@dataclass
class ModelConfig:
    name: str
    num_classes: int
    attention_head: bool = False
    drop_path_rate: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)  # timm overrides (depths, dims, ...)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kwargs"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.kwargs.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["kwargs"] = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(known.get("kwargs", {})).items()}
        return cls(**known)


class FGClassifier(nn.Module):
    """timm ConvNeXt backbone [+ attention on the last feature map] + timm's head."""

    def __init__(self, cfg: ModelConfig, pretrained: bool | str | Path = False):
        super().__init__()
        self.cfg = cfg
        self.backbone = _create_backbone(cfg, pretrained)
        self.num_features = self.backbone.num_features
        self.attention = AttentionHead(self.num_features) if cfg.attention_head else nn.Identity()

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(self.backbone.forward_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(self.forward_features(x))

    def cam_target_layer(self, input_size: int | None = None) -> nn.Module:
        """Module whose NCHW output Grad-CAM explains.

        The final feature map (stride 32) by default. For small inputs (the 64 px demo: a 2x2
        map) the last stage whose map is still at least 4x4, so the overlay shows *where*.
        """
        if input_size is None or input_size // 32 >= 4 or not hasattr(self.backbone, "stages"):
            return self.attention
        stage = max(i for i in range(len(self.backbone.stages)) if input_size // (4 * 2**i) >= 4 or i == 0)
        return self.attention if stage == len(self.backbone.stages) - 1 else self.backbone.stages[stage]


def create_model(
    name: str,
    num_classes: int,
    *,
    attention_head: bool = False,
    drop_path_rate: float = 0.0,
    pretrained: bool | str | Path = False,
    **kwargs: Any,
) -> FGClassifier:
    """Build a classifier; ``pretrained`` is False, True (timm hub) or a local weights file."""
    cfg = ModelConfig(name, int(num_classes), bool(attention_head), float(drop_path_rate), dict(kwargs))
    return FGClassifier(cfg, pretrained)


def _create_backbone(cfg: ModelConfig, pretrained: bool | str | Path) -> nn.Module:
    if not cfg.name.startswith(SUPPORTED_PREFIXES) or not timm.is_model(cfg.name):
        close = [m for m in available_models() if cfg.name.split("_")[-1] in m][:6] or available_models()[:6]
        raise UserError(f"unknown model name {cfg.name!r}; use a timm ConvNeXt, e.g. {', '.join(close)}")
    if cfg.num_classes < 2:
        raise UserError(f"num_classes must be at least 2 for {cfg.name}, got {cfg.num_classes}")
    extra: dict[str, Any] = dict(cfg.kwargs)
    use_pretrained = bool(pretrained)
    if isinstance(pretrained, (str, Path)) and not isinstance(pretrained, bool):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise UserError(f"{path}: pretrained weights file not found; pass a .safetensors/.pth file or --pretrained hub")
        extra["pretrained_cfg_overlay"] = dict(file=str(path))
    try:
        return timm.create_model(
            cfg.name, pretrained=use_pretrained, num_classes=cfg.num_classes, drop_path_rate=cfg.drop_path_rate, **extra
        )
    except UserError:
        raise
    except (RuntimeError, KeyError) as exc:
        if isinstance(pretrained, (str, Path)) and not isinstance(pretrained, bool):
            first = str(exc).strip().splitlines()[0][:200]
            raise UserError(f"{pretrained}: weights do not fit {cfg.name} ({first}); pass weights of that model") from None
        raise
    except (OSError, ValueError) as exc:
        if use_pretrained:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"{cfg.name}: could not fetch pretrained weights from the hub ({first}); "
                "pass --pretrained PATH to a local weights file or train without --pretrained"
            ) from None
        raise UserError(f"{cfg.name}: invalid model options {cfg.kwargs} ({exc})") from None
    except TypeError as exc:
        raise UserError(f"{cfg.name}: invalid model options {cfg.kwargs} ({exc})") from None
