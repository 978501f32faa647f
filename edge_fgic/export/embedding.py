"""``export --embedding``: the model every target converts when the artifact carries the embedding as a
second output, and the manifest entry that names it.

The second output is the vector the classifier layer reads (``FGClassifier.forward_with_embedding``:
timm's ``pre_logits``), **L2-normalised inside the graph**: a device then compares two images with a dot
product (cosine similarity), which is what retrieval and open-set rejection need, and what eval's
recall@k scores. Outputs are ``logits`` first, ``embedding`` second, selected by name by every runner.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..manifest import EmbeddingSpec

OUTPUT_NAMES = ["logits", "embedding"]


def l2_normalize(emb: torch.Tensor) -> torch.Tensor:
    return F.normalize(emb, p=2.0, dim=1, eps=1e-12)


class WithEmbedding(nn.Module):
    """``forward(x) -> (logits, embedding)``; the embedding L2-normalised unless ``normalize=False`` (the FP16
    graph normalises after its float32 cast, see ``onnx_export._Half``)."""

    def __init__(self, net: nn.Module, normalize: bool = True):
        super().__init__()
        self.net = net
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, emb = self.net.forward_with_embedding(x)
        return logits, l2_normalize(emb) if self.normalize else emb


def check_embedding(model: nn.Module, precision: str, source: str) -> None:
    """One line where ``export --embedding`` cannot be honoured."""
    if precision == "int8":
        raise UserError(f"{source}: --embedding is not available for INT8 exports yet (the Q/DQ, OpenVINO and "
                        "TFLite INT8 graphs are traced from the NNCF model's logits only); export fp32 or fp16 "
                        "with --embedding, or drop the flag")
    if not hasattr(model, "forward_with_embedding"):
        raise UserError(f"{source}: its model ({type(model).__name__}) has no embedding output "
                        "(forward_with_embedding); retrain with this edge-fgic or drop --embedding")


def reference_embedding(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What the artifact's ``embedding`` output must equal: the source model's, normalised as exported."""
    return l2_normalize(model.forward_embedding(x))


def embedding_spec(dim: int, batch: int | None) -> EmbeddingSpec:
    return EmbeddingSpec(dim=int(dim), name=OUTPUT_NAMES[1], shape=[batch if batch else -1, int(dim)],
                         normalized=True)
