"""Knowledge distillation: a small student learns from a trained teacher checkpoint.

Loss (Hinton et al.)::

    (1 - kd_weight) * CE(student, labels) + kd_weight * T^2 * KL(softmax(teacher / T) || softmax(student / T))
    [+ feature_kd * MSE(projector(student features), teacher features)]
    [+ triplet_weight * batch-hard triplet loss on the student's embedding (training/metric_loss.py)]

The teacher runs in eval mode under ``no_grad`` on exactly the batch the student sees, so
mixup/CutMix and every augmentation are applied identically to both. A teacher trained at a
larger input size (a pretrained 224 px teacher, a 112 px student) sees the batch at its own
size, and the student the same crops resized to its size (antialiased), so neither works on
upsampled pixels. Any timm classifier can teach (logit KD); feature KD needs an NCHW feature
map (a CNN), which the 1x1 projector maps from the student's width. The student's
checkpoint records the teacher's path and SHA-256 in its train_config. The triplet term is
the loop's (:mod:`.trainer`), on the student's embedding; by default the student inherits the
teacher's ``triplet_weight`` with the rest of its recipe (``--triplet-weight 0`` turns it off).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UserError
from ..models import FGClassifier, load_model
from ..models.factory import is_convnext
from .config import TrainConfig
from .hooks import TrainHooks


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2-scaled KL divergence between temperature-softened distributions (batch mean)."""
    t = temperature
    return F.kl_div(F.log_softmax(student_logits.float() / t, dim=1), F.log_softmax(teacher_logits.float() / t, dim=1),
                    reduction="batchmean", log_target=True) * (t * t)


def feature_loss(student_feats: torch.Tensor, teacher_feats: torch.Tensor) -> torch.Tensor:
    """MSE between per-sample standardised feature maps (scale-free), resized to the teacher's grid."""
    if student_feats.shape[-2:] != teacher_feats.shape[-2:]:
        student_feats = F.adaptive_avg_pool2d(student_feats, teacher_feats.shape[-2:])

    def norm(f: torch.Tensor) -> torch.Tensor:
        f = f.float().flatten(1)
        return (f - f.mean(1, keepdim=True)) / (f.std(1, keepdim=True) + 1e-6)

    return F.mse_loss(norm(student_feats), norm(teacher_feats))


