"""Models: the timm factory (ConvNeXt students, any timm teacher), the attention head, local weights
(:mod:`.weights`), deploy folding (:mod:`.fuse`), checkpoint I/O (:mod:`.checkpoint`) and the NNCF-quantized
model (:mod:`.quantized`, with NNCF's C++ kernels built in a child: :mod:`.nncf_ext`).

May import: errors, fileio, quiet, progress, native, data (not runtime, training, quant, export).
"""

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
