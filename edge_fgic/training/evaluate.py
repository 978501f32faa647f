"""Evaluation: logits, fine-grained metrics, confusion matrix, most-confused pairs, Grad-CAM.

Conventions (every number in ``metrics.json`` and in the returned dict):

* **Rates are percentages in [0, 100]**: ``top1``, ``top5``, ``macro_precision``,
  ``macro_recall``, ``macro_f1``, every per-class ``precision``/``recall``/``f1`` and every
  confused-pair ``rate``. Counts are ints. Values are rounded to 4 decimals.
* ``top5`` is top-k accuracy with ``k = min(5, num_classes)``; ``topk_k`` records k.
* Precision of a class that is never predicted is 0 (not NaN); recall of a class with no
  samples is 0; F1 is 0 when precision + recall is 0.
* Macro averages are unweighted means over the classes that occur in the targets *or* the
  predictions (scikit-learn's default label set); classes absent from both are left out so
  a split that lacks some classes is not penalised for them. ``macro_classes`` counts them.
  Macro F1 is the mean of per-class F1 (not the F1 of macro P and R).
* ``confusion_matrix[i][j]`` counts images of true class i predicted as j (rows = true).
* ``confused_pairs`` ranks *unordered* pairs {a, b} by ``total = a_as_b + b_as_a``; ties by
  ``rate = total / (support_a + support_b)``, then by class index. Each pair is oriented so
  that ``a -> b`` is the more frequent direction.
* ``nll`` is the mean cross-entropy (nats) over rows with finite logits.
* ``recall@1`` / ``recall@5`` (%): leave-one-out retrieval with the embedding the classifier layer reads
  (cosine on L2-normalised vectors; ties count against the query; queries whose class has no other image
  are not scored). ``embedding`` holds its dimension, each class's ``spread`` (mean cosine distance to its
  centroid) and, for the most-confused pairs, the centroid ``distance``, both spreads and ``separation`` =
  distance / mean spread: a wider margin between look-alike classes shows as a larger separation. Models
  without an embedding (old checkpoints) get None and ``embedding.note``.

Size: over 400 lines because prediction, the metrics dict, the embedding figures, the report files and
the Grad-CAM panel of one evaluation share their conventions here.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data.transforms import PreprocessConfig
from ..errors import UserError
from ..fileio import write_json, write_text
from ..metrics import (class_geometry, class_pair_distances, confusion_matrix, embedding_summary, pair_confusions,
                       per_class_prf, ranked, recall_at_k)
from ..models.checkpoint import unwrap
from ..progress import track
from .gradcam import eval_mode, grad_cam, save_gradcam_grid
from .plots import plot_confusion_matrix, short_name

__all__ = [
    "predict_logits",
    "predict_with_embedding",
    "classification_metrics",
    "embedding_metrics",
    "confused_pairs",
    "select_gradcam_indices",
    "evaluate",
]

_ROUND = 4


# ---------------------------------------------------------------- predictions


def predict_logits(
    model: nn.Module,
    dataset_or_loader: Dataset | DataLoader,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    num_workers: int = 0,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over a dataset (or a ready DataLoader) in eval mode under ``inference_mode``.

    Returns ``(logits [N, C] float32, targets [N] int64)`` in dataset order. The model is
    moved to ``device`` (and stays there); every module's train/eval flag is restored.
    """
    logits, targets, _ = predict_with_embedding(model, dataset_or_loader, device=device, batch_size=batch_size,
                                                num_workers=num_workers, progress=progress, embedding=False)
    return logits, targets


def embedding_source(model: nn.Module) -> tuple[str, str]:
    """How :func:`predict_with_embedding` reads ``model``'s embedding: ``("method", "")`` through
    ``forward_with_embedding`` (a plain FGClassifier), ``("hook", "")`` as the input of the classifier layer
    during the ordinary forward (an NNCF INT8 model: its own hooks only run inside its forward, so the
    method would bypass its quantizers), or ``("", why)``: none."""
    net = unwrap(model)
    nncf_wrapped = any(k.startswith("__nncf") for k, _ in net.named_children()) or hasattr(net, "nncf")
    if hasattr(net, "forward_with_embedding") and not nncf_wrapped:
        return "method", ""
    backbone = getattr(net, "backbone", None)
    if backbone is not None and hasattr(backbone, "get_classifier") \
            and isinstance(backbone.get_classifier(), nn.Module) and not isinstance(backbone.get_classifier(),
                                                                                   nn.Identity):
        return "hook", ""
    return "", f"{type(net).__name__} has no forward_with_embedding (a checkpoint from before it)"