class StudentWithFeatures(nn.Module):
    """Student + 1x1 projector to the teacher's width; forward returns (logits, projected features)."""

    def __init__(self, student: FGClassifier, projector: nn.Module):
        super().__init__()
        self.student, self.projector = student, projector

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.student.forward_features(x)
        return self.student.backbone.forward_head(feats), self.projector(feats)

    def forward_with_embedding(self, x: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``((logits, projected features), embedding)`` in one pass, for the triplet loss (training/metric_loss.py)."""
        feats = self.student.forward_features(x)
        emb = self.student.backbone.forward_head(feats, pre_logits=True)
        return (self.student.backbone.get_classifier()(emb), self.projector(feats)), emb


def load_teacher(cfg: TrainConfig, out: Path) -> tuple[FGClassifier, Any]:
    """Load and check the teacher checkpoint; one clear line for each way it can be wrong."""
    path = Path(cfg.teacher).expanduser()
    if path.resolve().parent == out.expanduser().resolve():
        raise UserError(f"{path}: the teacher lives in the student's output folder {out} and would be overwritten "
                        "(a student cannot be its own teacher); pass the teacher's own checkpoint or another --out")
    teacher, ckpt = load_model(path)
    if ckpt.quantization:
        raise UserError(f"{path}: is an INT8 (quantized) checkpoint; distil from the FP32 teacher instead")
    pp = ckpt.preprocess
    if tuple(round(v, 6) for v in pp.mean) != tuple(round(v, 6) for v in cfg.mean) or \
            tuple(round(v, 6) for v in pp.std) != tuple(round(v, 6) for v in cfg.std):
        raise UserError(f"{path}: the teacher was trained with mean {list(pp.mean)} / std {list(pp.std)} "
                        f"but the student uses {list(cfg.mean)} / {list(cfg.std)}; "
                        "both must see the same normalised images (keep the teacher's values)")
    return teacher, ckpt


class DistillHooks(TrainHooks):
    """Distillation from ``cfg.teacher``; with no teacher it is plain training (QAT reuses it)."""

    def __init__(self, cfg: TrainConfig, out: Path):
        self.cfg = cfg
        self.teacher: FGClassifier | None = None
        self.teacher_ckpt = None
        self.projector: nn.Module | None = None
        self.teacher_size = cfg.input_size
        if cfg.teacher:
            self.teacher, self.teacher_ckpt = load_teacher(cfg, out)
            self.teacher.requires_grad_(False)
            self.teacher_size = max(cfg.input_size, int(self.teacher_ckpt.preprocess.input_size))

    def train_input_size(self, cfg: TrainConfig) -> int:
        return self.teacher_size

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.cfg.input_size and x.shape[-2] == self.cfg.input_size:
            return x
        size = (self.cfg.input_size, self.cfg.input_size)
        y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        return y.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else y

    def teacher_input(self, x: torch.Tensor) -> torch.Tensor:
        t = int(self.teacher_ckpt.preprocess.input_size)
        if x.shape[-1] == t and x.shape[-2] == t:
            return x
        return F.interpolate(x, size=(t, t), mode="bilinear", antialias=True, align_corners=False)

    def check_classes(self, classes: list[str]) -> None:
        if self.teacher_ckpt is not None and list(self.teacher_ckpt.classes) != list(classes):
            raise UserError(f"{self.cfg.teacher}: the teacher was trained on {len(self.teacher_ckpt.classes)} classes "
                            f"that differ from the {len(classes)} classes of {self.cfg.data}; "
                            "distil on the teacher's dataset")

    def build_model(self, cfg, classes, pretrained, state):
        self.check_classes(classes)
        return super().build_model(cfg, classes, pretrained, state)

    def setup(self, model: FGClassifier, device: torch.device) -> None:
        if self.teacher is None:
            return
        self.teacher.to(device).eval()
        if self.cfg.channels_last:
            self.teacher.to(memory_format=torch.channels_last)
        if self.cfg.feature_kd > 0:
            t = int(self.teacher_ckpt.preprocess.input_size)
            with torch.no_grad():
                shape = tuple(self.teacher.forward_features(torch.zeros(1, 3, t, t, device=device)).shape)
            if len(shape) != 4:
                raise UserError(f"{self.cfg.teacher}: feature_kd needs an NCHW feature map, "
                                f"but the {self.teacher_ckpt.model.name} teacher's features have shape {list(shape)}; "
                                "set feature_kd 0 (logit KD works with any teacher)")
            s_dim, t_dim = model.num_features, self.teacher.num_features
            self.projector = nn.Conv2d(s_dim, t_dim, 1, bias=False).to(device)

    def training_module(self, model: FGClassifier) -> nn.Module:
        return StudentWithFeatures(model, self.projector) if self.projector is not None else model

    def loss(self, outputs, x, target, criterion):
        logits, proj = outputs if isinstance(outputs, tuple) else (outputs, None)
        label_loss = criterion(logits, target)
        if self.teacher is None or (self.cfg.kd_weight == 0 and proj is None):
            return label_loss  # kd_weight 0: the no-teacher baseline with the identical recipe
        with torch.no_grad():
            t_feats = self.teacher.forward_features(self.teacher_input(x))
            t_logits = self.teacher.backbone.forward_head(t_feats)
        w = self.cfg.kd_weight
        loss = (1 - w) * label_loss + w * kd_loss(logits, t_logits, self.cfg.kd_temperature)
        if proj is not None:
            loss = loss + self.cfg.feature_kd * feature_loss(proj, t_feats)
        return loss

    def state_dict(self):
        return {"projector": self.projector.state_dict()} if self.projector is not None else None

    def load_state_dict(self, state):
        if self.projector is not None and state.get("projector") is not None:
            self.projector.load_state_dict(state["projector"])

    def config_extra(self):
        if self.teacher_ckpt is None:
            return {}
        return {"teacher_sha256": self.teacher_ckpt.sha256, "teacher_model": self.teacher_ckpt.model.name,
                "teacher_val_top1": self.teacher_ckpt.metrics.get("val_top1"),
                "teacher_input_size": int(self.teacher_ckpt.preprocess.input_size)}


def distill_config(teacher: str | Path, tck, *, recipe: str | Path | None = None,
                   overrides: dict[str, Any] | None = None, device: str = "auto", keep_student_shape: bool = True):
    """The student's TrainConfig: a recipe, or by default the teacher's own options (same dataset, preprocessing and
    augmentation, so both see identical images) minus what belongs to the teacher; then ``overrides``.
    Used by ``edge-fgic distill`` and the pipeline."""
    from .config import TrainConfig, load_recipe
    names = set(TrainConfig.__dataclass_fields__)
    if recipe is not None:
        fields = load_recipe(recipe)
        source = str(recipe)
    else:
        fields = {k: v for k, v in (tck.train_config or {}).items() if k in names}
        for k in ("pretrained", "freeze_stages", "attention_head", "teacher", "quantize", "variant", "model_kwargs",
                  "out"):
            fields.pop(k, None)  # a fresh student: no hub weights, its own block choice
        # another family teaches: the student is our INT8-friendly ConvNeXt
        if not is_convnext(str(fields.get("model", ""))):
            fields["model"], fields["variant"] = "convnext_atto", "bn-relu"
            keep_student_shape = False
        fields["model_kwargs"] = {k: v for k, v in dict((tck.train_config or {}).get("model_kwargs") or {}).items()
                                  if k in ("depths", "dims")} if keep_student_shape else {}
        source = f"{teacher} (teacher's options)"
    default_out = Path(teacher).expanduser().parent.with_name(Path(teacher).expanduser().parent.name + "-student")
    fields.update(overrides or {})
    fields.setdefault("out", str(default_out))
    fields["teacher"] = str(teacher)
    fields["device"] = device
    return TrainConfig.from_dict(fields, source)
