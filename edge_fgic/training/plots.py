"""The evaluation's pictures: the confusion matrix as a PNG (matplotlib, written atomically).

May import: fileio (layer 1), nothing of training's loop.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

from ..fileio import atomic_path

MAX_TICK_LABELS = 40  # above this many classes the confusion matrix shows index ticks, not names


def short_name(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "\u2026"


def plot_confusion_matrix(
    cm: np.ndarray | Sequence[Sequence[int]],
    classes: Sequence[str],
    path: str | Path,
    normalize: bool = True,
    *,
    title: str | None = None,
    max_labels: int = MAX_TICK_LABELS,
) -> Path:
    """Write the confusion matrix (rows = true class) as a PNG, atomically.

    ``normalize`` shows each row as % of that true class. Up to ``max_labels`` classes get
    name tick labels (cells annotated up to 15 classes); beyond that, ticks show class
    indices (names are in ``per_class.csv``) and a square-root colour scale keeps the few
    off-diagonal errors visible next to the bright diagonal.
    """
    from matplotlib.colors import Normalize, PowerNorm
    from matplotlib.figure import Figure

    cm = np.asarray(cm, dtype=np.float64)
    c = cm.shape[0]
    if cm.shape != (c, c) or len(classes) != c:
        raise ValueError(f"confusion matrix {cm.shape} does not match {len(classes)} classes")
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        data = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) * 100.0
        vmax, unit = 100.0, "% of true class"
    else:
        data = cm
        vmax, unit = max(float(cm.max()), 1.0), "images"
    names = c <= max_labels
    annotate = c <= 15
    if names:
        side = float(np.clip(0.3 * c + 3.0, 4.8, 15.0))
        dpi = 120
    else:
        side, dpi = 10.0, 150
    norm = Normalize(0.0, vmax) if annotate else PowerNorm(0.5, vmin=0.0, vmax=vmax)

    fig = Figure(figsize=(side + 1.3, side), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(data, cmap="Blues", norm=norm, interpolation="nearest", aspect="equal")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cbar.set_label(unit + ("" if annotate else " (sqrt scale)"))
    if names:
        fs = 9 if c <= 12 else 8 if c <= 25 else 6
        labels = [short_name(str(k), 26) for k in classes]
        ax.set_xticks(range(c), labels=labels, rotation=90, fontsize=fs)
        ax.set_yticks(range(c), labels=labels, fontsize=fs)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
    else:
        step = next(s for s in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 10**9) if c / s <= 12)
        ticks = list(range(0, c, step))
        ax.set_xticks(ticks, labels=[str(t) for t in ticks], fontsize=8)
        ax.set_yticks(ticks, labels=[str(t) for t in ticks], fontsize=8)
        ax.set_xlabel("predicted class index (names in per_class.csv)")
        ax.set_ylabel("true class index")
    if annotate:
        for i in range(c):
            for j in range(c):
                v = data[i, j]
                if v == 0 and i != j:
                    continue
                txt = f"{v:.0f}" if normalize else f"{int(v)}"
                ax.text(j, i, txt, ha="center", va="center", fontsize=8,
                        color="white" if v > 0.55 * vmax else "#1a1a1a")
    heading = title or f"Confusion matrix ({'row-normalised, ' + unit if normalize else 'counts'}), {c} classes"
    ax.set_title(textwrap.fill(heading, width=max(40, int(side * 11))), fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