def predict_with_embedding(
    model: nn.Module,
    dataset_or_loader: Dataset | DataLoader,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    num_workers: int = 0,
    progress: bool = True,
    embedding: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`predict_logits` plus the embedding of the same forward pass: ``(logits, targets, embedding
    [N, D] float32 or None)``. The embedding is what the classifier layer reads (timm's ``pre_logits``, not
    L2-normalised), taken as :func:`embedding_source` says; None when the model has none or
    ``embedding=False``."""
    device = torch.device(device)
    if isinstance(dataset_or_loader, DataLoader):
        loader = dataset_or_loader
    else:
        loader = DataLoader(
            dataset_or_loader,
            batch_size=max(1, int(batch_size)),
            shuffle=False,
            num_workers=int(num_workers),
            pin_memory=device.type == "cuda",
        )
    try:
        total: int | None = len(loader)
    except TypeError:
        total = None
    model.to(device)
    how = embedding_source(model)[0] if embedding else ""
    net = unwrap(model)
    logits_parts: list[torch.Tensor] = []
    target_parts: list[torch.Tensor] = []
    emb_parts: list[torch.Tensor] = []
    seen: list[torch.Tensor] = []
    handle = None
    if how == "hook":
        handle = net.backbone.get_classifier().register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        with eval_mode(model), torch.inference_mode():
            for batch in track(loader, total=total, description="evaluate", enabled=progress):
                x, y = batch[0], batch[1]
                x = x.to(device, non_blocking=True)
                if how == "method":
                    out, emb = net.forward_with_embedding(x)
                else:
                    out = model(x)
                    emb = seen.pop() if how == "hook" and seen else None
                    seen.clear()
                if isinstance(out, (tuple, list)):
                    out = out[0]
                logits_parts.append(out.detach().float().cpu())
                target_parts.append(torch.as_tensor(y).reshape(-1).long().cpu())
                if emb is not None:
                    emb_parts.append(emb.detach().float().flatten(1).cpu())
    finally:
        if handle is not None:
            handle.remove()
    if not logits_parts:
        c = int(getattr(net, "num_classes", 0) or 0)
        return np.zeros((0, c), dtype=np.float32), np.zeros((0,), dtype=np.int64), None
    embedding_out = torch.cat(emb_parts).numpy().astype(np.float32) \
        if how and len(emb_parts) == len(logits_parts) else None
    return (torch.cat(logits_parts).numpy().astype(np.float32), torch.cat(target_parts).numpy().astype(np.int64),
            embedding_out)


# ---------------------------------------------------------------- metrics


def _pct(num: float, den: float) -> float:
    return round(100.0 * float(num) / float(den), _ROUND) if den > 0 else 0.0


def classification_metrics(
    logits: np.ndarray,
    targets: np.ndarray,
    classes: Sequence[str] | None = None,
    top_pairs: int | None = 10,
) -> dict[str, Any]:
    """All evaluation metrics from raw logits; see the module docstring for conventions."""
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets).reshape(-1).astype(np.int64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be [N, C], got shape {logits.shape}")
    n, c = logits.shape
    if targets.shape[0] != n:
        raise ValueError(f"{n} logit rows but {targets.shape[0]} targets")
    classes = [str(k) for k in range(c)] if classes is None else [str(k) for k in classes]
    if len(classes) != c:
        raise ValueError(f"logits have {c} columns but {len(classes)} class names were given")
    if n == 0:
        raise UserError("nothing to evaluate: the split has no images")
    if targets.min() < 0 or targets.max() >= c:
        raise ValueError(f"targets must lie in [0, {c - 1}], got [{targets.min()}, {targets.max()}]")

    finite_rows = np.isfinite(logits).all(axis=1)
    k = min(5, c)
    top = ranked(logits, k)
    preds = top[:, 0]
    correct = preds == targets
    in_topk = (top == targets[:, None]).any(axis=1)

    nll: float | None = None
    if finite_rows.any():
        lf, tf = logits[finite_rows], targets[finite_rows]
        m = lf.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(lf - m).sum(axis=1))
        nll = round(float(np.mean(lse - lf[np.arange(lf.shape[0]), tf])), 6)

    cm = confusion_matrix(targets, preds, c)
    prf = per_class_prf(cm)
    tp, support, predicted = prf["tp"], prf["support"], prf["predicted"]
    precision, recall, f1, active = prf["precision"], prf["recall"], prf["f1"], prf["active"]

    per_class = [
        {
            "index": i,
            "class": classes[i],
            "support": int(support[i]),
            "predicted": int(predicted[i]),
            "correct": int(tp[i]),
            "precision": round(float(precision[i]), _ROUND),
            "recall": round(float(recall[i]), _ROUND),
            "f1": round(float(f1[i]), _ROUND),
        }
        for i in range(c)
    ]
    return {
        "n": int(n),
        "num_classes": int(c),
        "top1": _pct(correct.sum(), n),
        "top5": _pct(in_topk.sum(), n),
        "topk_k": int(k),
        "macro_precision": round(float(precision[active].mean()), _ROUND),
        "macro_recall": round(float(recall[active].mean()), _ROUND),
        "macro_f1": round(float(f1[active].mean()), _ROUND),
        "macro_classes": int(active.sum()),
        "nll": nll,
        "errors": int(n - correct.sum()),
        "nonfinite_rows": int((~finite_rows).sum()),
        "units": "percent (0-100) for top1/top5/precision/recall/f1/rate; counts otherwise",
        "per_class": per_class,
        "confused_pairs": confused_pairs(cm, classes, top=top_pairs),
        "classes": classes,
        "confusion_matrix": cm.astype(int).tolist(),
    }


def confused_pairs(cm: np.ndarray | Sequence[Sequence[int]], classes: Sequence[str],
                   top: int | None = 10) -> list[dict[str, Any]]:
    """Unordered class pairs with at least one error between them, most confused first.

    Ranked by ``total`` (a->b plus b->a), then ``rate`` (total over the pair's support, %),
    then class index. ``a`` is the class more often mistaken for ``b``. ``top=None``: all.
    """
    cm = np.asarray(cm, dtype=np.int64)
    c = cm.shape[0]
    if top is not None and top <= 0 or c < 2:
        return []
    support = cm.sum(axis=1)
    iu, ju, totals = pair_confusions(cm)
    keep = totals > 0
    iu, ju, totals = iu[keep], ju[keep], totals[keep]
    pair_support = support[iu] + support[ju]
    rates = np.divide(totals, pair_support, out=np.zeros(len(totals)), where=pair_support > 0)
    order = np.lexsort((ju, iu, -rates, -totals))  # last key is the primary one
    if top is not None:
        order = order[:top]
    out = []
    for rank, o in enumerate(order, start=1):
        i, j = int(iu[o]), int(ju[o])
        a, b = (j, i) if cm[j, i] > cm[i, j] else (i, j)
        a_as_b, b_as_a = int(cm[a, b]), int(cm[b, a])
        total, sup = int(totals[o]), int(pair_support[o])
        rate = _pct(total, sup)
        out.append(
            {
                "rank": rank,
                "a": classes[a],
                "b": classes[b],
                "a_index": a,
                "b_index": b,
                "a_as_b": a_as_b,
                "b_as_a": b_as_a,
                "total": total,
                "a_support": int(support[a]),
                "b_support": int(support[b]),
                "support": sup,
                "rate": rate,
                "a_as_b_rate": _pct(a_as_b, support[a]),
                "b_as_a_rate": _pct(b_as_a, support[b]),
                "summary": (
                    f"{classes[a]} <-> {classes[b]}: {total} errors ({a_as_b} a->b, {b_as_a} b->a), "
                    f"{rate:.1f}% of {sup} images"
                ),
            }
        )
    return out


def embedding_metrics(embedding: np.ndarray | None, targets: np.ndarray, classes: Sequence[str],
                      pairs: Sequence[dict[str, Any]], note: str = "") -> dict[str, Any]:
    """``recall@1``, ``recall@5`` (%, leave-one-out retrieval on the split, :func:`~edge_fgic.metrics.recall_at_k`)
    and an ``embedding`` section: its dimension, the scored queries, each class's ``spread`` and, for each
    of ``pairs`` (the most-confused pairs), the cosine distance of the two class centroids, both spreads and
    their ``separation`` (:func:`~edge_fgic.metrics.class_pair_distances`). Without an embedding the recalls
    are None and the section holds only ``note`` (why)."""
    if embedding is None or len(embedding) != len(targets):
        return {"recall@1": None, "recall@5": None, "embedding": {"note": f"embedding metrics skipped: {note}"}}
    c = len(classes)
    rec = recall_at_k(embedding, targets, (1, 5))
    geo = class_geometry(embedding, targets, c)
    dists = class_pair_distances(embedding, targets, [(p["a_index"], p["b_index"]) for p in pairs], c)

    def r(v: float | None) -> float | None:
        return None if v is None or not np.isfinite(v) else round(float(v), _ROUND)

    section = {
        "dim": int(embedding.shape[1]),
        "similarity": "cosine of the L2-normalised pre-logits embedding; distance = 1 - cosine",
        "queries": rec["queries"], "unscored_queries": rec["unscored"],
        **{k: r(v) for k, v in embedding_summary(embedding, targets, c).items() if k != "dim"},
        "class_spread": {classes[i]: r(geo["spread"][i]) for i in range(c)},
        "confused_pairs": [
            {"rank": p["rank"], "a": p["a"], "b": p["b"], "total": p["total"], "distance": r(d["distance"]),
             "a_spread": r(d["a_spread"]), "b_spread": r(d["b_spread"]), "separation": r(d["separation"])}
            for p, d in zip(pairs, dists)
        ],
    }
    return {"recall@1": r(rec["recall@1"]), "recall@5": r(rec["recall@5"]), "embedding": section}


# ---------------------------------------------------------------- full evaluation


def select_gradcam_indices(preds: np.ndarray, targets: np.ndarray, n: int, seed: int = 0) -> list[int]:
    """Deterministic sample for the Grad-CAM grid: first ``n`` of a seeded permutation.

    Up to half of the slots (at least one) go to misclassified images when there are any;
    correct ones come first in the returned list, misclassified ones last.
    """
    preds, targets = np.asarray(preds), np.asarray(targets)
    total = len(targets)
    n = min(int(n), total)
    if n <= 0:
        return []
    perm = np.random.default_rng(seed).permutation(total)
    wrong = [int(i) for i in perm if preds[i] != targets[i]]
    n_wrong = min(len(wrong), max(1, n // 2)) if wrong else 0
    chosen_wrong = wrong[:n_wrong]
    taken = set(chosen_wrong)
    right = [int(i) for i in perm if int(i) not in taken and preds[i] == targets[i]][: n - n_wrong]
    rest = n - n_wrong - len(right)  # not enough correct ones: fill with more wrong ones
    if rest > 0:
        chosen_wrong += wrong[n_wrong : n_wrong + rest]
    return right + chosen_wrong


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def evaluate(model: nn.Module, dataset: Dataset, out_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """:func:`_evaluate`; a failed evaluation (a full disk midway) leaves nothing of its own in ``out_dir``
    (the folder too, if it created it)."""
    import shutil
    out_dir = Path(out_dir)
    existed = out_dir.exists()
    before = set(out_dir.iterdir()) if existed and out_dir.is_dir() else set()
    try:
        return _evaluate(model, dataset, out_dir, **kwargs)
    except BaseException:
        if not existed:
            shutil.rmtree(out_dir, ignore_errors=True)
        elif out_dir.is_dir():
            for p in set(out_dir.iterdir()) - before:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        raise


def _evaluate(
    model: nn.Module,
    dataset: Dataset,
    out_dir: str | Path,
    *,
    preprocess: PreprocessConfig,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    gradcam_images: int = 8,
    progress: bool = True,
    split_name: str = "val",
    num_workers: int = 0,
    top_pairs: int = 10,
    embedding: bool = True,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``dataset`` (eval transforms applied) and write the report files.

    Writes into ``out_dir``: ``per_class.csv``, ``confused_pairs.csv`` (every pair with an
    error), ``confusion_matrix.png``, ``gradcam.png`` (when ``gradcam_images > 0``) and,
    last, ``metrics.json`` (metrics + split + file names; ``top_pairs`` pairs; the embedding's figures,
    :func:`embedding_metrics`, from the same forward pass). Returns the metrics dict plus ``"files"``:
    name -> path string.
    """
    out_dir = Path(out_dir)
    classes = list(getattr(dataset, "classes", None) or [])
    net = unwrap(model)
    model_classes = getattr(net, "num_classes", None)
    if classes and model_classes is not None and int(model_classes) != len(classes):
        raise UserError(
            f"the model predicts {model_classes} classes but the {split_name} split has {len(classes)}; "
            "evaluate on the dataset the checkpoint was trained on"
        )
    logits, targets, emb = predict_with_embedding(
        model, dataset, device=device, batch_size=batch_size, num_workers=num_workers, progress=progress,
        embedding=embedding,
    )
    if not classes:
        classes = [str(k) for k in range(logits.shape[1])]
    if logits.shape[1] != len(classes):
        raise UserError(f"the model predicts {logits.shape[1]} classes but the {split_name} split has {len(classes)}")
    metrics = {"split": split_name, **classification_metrics(logits, targets, classes, top_pairs=top_pairs)}
    if hasattr(net, "cfg") and hasattr(net.cfg, "name"):
        metrics["model"] = net.cfg.name
    metrics["preprocess"] = preprocess.to_dict()
    metrics.update(embedding_metrics(emb, targets, classes, metrics["confused_pairs"],
                                     note="" if emb is not None else
                                     ("not asked for" if not embedding else embedding_source(model)[1]
                                      or "the model gave no embedding")))
    cm = np.asarray(metrics["confusion_matrix"])

    files: dict[str, Path] = {}
    files["per_class"] = write_text(
        out_dir / "per_class.csv",
        _csv_text(
            ["index", "class", "support", "predicted", "correct", "precision_pct", "recall_pct", "f1_pct"],
            [[r["index"], r["class"], r["support"], r["predicted"], r["correct"], r["precision"], r["recall"], r["f1"]]
             for r in metrics["per_class"]],
        ),
    )
    all_pairs = confused_pairs(cm, classes, top=None)
    files["confused_pairs"] = write_text(
        out_dir / "confused_pairs.csv",
        _csv_text(
            ["rank", "class_a", "class_b", "a_as_b", "b_as_a", "total", "a_support", "b_support", "rate_pct"],
            [[p["rank"], p["a"], p["b"], p["a_as_b"], p["b_as_a"], p["total"], p["a_support"], p["b_support"],
              p["rate"]] for p in all_pairs],
        ),
    )
    files["confusion_matrix"] = plot_confusion_matrix(
        cm, classes, out_dir / "confusion_matrix.png", normalize=True,
        title=f"{split_name}: top-1 {metrics['top1']:.1f}%, {len(targets)} images, {len(classes)} classes "
              "(row-normalised %)",
    )
    if gradcam_images > 0:
        # the plain module: hooks on DDP / torch.compile wrappers are unreliable
        files["gradcam"] = _gradcam_panel(net, dataset, logits, targets, classes, preprocess, out_dir / "gradcam.png",
                                          gradcam_images)

    metrics["files"] = {k: v.name for k, v in files.items()} | {"metrics": "metrics.json"}
    files["metrics"] = write_json(out_dir / "metrics.json", metrics)
    return {**metrics, "files": {k: str(v) for k, v in files.items()}}


def _gradcam_panel(
    model: nn.Module,
    dataset: Dataset,
    logits: np.ndarray,
    targets: np.ndarray,
    classes: list[str],
    preprocess: PreprocessConfig,
    path: Path,
    count: int,
) -> Path:
    preds = logits.argmax(axis=1)
    idx = select_gradcam_indices(preds, targets, count)
    images = []
    for i in idx:
        x = dataset[i][0]
        if not isinstance(x, torch.Tensor):
            raise TypeError("evaluate needs a dataset with a tensor transform (use eval_transform(preprocess))")
        images.append(x)
    x = torch.stack(images)
    cams = grad_cam(model, x, torch.as_tensor(preds[idx]))
    z = logits[idx].astype(np.float64)
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    wrong = [bool(preds[i] != targets[i]) for i in idx]
    titles = [
        f"{'WRONG: ' if w else ''}{short_name(classes[targets[i]], 26)} / {short_name(classes[preds[i]], 26)} "
        f"(p={probs[k, preds[i]]:.2f})"
        for k, (i, w) in enumerate(zip(idx, wrong))
    ]
    return save_gradcam_grid(
        x, cams, preprocess.mean, preprocess.std, titles, path, highlight=wrong,
        suptitle="Grad-CAM of the predicted class - title: true / predicted (probability); red = misclassified",
    )
