"""Models: timm ConvNeXt factory, attention head, checkpoint I/O."""

from .checkpoint import Checkpoint, load_checkpoint, load_model, save_checkpoint
from .factory import FGClassifier, ModelConfig, available_models, create_model

__all__ = [
    "Checkpoint",
    "FGClassifier",
    "ModelConfig",
    "available_models",
    "create_model",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]
