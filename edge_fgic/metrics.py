"""The classification maths every stage shares: ranked predictions, the confusion matrix, per-class
precision/recall/F1, top-1 agreement between two models, and the embedding's retrieval and margin
figures (recall@k, class-pair centroid distances and spreads, neighbour agreement). ``evaluate``
(training), ``bench`` (its statistics), the exporter's round trip, QAT and the emulated bench all compute
from these, so a number means the same thing in every report.

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



# ---------------------------------------------------------------- embeddings
#
# Retrieval and margin figures of an embedding (the vector the classifier layer reads), all on cosine
# similarity of L2-normalised rows, so a raw and a normalised copy of the same embedding score alike.

_CHUNK_ENTRIES = 1 << 22   # similarity entries held at once (32 MiB of float64): a 10 000+ image split never
                           # materialises its N x N matrix


def l2_normalize(embedding: Any, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (float64); an all-zero row stays zero, a non-finite one becomes zero."""
    e = np.asarray(embedding, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError(f"an embedding must be [N, D], got shape {e.shape}")
    e = np.where(np.isfinite(e).all(axis=1, keepdims=True), e, 0.0)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), eps)


def _query_chunks(n: int, chunk: int | None):
    """Row ranges of at most ``chunk`` queries (default: as many as fit ``_CHUNK_ENTRIES`` similarities)."""
    step = max(1, int(chunk) if chunk else _CHUNK_ENTRIES // max(1, n))
    for s in range(0, n, step):
        yield np.arange(s, min(n, s + step))


def retrieval_ranks(embedding: Any, labels: Any, *, chunk: int | None = None) -> np.ndarray:
    """Leave-one-out rank of each query's first same-label item: how many *other-label* items are at least
    as similar as its most similar same-label item (0: the nearest neighbour shares its label). Ties count
    against the query, so the figure never flatters. -1 for a query whose label has no other item in the
    set (it cannot be scored). Exact and independent of ``chunk`` (queries per block of similarities)."""
    e = l2_normalize(embedding)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    n = e.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"{n} embedding rows but {y.shape[0]} labels")
    ranks = np.full(n, -1, dtype=np.int64)
    for rows in _query_chunks(n, chunk):
        m = np.arange(len(rows))
        sim = e[rows] @ e.T                                    # [m, N] cosine similarities
        same = y[rows][:, None] == y[None, :]
        same[m, rows] = False                                  # a query never retrieves itself
        best_pos = np.where(same, sim, -np.inf).max(axis=1)    # its most similar same-label item
        other = ~same
        other[m, rows] = False
        ahead = ((sim >= best_pos[:, None]) & other).sum(axis=1)
        ranks[rows] = np.where(same.any(axis=1), ahead, -1)
    return ranks


def recall_at_k(embedding: Any, labels: Any, ks: Any = (1, 5), *, chunk: int | None = None) -> dict[str, Any]:
    """Leave-one-out retrieval on a split: every image queries all the others by cosine similarity of the
    L2-normalised embedding; recall@k (%) is the share of queries with at least one same-label image among
    their k most similar (:func:`retrieval_ranks`: ties count against the query). Queries whose class has
    no other image in the split are left out (``queries`` counts the scored ones; with none, every
    recall is None). Memory: one block of ``chunk`` x N similarities at a time.

    Returns ``{"recall@1": ..., "recall@5": ..., "queries": n, "unscored": m}``."""
    ranks = retrieval_ranks(embedding, labels, chunk=chunk)
    scored = ranks[ranks >= 0]
    out: dict[str, Any] = {}
    for k in ks:
        k = int(k)
        if k < 1:
            raise ValueError(f"recall@k needs k >= 1, got {k}")
        out[f"recall@{k}"] = 100.0 * float(np.mean(scored < k)) if len(scored) else None
    out["queries"] = int(len(scored))
    out["unscored"] = int(len(ranks) - len(scored))
    return out


