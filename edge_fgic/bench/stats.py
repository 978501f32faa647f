"""Statistics for comparing an exported artifact with the FP32 reference on the same images.

Every comparison is *paired* (same images, same order), which is what makes small accuracy
drops detectable: the bootstrap resamples images, not two independent samples, and McNemar
only looks at the images where the two models disagree on correctness.

Conventions: rates and accuracies are percentages in [0, 100]; a "drop" or "delta" is in
percentage points. Values are returned unrounded (callers round when writing files), except
in :func:`drift_csv_rows`, which is meant for a CSV. Empty inputs give zeros, not NaN.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..metrics import agreement as _agreement
from ..metrics import confusion_matrix, pair_confusions, per_class_prf, ranked

__all__ = [
    "accuracy_metrics", "paired_bootstrap_drop", "mcnemar", "agreement",
    "per_class_drift", "confusable_pair_drift", "drift_csv_rows",
]  # fmt: skip

EXACT_MCNEMAR_BELOW = 25  # b + c below this: exact binomial test (chi-square is poor there)


# ------------------------------------------------------------------ validation


def _labels(x: Any, name: str, num_classes: int | None = None) -> np.ndarray:
    """1-D int64 class indices; floats are accepted only if integral (``np.asarray([])`` is float)."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if num_classes is not None and a.size and (a.min() < 0 or a.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes - 1}], got [{a.min()}, {a.max()}]")
    return a


def _correct(x: Any, name: str) -> np.ndarray:
    """1-D bool per-image correctness; 0/1 numbers are accepted."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype != bool:
        if a.dtype.kind not in "iuf" or not np.all((a == 0) | (a == 1)):
            raise ValueError(f"{name} must be boolean (or 0/1), got dtype {a.dtype}")
        a = a.astype(bool)
    return a


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("inputs must have the same length, got " + ", ".join(f"{k}={n}" for k, n in lengths.items()))


def _pct(num: float, den: float) -> float:
    return 100.0 * num / den if den else 0.0


# ------------------------------------------------------------------ metrics


def accuracy_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int | None = None) -> dict:
    """top1 (%), top5 (%; top-k with k = min(5, C)), macro_f1 (%), n.

    Macro F1 averages over classes present in the labels *or* the predictions (as in
    ``evaluate``), so a test subset that lacks some classes is not penalised for them.
    NaN logits rank last, and ties go to the lower class index (stable sort), so a broken
    artifact that emits NaN is scored as wrong rather than crashing the bench.
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be [N, C], got shape {z.shape}")
    n, c = z.shape
    if num_classes is not None and num_classes != c:
        raise ValueError(f"logits have {c} columns but num_classes={num_classes}")
    if c == 0:
        raise ValueError("logits have no class columns")
    y = _labels(labels, "labels", c)
    _same_length(logits=z, labels=y)
    if n == 0:
        return {"top1": 0.0, "top5": 0.0, "macro_f1": 0.0, "n": 0}

    top = ranked(z, 5)
    prf = per_class_prf(confusion_matrix(y, top[:, 0], c))
    return {
        "top1": _pct(int(prf["tp"].sum()), n),
        "top5": _pct(int((top == y[:, None]).any(axis=1).sum()), n),
        "macro_f1": float(prf["f1"][prf["active"]].mean()),
        "n": int(n),
    }


