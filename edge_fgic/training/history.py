"""Per-epoch metrics: CSV + JSONL (rewritten atomically from the full history) and a PNG of the curves."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..fileio import atomic_path, write_text


def write_history(out: Path, history: list[dict[str, Any]]) -> None:
    if not history:
        return
    keys = list(history[0])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(out / "metrics.csv", buf.getvalue())
    write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))


def plot_history(out: Path, history: list[dict[str, Any]]) -> Path | None:
    if not history:
        return None
    from matplotlib.figure import Figure

    ep = [r["epoch"] for r in history]
    fig = Figure(figsize=(9, 3.4), dpi=110)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(ep, [r["train_loss"] for r in history], label="train loss")
    ax1.plot(ep, [r["val_loss"] for r in history], label="val loss")
    ax1.set_xlabel("epoch"), ax1.legend(), ax1.grid(alpha=0.3)
    ax2.plot(ep, [r["val_top1"] for r in history], label="val top-1 %")
    ax2.plot(ep, [r["val_top5"] for r in history], label="val top-5 %", alpha=0.6)
    ax2.set_xlabel("epoch"), ax2.set_ylim(0, 100), ax2.legend(loc="lower right"), ax2.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "training_curves.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
