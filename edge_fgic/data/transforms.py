"""One preprocessing config, saved with every checkpoint, drives train and eval transforms.

Readers downstream (export manifests, runtimes, the Android demo) read the same fields, so
nothing ever guesses input size, mean/std, interpolation or crop fraction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_INTERP = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


@dataclass
class PreprocessConfig:
    """How an image becomes the model's input tensor (RGB, NCHW, float32)."""

    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    channel_order: str = "RGB"
    layout: str = "NCHW"

    def __post_init__(self) -> None:
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        if self.interpolation not in _INTERP:
            raise ValueError(f"interpolation must be one of {sorted(_INTERP)}, got {self.interpolation!r}")
        if not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in (0, 1], got {self.crop_pct}")

    @property
    def resize_size(self) -> int:
        """Shorter side before the centre crop (timm's convention: floor(size / crop_pct))."""
        return int(math.floor(self.input_size / self.crop_pct))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PreprocessConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class AugmentConfig:
    """Training-time augmentation; never saved into artifacts (only into the training config)."""

    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    color_jitter: float = 0.3
    auto_augment: str = "trivialaugment"  # trivialaugment | randaugment | none
    random_erasing: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def eval_transform(cfg: PreprocessConfig) -> T.Compose:
    """Resize the shorter side to ``input_size / crop_pct``, centre-crop, normalise."""
    return T.Compose(
        [
            T.Resize(cfg.resize_size, interpolation=_INTERP[cfg.interpolation]),
            T.CenterCrop(cfg.input_size),
            T.ToTensor(),
            T.Normalize(cfg.mean, cfg.std),
        ]
    )


def train_transform(cfg: PreprocessConfig, aug: AugmentConfig | None = None) -> T.Compose:
    aug = aug or AugmentConfig()
    interp = _INTERP[cfg.interpolation]
    ops: list[Any] = [T.RandomResizedCrop(cfg.input_size, scale=tuple(aug.scale), ratio=tuple(aug.ratio),
                                          interpolation=interp)]
    if aug.hflip > 0:
        ops.append(T.RandomHorizontalFlip(aug.hflip))
    if aug.auto_augment == "trivialaugment":
        ops.append(T.TrivialAugmentWide(interpolation=interp))
    elif aug.auto_augment == "randaugment":
        ops.append(T.RandAugment(interpolation=interp))
    elif aug.auto_augment not in ("none", "", None):
        raise ValueError(f"auto_augment must be trivialaugment, randaugment or none, got {aug.auto_augment!r}")
    if aug.color_jitter > 0:
        cj = aug.color_jitter
        ops.append(T.ColorJitter(brightness=cj, contrast=cj, saturation=cj))
    ops += [T.ToTensor(), T.Normalize(cfg.mean, cfg.std)]
    if aug.random_erasing > 0:
        ops.append(T.RandomErasing(p=aug.random_erasing))
    return T.Compose(ops)
