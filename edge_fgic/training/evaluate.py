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
from ..metrics import confusion_matrix, pair_confusions, per_class_prf, ranked
from ..models.checkpoint import unwrap
from ..progress import track
from .gradcam import eval_mode, grad_cam, save_gradcam_grid
from .plots import plot_confusion_matrix, short_name

__all__ = [
    "predict_logits",
    "classification_metrics",
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
    logits_parts: list[torch.Tensor] = []
    target_parts: list[torch.Tensor] = []
    with eval_mode(model), torch.inference_mode():
        for batch in track(loader, total=total, description="evaluate", enabled=progress):
            x, y = batch[0], batch[1]
            out = model(x.to(device, non_blocking=True))
            if isinstance(out, (tuple, list)):
                out = out[0]
            logits_parts.append(out.detach().float().cpu())
            target_parts.append(torch.as_tensor(y).reshape(-1).long().cpu())
    if not logits_parts:
        c = int(getattr(unwrap(model), "num_classes", 0) or 0)
        return np.zeros((0, c), dtype=np.float32), np.zeros((0,), dtype=np.int64)
    return torch.cat(logits_parts).numpy().astype(np.float32), torch.cat(target_parts).numpy().astype(np.int64)


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
) -> dict[str, Any]:
    """Evaluate ``model`` on ``dataset`` (eval transforms applied) and write the report files.

    Writes into ``out_dir``: ``per_class.csv``, ``confused_pairs.csv`` (every pair with an
    error), ``confusion_matrix.png``, ``gradcam.png`` (when ``gradcam_images > 0``) and,
    last, ``metrics.json`` (metrics + split + file names; ``top_pairs`` pairs). Returns the
    metrics dict plus ``"files"``: name -> path string.
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
    logits, targets = predict_logits(
        model, dataset, device=device, batch_size=batch_size, num_workers=num_workers, progress=progress
    )
    if not classes:
        classes = [str(k) for k in range(logits.shape[1])]
    if logits.shape[1] != len(classes):
        raise UserError(f"the model predicts {logits.shape[1]} classes but the {split_name} split has {len(classes)}")
    metrics = {"split": split_name, **classification_metrics(logits, targets, classes, top_pairs=top_pairs)}
    if hasattr(net, "cfg") and hasattr(net.cfg, "name"):
        metrics["model"] = net.cfg.name
    metrics["preprocess"] = preprocess.to_dict()
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
