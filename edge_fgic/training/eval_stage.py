"""``edge-fgic eval`` as a function: :class:`EvalConfig` -> :func:`run_eval` -> the metrics and report files,
and :func:`print_eval`, what the command prints after it. The metrics themselves are :mod:`.evaluate`'s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text

from ..progress import console


@dataclass
class EvalConfig:
    model: str                   # checkpoint written by train / distill (best.pt)
    data: str | None = None      # KIND=PATH; None: the dataset recorded in the checkpoint
    split: str = "val"
    out: str = ""                # default: <checkpoint folder>/eval-<split>
    batch_size: int = 64
    device: str = "auto"
    gradcam: int = 8             # images in the Grad-CAM panel (0 = none)
    skip_bad_images: bool = False


@dataclass
class EvalResult:
    metrics: dict[str, Any]      # evaluate()'s metrics; "files" names what was written
    out: Path


def default_out(cfg: EvalConfig) -> Path:
    return Path(cfg.model).expanduser().parent / f"eval-{cfg.split}"


def run_eval(cfg: EvalConfig, *, progress: bool = True) -> EvalResult:
    """Evaluate a checkpoint on a split, preprocessed exactly as the checkpoint records; the dataset must have
    the checkpoint's classes (checked before any image is decoded). Writes the report into ``out``."""
    from ..data.datasets import checkpoint_data, open_split
    from ..data.transforms import eval_transform
    from ..models import load_model
    from ..utils import resolve_device
    from .evaluate import evaluate

    dev = resolve_device(cfg.device)
    net, ckpt = load_model(cfg.model)
    spec = checkpoint_data(cfg.data, ckpt, cfg.model, cfg.split)
    dataset = open_split(spec, cfg.split, eval_transform(ckpt.preprocess), skip_bad_images=cfg.skip_bad_images)
    out_dir = Path(cfg.out) if cfg.out else default_out(cfg)
    if progress:
        console.print(Text(f"evaluating {cfg.model} ({ckpt.model.name}, {len(ckpt.classes)} classes, "
                           f"{ckpt.preprocess.input_size}px) on {spec} [{cfg.split}: {len(dataset)} images] on {dev}",
                           style="dim"), soft_wrap=True)
        if dataset.note:
            console.print(Text(f"split note: {dataset.note}", style="dim"))
    metrics = evaluate(net, dataset, out_dir, preprocess=ckpt.preprocess, device=dev, batch_size=cfg.batch_size,
                       gradcam_images=cfg.gradcam, progress=progress, split_name=cfg.split)
    return EvalResult(metrics, out_dir)


def print_eval(result: EvalResult) -> None:
    """The metrics table and the files written."""
    from .render import metrics_table
    console.print(metrics_table(result.metrics))
    console.print(Text(f"wrote {result.out}/", style="bold"), soft_wrap=True)
    for name, path in result.metrics["files"].items():
        console.print(Text(f"  {name:<17} {path}"), soft_wrap=True)  # never wrap a path
