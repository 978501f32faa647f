"""Classifiers built through timm's registry: ConvNeXt by default, any timm CNN as a teacher.

``create_model`` is the one entry point: a timm model name (``convnext_atto`` ...
``convnext_large``, ``convnextv2_*``; or any other timm classifier, e.g. the pretrained
``tf_efficientnet_lite0`` teacher), the number of classes, optional timm overrides
(``depths``, ``dims``, ``conv_mlp``, ``norm_layer``, ``act_layer`` ...) and an optional
attention head. The resulting :class:`ModelConfig` is stored in every checkpoint, so a
model is always rebuilt exactly as it was trained. ConvNeXt is the student family: the
deploy folding (fuse.py) and the INT8 recipes are written and measured for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from ..errors import UserError, exc_line
from .attention import AttentionHead

SUPPORTED_PREFIXES = ("convnext_", "convnextv2_")  # the default family (students, INT8 recipes)

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
    """The ConvNeXt family (any other timm classifier works too, as a teacher above all)."""
    return [m for m in timm.list_models() if m.startswith(SUPPORTED_PREFIXES)]


def is_convnext(name: str) -> bool:
    return name.startswith(SUPPORTED_PREFIXES)


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
        self.weights_report = getattr(self.backbone, "_edge_fgic_weights", None)  # weights.LoadReport of a local file
        self.num_features = self.backbone.num_features
        self.attention = AttentionHead(self.num_features) if cfg.attention_head else nn.Identity()

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(self.backbone.forward_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(self.forward_features(x))

    def forward_with_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, embedding)`` in one pass: the embedding is what the classifier layer reads (timm's
        ``pre_logits``: pooled, and for ConvNeXt normed), not L2-normalised; logits equal :meth:`forward`'s."""
        emb = self.backbone.forward_head(self.forward_features(x), pre_logits=True)
        return self.backbone.get_classifier()(emb), emb

    def forward_embedding(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding alone (N, D), as :meth:`forward_with_embedding` gives it."""
        return self.backbone.forward_head(self.forward_features(x), pre_logits=True)

    def cam_target_layer(self, input_size: int | None = None) -> nn.Module:
        """Module whose NCHW output Grad-CAM explains.

        The final feature map (stride 32) by default. For small inputs (the 64 px demo: a 2x2
        map) the last stage whose map is still at least 4x4, so the overlay shows *where*
        (ConvNeXt's stages; other timm CNNs through their ``feature_info``).
        """
        if input_size is None or input_size // 32 >= 4:
            return self.attention
        if not hasattr(self.backbone, "stages"):
            return self._feature_info_layer(input_size)
        stage = max(i for i in range(len(self.backbone.stages)) if input_size // (4 * 2**i) >= 4 or i == 0)
        return self.attention if stage == len(self.backbone.stages) - 1 else self.backbone.stages[stage]

    def _feature_info_layer(self, input_size: int) -> nn.Module:
        info = list(getattr(self.backbone, "feature_info", None) or [])
        fits = [f for f in info if isinstance(f, dict) and f.get("module")
                and input_size // int(f.get("reduction", 32)) >= 4]
        if not fits or fits[-1] is info[-1]:
            return self.attention
        return self.backbone.get_submodule(fits[-1]["module"])


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


def _unknown_model(name: str) -> UserError:
    import difflib
    close = difflib.get_close_matches(name, timm.list_models(), n=4, cutoff=0.6)
    family = [m for m in available_models() if name.split("_")[-1] in m][:4] or available_models()[:4]
    return UserError(f"unknown model name {name!r}; "
                     f"use a timm classifier, e.g. {', '.join(dict.fromkeys(close + family))}")


def _create_backbone(cfg: ModelConfig, pretrained: bool | str | Path) -> nn.Module:
    if not timm.is_model(cfg.name):
        raise _unknown_model(cfg.name)
    if cfg.num_classes < 2:
        raise UserError(f"num_classes must be at least 2 for {cfg.name}, got {cfg.num_classes}")
    extra: dict[str, Any] = dict(cfg.kwargs)
    local = isinstance(pretrained, (str, Path)) and not isinstance(pretrained, bool)
    use_pretrained = bool(pretrained) and not local
    if local:
        from .weights import resolve_weights
        resolve_weights(pretrained)  # a missing file or package is named before the model is built
    try:
        net = timm.create_model(
            cfg.name, pretrained=use_pretrained, num_classes=cfg.num_classes, drop_path_rate=cfg.drop_path_rate, **extra
        )
    except UserError:
        raise
    except (OSError, ValueError) as exc:
        if use_pretrained:
            first = exc_line(exc, 160)
            raise UserError(
                f"{cfg.name}: could not fetch pretrained weights from the hub ({first}); "
                "pass --pretrained PATH to a local weights file or train without --pretrained"
            ) from None
        raise UserError(f"{cfg.name}: invalid model options {cfg.kwargs} ({exc})") from None
    except TypeError as exc:
        raise UserError(f"{cfg.name}: invalid model options {cfg.kwargs} ({exc})") from None
    if local:  # names, shapes and count checked; only a classifier for another class count is left fresh
        from .weights import load_pretrained
        net._edge_fgic_weights = load_pretrained(net, pretrained, cfg.name)
    return net
