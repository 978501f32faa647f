"""One preprocessing config, saved with every checkpoint, drives train and eval transforms.

Readers downstream (export manifests, runtimes, the Android demo) read the same fields, so
nothing ever guesses input size, mean/std, interpolation or crop fraction.

Two implementations of the eval path: :func:`eval_transform` (torchvision, a tensor: training and
evaluation) and :func:`eval_array` / :func:`eval_batch` (NumPy + Pillow: what ``predict``, ``camera``
and ``bench`` feed a runner, so running an artifact needs no torch). They are bit-identical on RGB
PIL images (tests/test_torch_free.py checks it over random sizes, aspect ratios, interpolations and
crop fractions). torchvision is imported only when a torchvision transform is built.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # pragma: no cover
    from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# interpolation name -> Pillow's resampling filter (torchvision's pil_modes_mapping for these three)
PIL_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}
_INTERP = tuple(PIL_RESAMPLE)


def _tv_interp(name: str):
    from torchvision.transforms import InterpolationMode
    return InterpolationMode(name)


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


def eval_transform(cfg: PreprocessConfig) -> "T.Compose":
    """Resize the shorter side to ``input_size / crop_pct``, centre-crop, normalise (torchvision, a tensor)."""
    from torchvision import transforms as T
    return T.Compose(
        [
            T.Resize(cfg.resize_size, interpolation=_tv_interp(cfg.interpolation)),
            T.CenterCrop(cfg.input_size),
            T.ToTensor(),
            T.Normalize(cfg.mean, cfg.std),
        ]
    )


def resized_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``shorter`` and the longer one truncated (torchvision's Resize(int))."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = shorter, int(shorter * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def center_crop_array(a: np.ndarray, size: int) -> np.ndarray:
    """An HWC image's centre ``size`` x ``size``, zero-padded first where it is smaller (torchvision's CenterCrop:
    pad left/top ``(size - w) // 2``, right/bottom the rest; offsets ``int(round((h - size) / 2.0))``)."""
    h, w = a.shape[:2]
    if size > w or size > h:
        pw, ph = max(size - w, 0), max(size - h, 0)
        a = np.pad(a, ((ph // 2, (ph + 1) // 2), (pw // 2, (pw + 1) // 2), (0, 0)))
        h, w = a.shape[:2]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return a[top:top + size, left:left + size]


def eval_array(img: Image.Image, cfg: PreprocessConfig) -> np.ndarray:
    """:func:`eval_transform` in NumPy + Pillow: one image as (3, S, S) float32, bit-identical to torchvision's."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    w, h = img.size
    size = resized_size(w, h, cfg.resize_size)
    if size != (w, h):  # torchvision returns the image untouched when it already has the size
        img = img.resize(size, PIL_RESAMPLE[cfg.interpolation])
    a = center_crop_array(np.asarray(img, dtype=np.uint8), cfg.input_size)
    x = a.transpose(2, 0, 1).astype(np.float32) / np.float32(255)      # ToTensor: float32, then / 255
    mean = np.asarray(cfg.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(cfg.std, dtype=np.float32).reshape(3, 1, 1)
    return np.ascontiguousarray((x - mean) / std, dtype=np.float32)   # Normalize: subtract, then divide


def eval_batch(images: Sequence[Image.Image], cfg: PreprocessConfig) -> np.ndarray:
    """Images -> the runner input: (N, 3, S, S) float32, RGB, NCHW."""
    return np.stack([eval_array(im, cfg) for im in images]).astype(np.float32, copy=False)


def train_transform(cfg: PreprocessConfig, aug: AugmentConfig | None = None) -> "T.Compose":
    from torchvision import transforms as T
    aug = aug or AugmentConfig()
    interp = _tv_interp(cfg.interpolation)
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