def class_geometry(embedding: Any, labels: Any, num_classes: int | None = None) -> dict[str, np.ndarray]:
    """Per class, on L2-normalised rows: the centroid (mean direction, normalised; zero for an absent
    class), the ``spread`` (mean cosine distance ``1 - cos`` of its images to that centroid: how loose the
    class is) and its image count. Absent classes have spread NaN."""
    e = l2_normalize(embedding)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    c = int(num_classes) if num_classes is not None else (int(y.max()) + 1 if len(y) else 0)
    count = np.bincount(y, minlength=c)[:c]
    sums = np.zeros((c, e.shape[1]))
    np.add.at(sums, y, e)
    centroid = l2_normalize(sums)
    cos_to_own = np.einsum("nd,nd->n", e, centroid[y]) if len(y) else np.zeros(0)
    spread = np.full(c, np.nan)
    present = count > 0
    spread[present] = 1.0 - np.bincount(y, weights=cos_to_own, minlength=c)[:c][present] / count[present]
    return {"centroid": centroid, "spread": spread, "count": count}


def class_pair_distances(embedding: Any, labels: Any, pairs: Any, num_classes: int | None = None) -> list[dict]:
    """For each (class a, class b): ``distance``, the cosine distance ``1 - cos`` between the two class
    centroids (0: same direction, 1: orthogonal, 2: opposite); ``a_spread``/``b_spread``, each class's own
    mean distance to its centroid; and ``separation = distance / mean(a_spread, b_spread)`` - how many
    class-widths apart the pair sits. A metric loss that widens the margin of a look-alike pair raises its
    distance or shrinks its spreads, so separation grows; a pair near 1 overlaps. Values None where a class
    has no image (or both spreads are 0)."""
    g = class_geometry(embedding, labels, num_classes)
    cen, spread, count = g["centroid"], g["spread"], g["count"]
    out = []
    for a, b in pairs:
        a, b = int(a), int(b)
        if a >= len(count) or b >= len(count) or not count[a] or not count[b]:
            out.append({"a_index": a, "b_index": b, "distance": None, "a_spread": None, "b_spread": None,
                        "separation": None})
            continue
        dist = float(1.0 - cen[a] @ cen[b])
        width = float((spread[a] + spread[b]) / 2.0)
        out.append({"a_index": a, "b_index": b, "distance": dist, "a_spread": float(spread[a]),
                    "b_spread": float(spread[b]), "separation": dist / width if width > 0 else None})
    return out


def embedding_summary(embedding: Any, labels: Any, num_classes: int | None = None) -> dict[str, Any]:
    """Split-wide context for the pair figures: the mean spread over the classes present and the mean
    centroid distance over every pair of present classes (both cosine distances)."""
    g = class_geometry(embedding, labels, num_classes)
    present = g["count"] > 0
    cen = g["centroid"][present]
    iu, ju = np.triu_indices(len(cen), k=1)
    dists = 1.0 - np.einsum("pd,pd->p", cen[iu], cen[ju]) if len(iu) else np.zeros(0)
    return {"mean_spread": float(np.nanmean(g["spread"][present])) if present.any() else None,
            "mean_centroid_distance": float(dists.mean()) if len(dists) else None,
            "dim": int(np.asarray(embedding).shape[1])}


def neighbour_agreement(a: Any, b: Any, *, chunk: int | None = None) -> float:
    """% of images whose leave-one-out nearest neighbour (cosine) is the same image under two embeddings of
    the same images (an artifact's vs its source's, INT8's vs FP32's). 100.0 with fewer than 2 images."""
    ea, eb = l2_normalize(a), l2_normalize(b)
    n = ea.shape[0]
    if eb.shape[0] != n:
        raise ValueError(f"neighbour agreement of {n} and {eb.shape[0]} embeddings: pair them by image")
    if n < 2:
        return 100.0
    same = 0
    for rows in _query_chunks(n, chunk):
        m = np.arange(len(rows))
        sa, sb = ea[rows] @ ea.T, eb[rows] @ eb.T
        sa[m, rows] = sb[m, rows] = -np.inf
        same += int(np.sum(sa.argmax(axis=1) == sb.argmax(axis=1)))
    return 100.0 * same / n
