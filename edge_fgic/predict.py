"""Classify images with any artifact or checkpoint, through the same Runner that ``bench`` measures.

``Classifier`` reads the preprocessing and class names from the artifact's manifest (or the
checkpoint), so ``predict`` and ``camera`` feed the model exactly as ``export`` proved it and
``bench`` timed it. ``predict`` walks files, folders and globs, writes one JSON line (or CSV row)
per image atomically, and when images sit in folders named after classes (an ImageFolder split)
it also reports top-1 / top-k accuracy.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image

from .data.images import IMAGE_EXTENSIONS, SKIP_DIRS, is_image_file, list_images, load_rgb, skipped_summary
from .errors import BadImageError, UserError


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """An artifact (.onnx/.xml/.tflite/.engine) or checkpoint (.pt) + its preprocessing."""

    def __init__(self, model: str | Path, *, threads: int | None = None, device: str = "cpu"):
        from .data.transforms import PreprocessConfig
        from .runtime import open_runner
        self.path = Path(model)
        if not self.path.exists():
            raise UserError(f"{self.path}: no such model file; pass an exported artifact or a best.pt checkpoint")
        self.runner = open_runner(self.path, threads=threads, device=device)
        m = self.runner.manifest
        if m is None:
            raise UserError(f"{self.path}: carries no edge-fgic manifest (class names, preprocessing); "
                            f"re-export it with `edge-fgic export`")
        self.manifest = m
        self.classes: list[str] = list(m.classes)
        self.preprocess = PreprocessConfig(**m.input.preprocess())
        self.precision = m.precision
        # what the runtime reports it runs (precision, threads, XNNPACK delegation), never its default
        self.describe = (f"{self.path.name} ({self.runner.describe()}, {self.precision}; "
                         f"ran {self.runner.execution_label()})")

    def to_input(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The manifest's preprocessing in NumPy + Pillow (bit-identical to torchvision's eval transform; no torch)."""
        from .data.transforms import eval_batch
        return eval_batch(images, self.preprocess)

    def probabilities(self, images: Sequence[Image.Image]) -> tuple[np.ndarray, float, float]:
        """Softmax probabilities (N, classes), ms spent preprocessing, ms spent in the runner."""
        t0 = time.perf_counter()
        x = self.to_input(images)
        t1 = time.perf_counter()
        logits = self.runner.predict(x)
        t2 = time.perf_counter()
        return softmax(logits.astype(np.float64)), 1000 * (t1 - t0), 1000 * (t2 - t1)

    def top(self, probs: np.ndarray, k: int) -> list[tuple[str, float]]:
        idx = np.argsort(-probs)[:k]
        return [(self.classes[i], float(probs[i])) for i in idx]


def find_images(sources: Sequence[str], recursive: bool = True) -> list[Path]:
    """Files, folders (searched recursively) and glob patterns -> sorted image paths, duplicates removed."""
    out: list[Path] = []
    for s in sources:
        p = Path(s).expanduser()
        if p.is_dir():
            found = list_images(p, recursive)  # hidden files and folders (AppleDouble ._x.jpg, .git) are not photos
            if not found:
                raise UserError(f"{p}: no images in this folder "
                                f"(looked for {', '.join(('.jpg', '.png', '.webp', '...'))})")
            out += found
        elif p.is_file():
            if not p.name.lower().endswith(IMAGE_EXTENSIONS):  # named explicitly: even a dot-file is meant
                raise UserError(f"{p}: not an image file (expected .jpg, .png, .bmp, .webp, .tif ...)")
            out.append(p)
        elif any(ch in s for ch in "*?["):
            found = sorted(Path(q) for q in glob.glob(str(p), recursive=True) if is_image_file(q)
                           and not any(part in SKIP_DIRS for part in Path(q).parts))
            if not found:
                raise UserError(f"{s}: the pattern matches no images")
            out += found
        else:
            raise UserError(f"{s}: no such file or folder")
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]


