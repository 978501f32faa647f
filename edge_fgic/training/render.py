"""What ``edge-fgic train``, ``distill`` and ``eval`` print: the line before a distillation, the run's files after,
and the evaluation's metrics table."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from ..progress import console


def print_distill_start(teacher: Any, tck: Any, cfg: Any) -> None:
    """Which teacher (its val top-1) is distilled into which student, and where the run goes."""
    student = f"{cfg.model}{' [' + cfg.variant + ']' if cfg.variant else ''}"
    top1 = tck.metrics.get("val_top1", float("nan"))
    console.print(Text(f"distilling {teacher} ({tck.model.name}, val top-1 {top1:.2f} %) into {student} -> {cfg.out}",
                       style="dim"), soft_wrap=True)


def print_train_result(result: Any) -> None:
    """best.pt (its val top-1 and epoch), last.pt, the metrics files, and the final evaluation of best.pt."""
    m = result.best_metrics
    best = f"{result.best}  (val top-1 {m.get('val_top1', float('nan')):.2f} % at epoch {m.get('epoch')})"
    console.print(Text.assemble(("best   ", "bold"), best))
    console.print(Text.assemble(("last   ", "bold"), str(result.last)))
    metrics = f" {result.out / 'metrics.csv'}  {result.out / 'training_curves.png'}"
    console.print(Text.assemble(("metrics", "bold"), metrics))
    if result.eval_metrics:
        console.print(metrics_table(result.eval_metrics))
        files = result.eval_metrics.get("files", {})
        plots = f" {files.get('confusion_matrix', '')}  {files.get('gradcam', '')}"
        console.print(Text.assemble(("plots  ", "bold"), plots))


def metrics_table(metrics: dict[str, Any], pairs: int = 5) -> Table:
    """One rich Table: headline metrics, then a section with the ``pairs`` most-confused pairs."""
    split = metrics.get("split")
    n = metrics.get("n", 0)
    title = f"{split} split: {n} images, {metrics.get('num_classes', '?')} classes" if split else f"{n} images"
    table = Table(title=title, box=box.SIMPLE_HEAD, show_header=True, title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value", justify="left")
    k = metrics.get("topk_k", 5)
    for label, key in (
        ("top-1 accuracy", "top1"),
        (f"top-{k} accuracy", "top5"),
        ("macro precision", "macro_precision"),
        ("macro recall", "macro_recall"),
        ("macro F1", "macro_f1"),
    ):
        v = metrics.get(key)
        table.add_row(label, "-" if v is None else f"{float(v):.2f} %")
    for k_ in (1, 5):
        v = metrics.get(f"recall@{k_}")
        if v is not None:
            table.add_row(f"recall@{k_} (embedding)", f"{float(v):.2f} %")
    table.add_row("images", str(n))
    emb = metrics.get("embedding") or {}
    if emb.get("note"):
        table.add_row("embedding", Text(emb["note"], style="dim"))
    dist = {(d["a"], d["b"]): d for d in emb.get("confused_pairs") or []}
    top = list(metrics.get("confused_pairs") or [])[: max(0, pairs)]
    table.add_section()
    if not top:
        table.add_row("most confused pairs", "none (no errors)" if metrics.get("errors", 1) == 0 else "-")
        return table
    legend = "errors (a->b / b->a), % of pair"
    if dist:
        legend += "; embedding: centroid distance (spread a / b), separation"
    table.add_row(Text("most confused pairs", style="bold"), Text(legend, style="dim"))
    for p in top:
        # Text(), not markup: class names may contain '[' and must print verbatim
        text = f"{p['total']} ({p['a_as_b']} / {p['b_as_a']}), {p['rate']:.1f} % of {p['support']}"
        d = dist.get((p["a"], p["b"]))
        if d and d.get("distance") is not None:
            sep = "-" if d.get("separation") is None else f"{d['separation']:.2f}"
            text += f"; {d['distance']:.3f} ({d['a_spread']:.3f} / {d['b_spread']:.3f}), {sep}"
        table.add_row(Text(f"{p['a']} <-> {p['b']}", style="not bold"), Text(text))
    return table
