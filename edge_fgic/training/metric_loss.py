"""Metric learning: the auxiliary batch-hard triplet loss on the embedding before the classifier.

``loss = CE (+ KD) + triplet_weight * batch_hard_triplet_loss(embedding, labels, triplet_margin)``
(Hermans et al. 2017, "In Defense of the Triplet Loss"). The embedding is the model's ``pre_logits``
(:meth:`FGClassifier.forward_with_embedding`), L2-normalised here, so distances lie in [0, 2] and the default
margin 0.2 is on that scale. The batches come from :class:`.sampler.PKBatchSampler` (P classes x K images),
so every anchor has positives.

Mixup/CutMix: the images are mixed, the embedding is of the mixed image, so its triplet label is the
*dominant* source's. timm's ``Mixup`` mixes sample ``i`` with ``i`` of the flipped batch (``x.flip(0)``;
batch, pair and elem modes alike) with weight ``lam`` on the sample's own image (one ``lam`` per batch, or
per element; area-corrected for CutMix), and its soft target is ``lam`` on ``y[i]`` and ``1 - lam`` on
``y.flip(0)[i]``. The triplet label is ``y[i]`` when ``lam >= 0.5`` (read off the soft target), else
``y.flip(0)[i]``: :func:`dominant_labels`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def pairwise_distances(embedding: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the L2-normalised rows of ``embedding`` (N, D) -> (N, N), in [0, 2].

    The square root is safe at 0 (identical embeddings, the diagonal): the distance is exactly 0 there and
    its gradient 0, never NaN. Float32 even under AMP (bf16 would round 2 - 2 cos near 0 too coarsely)."""
    with torch.autocast(embedding.device.type, enabled=False):
        e = F.normalize(embedding.float(), dim=1)
        d2 = (2.0 - 2.0 * e @ e.t()).clamp_min(0.0)
    eps = 1e-12
    return torch.where(d2 > eps, d2.clamp_min(eps).sqrt(), torch.zeros_like(d2))


def batch_hard_triplet_loss(embedding: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Batch-hard triplet loss: for each anchor its farthest positive (same label, not itself) and closest
    negative (other label), ``relu(d(a, p) - d(a, n) + margin)``, averaged over the anchors that have both.

    Distances are Euclidean on the L2-normalised embedding (:func:`pairwise_distances`). An anchor without a
    positive (its label alone in the batch) or without a negative (one label in the batch) is left out (it
    still serves as the others' negative); with no valid anchor the loss is 0 with a (zero) gradient."""
    labels = labels.view(-1)
    d = pairwise_distances(embedding)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    valid = pos.any(1) & neg.any(1)
    if not bool(valid.any()):
        return embedding.float().sum() * 0.0
    hardest_pos = d.masked_fill(~pos, 0.0).amax(1)
    hardest_neg = d.masked_fill(~neg, float("inf")).amin(1)
    per_anchor = F.relu(hardest_pos - hardest_neg + margin)
    return per_anchor[valid].mean()


def dominant_labels(labels: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The triplet label of each sample of a timm-Mixup batch: its own label where its own image has weight
    >= 0.5 in the mix, else the label of the image it was mixed with (``labels.flip(0)``, timm's pairing).

    ``target`` is the soft target Mixup returned (N, C; label smoothing shifts both weights alike, so the
    comparison still reads ``lam``); a hard ``target`` (N,) means no mixing, and ``labels`` is returned."""
    if target.ndim == 1:
        return labels
    other = labels.flip(0)
    own_w = target.gather(1, labels[:, None]).squeeze(1)
    other_w = target.gather(1, other[:, None]).squeeze(1)
    return torch.where(own_w >= other_w, labels, other)


class WithEmbedding(nn.Module):
    """Wraps the module the loop trains so its forward returns ``(outputs, embedding)`` in one pass (the module's
    ``forward_with_embedding``); DDP wraps this, so the triplet term's gradients are all-reduced too."""

    def __init__(self, module: nn.Module):
        super().__init__()
        if not hasattr(module, "forward_with_embedding"):
            raise TypeError(f"{type(module).__name__} has no forward_with_embedding")
        self.module = module

    def forward(self, x: torch.Tensor):
        return self.module.forward_with_embedding(x)


class TripletTerm:
    """The weighted triplet term of the training loss and its per-epoch mean (``train_triplet`` in the history:
    the unweighted loss, averaged over the epoch's samples)."""

    def __init__(self, weight: float, margin: float):
        self.weight, self.margin = weight, margin
        self.total, self.seen = 0.0, 0

    def __call__(self, embedding: torch.Tensor, labels: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = batch_hard_triplet_loss(embedding, dominant_labels(labels, target), self.margin)
        self.total += loss.item() * len(labels)
        self.seen += len(labels)
        return self.weight * loss

    def epoch_metrics(self) -> dict[str, float]:
        """``{"train_triplet": mean}`` of the epoch so far, and a fresh count for the next."""
        row = {"train_triplet": self.total / max(self.seen, 1)}
        self.total, self.seen = 0.0, 0
        return row