def paired_bootstrap_drop(
    ref_correct: np.ndarray,
    art_correct: np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Accuracy drop in points (ref minus artifact; positive = artifact worse) with a paired
    percentile bootstrap CI over images.

    The drop on a resample depends only on how many drawn images fall in each cell of the
    paired table (ref-only right, artifact-only right, concordant), so resampling N image
    indices with replacement is *exactly* a multinomial draw of those three counts. Drawing
    the counts directly is O(n_boot) time and memory for any N, with no chunking needed.
    """
    r = _correct(ref_correct, "ref_correct")
    a = _correct(art_correct, "art_correct")
    _same_length(ref_correct=r, art_correct=a)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    n_boot, n = int(n_boot), len(r)
    if n == 0:
        return {"drop": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n_boot": n_boot, "level": float(level)}

    b = int(np.sum(r & ~a))  # ref right, artifact wrong: +1 to the drop
    c = int(np.sum(~r & a))  # ref wrong, artifact right: -1
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, [b / n, c / n, (n - b - c) / n], size=n_boot)
    drops = 100.0 * (counts[:, 0] - counts[:, 1]) / n
    lo, hi = np.percentile(drops, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return {
        "drop": 100.0 * (b - c) / n,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "n_boot": n_boot,
        "level": float(level),
    }


def mcnemar(ref_correct: np.ndarray, art_correct: np.ndarray) -> dict:
    """McNemar's test: do the two models err on different images more than chance allows?

    Only discordant images carry information: b = ref right & artifact wrong, c = ref wrong &
    artifact right. Exact two-sided binomial (b ~ Bin(b + c, 1/2)) when b + c < 25, else
    chi-square (1 dof) with Edwards' continuity correction, clamped at 0 so b == c gives p = 1.
    """
    r = _correct(ref_correct, "ref_correct")
    a = _correct(art_correct, "art_correct")
    _same_length(ref_correct=r, art_correct=a)
    b, c = int(np.sum(r & ~a)), int(np.sum(~r & a))
    m = b + c
    if m == 0:
        return {"b": 0, "c": 0, "statistic": None, "p_value": 1.0, "method": "exact"}
    if m < EXACT_MCNEMAR_BELOW:
        # exact in integers (no scipy: bench runs in the torch-free install): 2 * sum C(m, k) / 2^m, k <= min(b, c)
        p = min(1.0, 2 * sum(math.comb(m, k) for k in range(min(b, c) + 1)) / 2 ** m)
        return {"b": b, "c": c, "statistic": None, "p_value": p, "method": "exact"}
    stat = max(abs(b - c) - 1, 0) ** 2 / m
    return {"b": b, "c": c, "statistic": float(stat), "p_value": math.erfc(math.sqrt(stat / 2)),  # chi2(1) tail
            "method": "chi2-cc"}


def agreement(ref_pred: np.ndarray, art_pred: np.ndarray) -> float:
    """% of images with the same top-1 prediction (:func:`edge_fgic.metrics.agreement`, on validated
    class indices). 0.0 if empty."""
    r, a = _labels(ref_pred, "ref_pred"), _labels(art_pred, "art_pred")
    _same_length(ref_pred=r, art_pred=a)
    return _agreement(r, a)


# ------------------------------------------------------------------ drift


def _drift_inputs(ref_pred: Any, art_pred: Any, labels: Any, classes: Sequence[str]) -> tuple[np.ndarray, ...]:
    c = len(classes)
    if c == 0:
        raise ValueError("classes must not be empty")
    r = _labels(ref_pred, "ref_pred", c)
    a = _labels(art_pred, "art_pred", c)
    y = _labels(labels, "labels", c)
    _same_length(ref_pred=r, art_pred=a, labels=y)
    return r, a, y


def per_class_drift(ref_pred: np.ndarray, art_pred: np.ndarray, labels: np.ndarray,
                    classes: Sequence[str]) -> list[dict]:
    """Per-class accuracy change, worst first: a small global drop can hide one ruined class.

    Rows {"class", "n", "ref_acc", "art_acc", "delta" (art - ref, points), "flips"}; flips
    counts images of the class whose prediction changed (right or wrong). A class with no
    test images gets n = 0 and zeros. Sorted by delta ascending, ties by class name.
    """
    r, a, y = _drift_inputs(ref_pred, art_pred, labels, classes)
    c = len(classes)
    n = np.bincount(y, minlength=c)
    ref_ok = np.bincount(y, weights=(r == y), minlength=c)
    art_ok = np.bincount(y, weights=(a == y), minlength=c)
    flips = np.bincount(y, weights=(r != a), minlength=c)
    rows = [
        {
            "class": str(classes[k]),
            "n": int(n[k]),
            "ref_acc": _pct(ref_ok[k], n[k]),
            "art_acc": _pct(art_ok[k], n[k]),
            "delta": _pct(art_ok[k] - ref_ok[k], n[k]),  # from counts, so equal changes tie exactly
            "flips": int(flips[k]),
        }
        for k in range(c)
    ]
    rows.sort(key=lambda row: (row["delta"], row["class"]))
    return rows


def confusable_pair_drift(
    ref_pred: np.ndarray, art_pred: np.ndarray, labels: np.ndarray, classes: Sequence[str], top: int = 10
) -> list[dict]:
    """Unordered pairs {a, b} whose mutual confusion (a->b plus b->a) grew most.

    The fine-grained failure mode: quantisation blurs the few features that separate two
    look-alike species, so errors pile up inside such a pair. ``a`` is the lower class index.
    Only pairs with delta > 0; sorted by delta desc, then (a, b) names; at most ``top``.
    """
    r, a, y = _drift_inputs(ref_pred, art_pred, labels, classes)
    c = len(classes)
    if top <= 0 or c < 2:
        return []
    iu, ju, ref_mut = pair_confusions(confusion_matrix(y, r, c))
    _, _, art_mut = pair_confusions(confusion_matrix(y, a, c))
    delta = art_mut - ref_mut
    keep = np.flatnonzero(delta > 0)
    rows = [
        {
            "a": str(classes[iu[k]]),
            "b": str(classes[ju[k]]),
            "ref_confusions": int(ref_mut[k]),
            "art_confusions": int(art_mut[k]),
            "delta": int(delta[k]),
        }
        for k in keep
    ]
    rows.sort(key=lambda row: (-row["delta"], row["a"], row["b"]))
    return rows[:top]


def drift_csv_rows(drift: list[dict]) -> tuple[list[str], list[list]]:
    """Header and rows for ``drift.csv``: counts as ints, accuracies and deltas to 2 decimals
    (0.01 points is far below what a per-class test split can resolve)."""
    header = ["class", "n", "ref_acc", "art_acc", "delta", "flips"]
    rows = []
    for d in drift:
        missing = [k for k in header if k not in d]
        if missing:
            raise ValueError(f"drift row for {d.get('class', '?')!r} lacks {', '.join(missing)}")
        r = [round(float(d[k]), 2) + 0.0 for k in ("ref_acc", "art_acc", "delta")]  # + 0.0: no "-0.0"
        rows.append([str(d["class"]), int(d["n"]), *r, int(d["flips"])])
    return header, rows
