"""What ``edge-fgic predict`` and ``camera`` print: the predictions table and summary, the camera's live
status line and its closing summary. Only rich is imported here: like the runners they print for, this
module stays torch-free."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .progress import console


def print_predictions(res: Any, show: int) -> None:
    """At most ``show`` images' predictions, then the summary (speed, folder-label accuracy, skips, file)."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("image", "prediction", "prob", "next"):
        table.add_column(col, overflow="fold")
    for r in res.rows[:show]:
        mark = "" if "correct" not in r else (" [green]✓[/]" if r["correct"] else f" [red]✗ {r['true']}[/]")
        rest = ", ".join(f"{t['label']} {100 * t['prob']:.1f}%" for t in r["topk"][1:3])
        table.add_row(Path(r["file"]).name, f"{r['label']}{mark}", f"{100 * r['prob']:.1f}%", rest)
    if show:
        console.print(table)
    if len(res.rows) > show > 0:
        console.print(f"... {len(res.rows) - show} more")
    console.print(Text(f"{len(res.rows)} images, {res.classifier}, {res.ms_per_image:.2f} ms per image in the runtime"),
                  soft_wrap=True)
    if res.accuracy:
        a = res.accuracy
        topk_acc = a[f"top{a['k']}"]
        console.print(Text(f"labelled by folder: {a['images']} images, top-1 {a['top1']:.2f} %, "
                           f"top-{a['k']} {topk_acc:.2f} %"))
    for s in res.skipped:
        console.print(Text(f"skipped {s}", style="yellow"), soft_wrap=True)
    if res.out:
        console.print(Text.assemble(("predictions  ", "bold"), str(res.out)), soft_wrap=True)


def camera_status(err: Console) -> Callable[[Any, list[str], float], None]:
    """``on_frame`` for :func:`~edge_fgic.camera.run_camera`: a live status line on a terminal, at most 4 per
    second, on stderr (stdout may carry JSON lines)."""
    last = [0.0]

    def on_frame(summary, lines, fps) -> None:
        now = time.perf_counter()
        if err.is_terminal and now - last[0] > 0.25:
            last[0] = now
            err.print(f"\r{summary.frames:>6} frames  {fps:5.1f} fps  {lines[0] if lines else ''}".ljust(70), end="")

    return on_frame


def print_camera_summary(summary: Any, err: Console, to_stderr: bool) -> None:
    """Frames, FPS, model latency, the labels seen and the files written; on stderr when stdout carries JSON."""
    if err.is_terminal:
        err.print()  # end the status line
    s = summary.stats()
    out = err if to_stderr else console
    p50 = f"{s['model_ms_p50']:.2f}" if s["model_ms_p50"] is not None else "-"
    out.print(Text(f"{s['frames']} frames in {s['seconds']:.1f} s ({s['fps'] or 0:.1f} fps end to end), "
                   f"{s['classified']} classified, model p50 {p50} ms, {summary.model}"
                   + ("  (stopped by Ctrl-C)" if s["interrupted"] else "")), soft_wrap=True)
    if s["labels"]:
        out.print(Text("labels: " + ", ".join(f"{k} ×{v}" for k, v in list(s["labels"].items())[:5])), soft_wrap=True)
    for name, path in s["files"].items():
        out.print(Text.assemble((f"{name:<6} ", "bold"), path), soft_wrap=True)