@dataclass
class PredictConfig:
    model: str
    sources: list[str]
    topk: int = 5
    batch: int = 8
    threads: int | None = None
    device: str = "cpu"
    out: str | None = None            # .jsonl or .csv; None = no file
    skip_bad_images: bool = False
    labels_from_folders: bool = True  # a parent folder named after a class = the true label


@dataclass
class PredictResult:
    rows: list[dict[str, Any]]
    classifier: str
    classes: list[str]
    skipped: list[str] = field(default_factory=list)
    accuracy: dict[str, Any] | None = None
    out: Path | None = None
    ms_per_image: float = 0.0


def _batches(paths: list[Path], size: int, skip_bad: bool,
             skipped: list[str]) -> Iterator[tuple[list[Path], list[Image.Image]]]:
    batch_p: list[Path] = []
    batch_i: list[Image.Image] = []
    for p in paths:
        try:
            img = load_rgb(p)
        except BadImageError as exc:
            if not skip_bad:
                raise
            skipped.append(f"{p}: {exc}")
            continue
        batch_p.append(p)
        batch_i.append(img)
        if len(batch_p) == size:
            yield batch_p, batch_i
            batch_p, batch_i = [], []
    if batch_p:
        yield batch_p, batch_i


def predict(cfg: PredictConfig, *, progress: bool = True) -> PredictResult:
    from .progress import track
    if cfg.topk < 1:
        raise UserError(f"--topk {cfg.topk}: must be at least 1")
    if cfg.out and Path(cfg.out).suffix.lower() not in (".jsonl", ".csv"):
        raise UserError(f"--out {cfg.out}: write .jsonl (one JSON object per image) or .csv")
    paths = find_images(cfg.sources)
    clf = Classifier(cfg.model, threads=cfg.threads, device=cfg.device)
    k = min(cfg.topk, len(clf.classes))
    class_index = {c: i for i, c in enumerate(clf.classes)}
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    run_ms = 0.0
    batches = _batches(paths, max(1, cfg.batch), cfg.skip_bad_images, skipped)
    for batch_paths, images in track(batches, total=-(-len(paths) // max(1, cfg.batch)), description="predict",
                                     enabled=progress):
        probs, pre_ms, ms = clf.probabilities(images)
        run_ms += ms
        for p, pr in zip(batch_paths, probs):
            top = clf.top(pr, k)
            row: dict[str, Any] = {"file": str(p), "label": top[0][0], "prob": round(top[0][1], 6),
                                   "topk": [{"label": c, "prob": round(v, 6)} for c, v in top]}
            truth = p.parent.name if cfg.labels_from_folders and p.parent.name in class_index else None
            if truth is not None:
                row["true"] = truth
                row["correct"] = top[0][0] == truth
            rows.append(row)
    if not rows:
        raise UserError(f"no image could be read: --skip-bad-images skipped {skipped_summary(skipped)}" if skipped
                        else "no images to classify")
    result = PredictResult(rows=rows, classifier=clf.describe, classes=clf.classes, skipped=skipped,
                           ms_per_image=run_ms / len(rows))
    labelled = [r for r in rows if "true" in r]
    if labelled:
        topk_hits = sum(r["true"] in [t["label"] for t in r["topk"]] for r in labelled)
        result.accuracy = {"images": len(labelled), "top1": 100.0 * sum(r["correct"] for r in labelled) / len(labelled),
                           f"top{k}": 100.0 * topk_hits / len(labelled), "k": k}
    if cfg.out:
        result.out = write_predictions(cfg.out, rows, k)
    return result


def write_predictions(path: str | Path, rows: list[dict[str, Any]], k: int) -> Path:
    from .fileio import write_text
    path = Path(path)
    if path.suffix.lower() == ".csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["file", "label", "prob", "true", "correct"] + [f"top{i + 1}" for i in range(k)])
        for r in rows:
            w.writerow([r["file"], r["label"], r["prob"], r.get("true", ""), r.get("correct", "")]
                       + [f"{t['label']}:{t['prob']:.4f}" for t in r["topk"]])
        return write_text(path, buf.getvalue())
    return write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
