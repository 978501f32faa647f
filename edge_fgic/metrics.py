"""The classification maths every stage shares: ranked predictions, the confusion matrix, per-class
precision/recall/F1 and top-1 agreement between two models. ``evaluate`` (training), ``bench`` (its
statistics), the exporter's round trip, QAT and the emulated bench all compute from these, so a number
means the same thing in every report.

Conventions: rates are percentages in [0, 100], unrounded (callers round for files). NaN logits rank
last and ties go to the lower class index (a stable sort), so a broken artifact that emits NaN is
scored as wrong instead of crashing the report.

May import: numpy only (layer 1, beside data and manifest).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def ranked(logits: Any, k: int = 5) -> np.ndarray:
    """The ``min(k, C)`` best classes of each row, best first ([N, k] int64)."""
    z = np.asarray(logits, dtype=np.float64)
    return np.argsort(-np.where(np.isnan(z), -np.inf, z), axis=1, kind="stable")[:, : min(k, z.shape[1])]


def top1(logits_or_preds: Any) -> np.ndarray:
    """Predicted classes: the argmax of [N, C] logits (NaN-safe, as :func:`ranked`), or [N] predictions as given."""
    a = np.asarray(logits_or_preds)
    return ranked(a, 1)[:, 0] if a.ndim == 2 else a.astype(np.int64).reshape(-1)


def confusion_matrix(targets: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[i, j]``: images of true class i predicted as j (rows = true)."""
    t, p = np.asarray(targets, dtype=np.int64), np.asarray(preds, dtype=np.int64)
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_prf(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall and F1 (%), and the classes that occur in the targets or the predictions
    (``active``: the label set macro averages run over, scikit-learn's default). Precision of a class never
    predicted, recall of a class with no samples and F1 where both are 0 are 0, not NaN."""
    c = cm.shape[0]
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(c), where=predicted > 0) * 100.0
    recall = np.divide(tp, support, out=np.zeros(c), where=support > 0) * 100.0
    denom = precision + recall
    f1 = np.divide(2.0 * precision * recall, denom, out=np.zeros(c), where=denom > 0)
    return {"tp": tp, "support": support, "predicted": predicted, "precision": precision, "recall": recall,
            "f1": f1, "active": (support > 0) | (predicted > 0)}


def pair_confusions(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered class pair {i < j} and its mutual confusion ``cm[i, j] + cm[j, i]`` (i, j, counts): the
    fine-grained failure mode, errors piling up inside a pair of look-alike classes."""
    cm = np.asarray(cm, dtype=np.int64)
    iu, ju = np.triu_indices(cm.shape[0], k=1)
    return iu, ju, (cm + cm.T)[iu, ju]


def agreement(a: Any, b: Any) -> float:
    """% of images on which two models give the same top-1 class (logits or predictions, paired by image).
    Catches the drift accuracy hides: two models with equal accuracy can still disagree on many images.
    0.0 when there are no images."""
    pa, pb = top1(a), top1(b)
    if len(pa) != len(pb):
        raise ValueError(f"agreement of {len(pa)} and {len(pb)} predictions: the inputs must be paired by image")
    return 100.0 * int(np.sum(pa == pb)) / len(pa) if len(pa) else 0.0
