"""What a stage changes in the generic training loop (:mod:`.trainer`): the hooks it overrides.

Its own module so that distillation (:mod:`.distill`) and QAT (``edge_fgic.quant``) can subclass
the hooks without importing the loop, and the loop can pick distillation without an import circle.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..models import create_model
from ..models.checkpoint import Checkpoint
from ..models.factory import FGClassifier, variant_kwargs
from .config import TrainConfig


class TrainHooks:
    """What a stage changes in the generic loop: how the model is built, what it returns while
    training, its loss, extra trainable state and extra checkpoint fields. Plain training uses
    this class as is; distillation (training/distill.py) and QAT (quant/nncf_quant.py) subclass it."""

    def build_model(self, cfg: TrainConfig, classes: list[str], pretrained: bool | str,
                    state: Checkpoint | None) -> FGClassifier:
        return create_model(cfg.model, len(classes), attention_head=cfg.attention_head,
                            drop_path_rate=cfg.drop_path_rate,
                            pretrained=pretrained, **variant_kwargs(cfg.variant, cfg.model_kwargs))

    def setup(self, model: FGClassifier, device: torch.device) -> None:
        """Called once the model is on its device (before the optimiser is built)."""

    def train_input_size(self, cfg: TrainConfig) -> int:
        """Side of the training batches the loader makes (a teacher may see them larger than the student)."""
        return cfg.input_size

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """The training batch as the model sees it (resized to the student's input size by distillation)."""
        return x

    def training_module(self, model: FGClassifier) -> nn.Module:
        """The module the optimiser trains and DDP wraps (the model, or the model + helpers)."""
        return model

    def loss(self, outputs: Any, x: torch.Tensor, target: torch.Tensor, criterion: nn.Module) -> torch.Tensor:
        return criterion(outputs, target)

    def state_dict(self) -> dict[str, Any] | None:
        """Extra trainable state saved in last.pt (e.g. a feature projector)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def config_extra(self) -> dict[str, Any]:
        """Plain values added to the checkpoint's train_config (e.g. the teacher's hash)."""
        return {}

    def checkpoint_fields(self, model: nn.Module) -> dict[str, Any]:
        """Extra keyword arguments for save_checkpoint (e.g. quantization=...)."""
        return {}

    # the per-epoch metric that picks best.pt (higher is better); QAT picks fidelity to its FP32 model
    best_key = "val_top1"

    def val_metrics(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
        """Extra per-epoch validation metrics (e.g. agreement with a reference model)."""
        return {}
