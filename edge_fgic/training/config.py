"""Training configuration: one dataclass, loadable from a YAML recipe in ``train/``.

Every field is a plain value so the whole config is stored inside each checkpoint and
``--resume`` can verify it continues the same run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError
from ..models.factory import VARIANTS


@dataclass
class TrainConfig:
    # data
    data: str = "synthetic=datasets/synthetic_fg"
    skip_bad_images: bool = False
    cache_images: bool = False  # keep decoded images in RAM (small datasets, slow disks)
    workers: int = 2
    # model
    model: str = "convnext_atto"
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # timm overrides: depths, dims, norm_layer ...
    variant: str = ""  # block variant preset (models.factory.VARIANTS): stock | bn-relu | bn-hswish; model_kwargs win
    attention_head: bool = False
    # "" (random init), "hub" (timm hub), a local weights file or pkg:NAME (an installed weights package)
    pretrained: str = ""
    # fine-tuning: -1 = train all; N >= 0 = the stem and the first N stages keep their weights and BN statistics
    freeze_stages: int = -1
    drop_path_rate: float = 0.0
    # preprocessing (saved with every checkpoint)
    input_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    # augmentation
    scale: tuple[float, float] = (0.35, 1.0)
    hflip: float = 0.5
    color_jitter: float = 0.3
    auto_augment: str = "trivialaugment"
    random_erasing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    mixup_prob: float = 1.0
    label_smoothing: float = 0.1
    # optimisation
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    sched: str = "cosine"  # cosine | cyclic (cosine with warm restarts) | constant
    cycles: int = 1
    warmup_epochs: float = 1.0
    min_lr: float = 1e-6
    grad_clip: float = 0.0
    ema: bool = False
    ema_decay: float = 0.999
    patience: int = 0  # early stopping on val top-1; 0 = off
    # distillation (teacher = a checkpoint of ours; "" = plain training)
    teacher: str = ""
    kd_weight: float = 0.7  # loss = (1 - kd_weight) * label loss + kd_weight * T^2 * KL(student/T || teacher/T)
    kd_temperature: float = 4.0
    feature_kd: float = 0.0  # weight of the feature loss (last feature maps, 1x1 projector); 0 = off
    # metric learning: loss += triplet_weight * batch-hard triplet loss (training/metric_loss.py) on the
    # L2-normalised embedding before the classifier; 0 = off. On, the train batches are P classes x pk_images
    # (K) images with P = batch_size / K (training/sampler.py). QAT (quantize != {}) trains without it.
    triplet_weight: float = 0.0
    triplet_margin: float = 0.2
    pk_images: int = 4
    # quantization-aware training (set by `edge-fgic quantize --mode qat`; {} = FP32 training)
    quantize: dict[str, Any] = field(default_factory=dict)
    # hardware
    device: str = "auto"
    amp: str = "auto"  # auto (bf16 on CUDA when supported, else fp16; off on CPU) | bf16 | fp16 | off
    channels_last: bool = True  # NHWC memory format (faster on CUDA and on CPU oneDNN)
    compile: bool = False
    seed: int = 0
    deterministic: bool = False
    # outputs
    out: str = "runs/train"
    gradcam: int = 8

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UserError(f"{source}: unknown training option(s) {unknown}; see `edge-fgic train --help`")
        cfg = cls(**{k: tuple(v) if isinstance(v, list) and k in ("mean", "std", "scale") else v for k, v in d.items()})
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "config") -> None:
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.optimizer in ("adamw", "sgd"), "optimizer must be adamw or sgd"),
            (self.sched in ("cosine", "cyclic", "constant"), "sched must be cosine, cyclic or constant"),
            (self.amp in ("auto", "bf16", "fp16", "off"), "amp must be auto, bf16, fp16 or off"),
            (self.input_size >= 16, "input_size must be >= 16"),
            (0 < self.crop_pct <= 1, "crop_pct must be in (0, 1]"),
            (self.auto_augment in ("trivialaugment", "randaugment", "none"),
             "auto_augment must be trivialaugment, randaugment or none"),
            (self.cycles >= 1, "cycles must be >= 1"),
            (0 <= self.kd_weight <= 1, "kd_weight must be in [0, 1]"),
            (self.kd_temperature > 0, "kd_temperature must be > 0"),
            (self.feature_kd >= 0, "feature_kd must be >= 0"),
            (self.variant in ("", *VARIANTS), f"variant must be one of {', '.join(VARIANTS)}"),
            (self.freeze_stages >= -1,
             "freeze_stages must be -1 (train all), 0 (the stem) or N (the stem and N stages)"),
            (self.triplet_weight >= 0, "triplet_weight must be >= 0 (0 = off)"),
            (self.triplet_margin >= 0, "triplet_margin must be >= 0"),
            (self.pk_images >= 1, "pk_images must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UserError(f"{source}: {msg}")
        k, bs = self.pk_images, self.batch_size
        if self.uses_triplet() and (bs % k or bs // k < 2):
            raise UserError(f"{source}: triplet_weight > 0 draws batches of P classes x pk_images {k} images, so "
                            f"batch_size {bs} must be a multiple of {k} with P >= 2; set --batch-size "
                            f"{max(2, round(bs / k)) * k} or another --pk-images")

    def uses_triplet(self) -> bool:
        """The triplet loss and its P x K sampler are on (never in QAT, which only reproduces its FP32 model)."""
        return self.triplet_weight > 0 and not self.quantize


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe; returns a dict of TrainConfig fields (validated later, with overrides)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: recipe not found; see the YAML files in train/")
    try:
        d = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} invalid YAML ({getattr(exc, 'problem', exc)}); fix the recipe") from None
    if not isinstance(d, dict):
        raise UserError(f"{path}: a recipe must be a YAML mapping of training options")
    d.pop("description", None)
    return d


# The embedded default recipe (`edge-fgic train` with no --config; `make demo`). It is kept
# identical to train/synthetic.yaml by a test, so the installed package needs no repo files.
DEMO_RECIPE: dict[str, Any] = {
    "data": "synthetic=datasets/synthetic_fg",
    "model": "convnext_atto",
    # BatchNorm + ReLU + 1x1-conv MLP: trains fast from scratch on a CPU and folds cleanly for INT8
    "model_kwargs": {"depths": [1, 1, 2, 1], "dims": [32, 64, 128, 256], "conv_mlp": True,
                     "norm_layer": "batchnorm2d", "act_layer": "relu"},
    "input_size": 64,
    "crop_pct": 1.0,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "scale": [0.75, 1.0],
    "hflip": 0.0,
    "auto_augment": "none",
    "color_jitter": 0.2,
    "label_smoothing": 0.1,
    "epochs": 28,
    "batch_size": 32,
    "lr": 0.004,
    "weight_decay": 0.05,
    "warmup_epochs": 1,
    "cache_images": True,
    "workers": 0,
    "gradcam": 8,
    "out": "runs/demo",
}
