"""The class-balanced P x K batch sampler the triplet loss trains on (:mod:`.metric_loss`).

Rule: ``pk_images`` = K images per class, P = ``batch_size / K`` classes per batch (the batch size keeps its
meaning, and with it the recipe's learning rate); ``batch_size`` must be a multiple of K with P >= 2
(:meth:`TrainConfig.validate`), and P at most the train split's class count (:func:`pk_sampler`).

An epoch is ``len(dataset) // batch_size`` batches (at least one per rank). Each class's images are shuffled
and cut into chunks of K (the last chunk, or a class with fewer than K images, is topped up by drawing
that class's images again, with replacement); each batch takes one chunk from each of P distinct classes,
drawn with probability proportional to the chunks a class has left, and a class whose chunks run out is
reshuffled. So an epoch sees about every image once and large classes do not crowd out small ones.

Exactness: the batches depend only on ``(seed, epoch)`` and the labels, not on any global RNG, so a
``--resume``d epoch draws the same batches. Under DDP the epoch's ``world x n`` batches are dealt out
round-robin: rank ``r`` gets batches ``r, r + world, ...``, disjoint from every other rank's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from ..errors import UserError


class PKBatchSampler(Sampler[list[int]]):
    """``batch_sampler`` for a DataLoader: batches of ``classes_per_batch`` (P) distinct classes x
    ``images_per_class`` (K) images; ``num_batches`` per rank; call :meth:`set_epoch` before each epoch."""

    def __init__(self, labels: Sequence[int], classes_per_batch: int, images_per_class: int, num_batches: int,
                 seed: int = 0, rank: int = 0, world: int = 1):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.classes = np.unique(self.labels)
        if classes_per_batch > len(self.classes):
            raise ValueError(f"{classes_per_batch} classes per batch but only {len(self.classes)} classes")
        self.p, self.k, self.num_batches = classes_per_batch, images_per_class, max(1, num_batches)
        self.seed, self.rank, self.world, self.epoch = seed, rank, world, 0
        self.by_class = [np.flatnonzero(self.labels == c) for c in self.classes]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def _chunks(self, rng: np.random.Generator, c: int) -> list[np.ndarray]:
        idx = rng.permutation(self.by_class[c])
        short = -len(idx) % self.k
        if short:
            idx = np.concatenate([idx, rng.choice(self.by_class[c], short, replace=True)])
        return list(idx.reshape(-1, self.k))

    def epoch_batches(self) -> list[list[int]]:
        """All ranks' batches of this epoch (rank ``r`` iterates ``[r::world]``)."""
        rng = np.random.default_rng([self.seed % 2**32, self.epoch, 0x504B])
        queues = [self._chunks(rng, c) for c in range(len(self.classes))]
        batches = []
        for _ in range(self.num_batches * self.world):
            left = np.array([len(q) for q in queues], dtype=np.float64)
            if (left > 0).sum() < self.p:  # too few classes left for a batch: reshuffle the spent ones
                for c in np.flatnonzero(left == 0):
                    queues[c] = self._chunks(rng, int(c))
                left = np.array([len(q) for q in queues], dtype=np.float64)
            chosen = rng.choice(len(queues), self.p, replace=False, p=left / left.sum())
            batch = np.concatenate([queues[c].pop() for c in chosen])
            rng.shuffle(batch)  # mixup pairs i with N-1-i: mix across classes, not within a block
            batches.append([int(i) for i in batch])
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches()[self.rank::self.world]


def pk_sampler(labels: Sequence[int], batch_size: int, pk_images: int, seed: int, epoch: int, world: int = 1,
               rank: int = 0, source: str = "train split") -> PKBatchSampler:
    """The trainer's P x K sampler for one epoch: P = batch_size / pk_images (validated by TrainConfig),
    ``len(labels) // batch_size`` batches in all; a one-line UserError when P exceeds the class count."""
    p = batch_size // pk_images
    n_classes = len(set(int(v) for v in labels))
    if p > n_classes:
        fits = [k for k in range(1, batch_size + 1) if batch_size % k == 0 and 2 <= batch_size // k <= n_classes]
        hint = f"e.g. --pk-images {fits[0]}" if fits else f"a batch_size of at most {n_classes * pk_images}"
        raise UserError(f"{source}: batch_size {batch_size} / pk_images {pk_images} = {p} classes per batch, but it "
                        f"has {n_classes} classes; choose {hint} (or a smaller --batch-size)")
    sampler = PKBatchSampler(labels, p, pk_images, max(1, len(labels) // batch_size // world), seed, rank, world)
    sampler.set_epoch(epoch)
    return sampler
