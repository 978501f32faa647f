"""The embedded default dataset: deterministic, ImageFolder-shaped, and genuinely fine-grained."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from edge_fgic.data.datasets import parse_data_spec, read_split
from edge_fgic.data.synthetic import (
    SyntheticConfig,
    colour_histogram_baseline,
    generate,
    render,
)
from edge_fgic.errors import UserError


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.png")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic_and_imagefolder(tmp_path):
    cfg = SyntheticConfig(seed=3, image_size=32, train_per_class=2, val_per_class=1, test_per_class=1)
    a, b = generate(tmp_path / "a", cfg, progress=False), generate(tmp_path / "b", cfg, progress=False)
    assert _digest(a) == _digest(b)
    c = generate(tmp_path / "c", SyntheticConfig(seed=4, image_size=32, train_per_class=2, val_per_class=1,
                                                 test_per_class=1), progress=False)
    assert _digest(a) != _digest(c)
    index = read_split(parse_data_spec(f"imagefolder={a}"), "train")  # same code path as real data
    assert index.classes == sorted(cfg.classes) and len(index.samples) == 2 * len(cfg.classes)
    assert generate(a, cfg, progress=False) == a  # idempotent: an identical dataset is reused


def test_generate_refuses_foreign_folders(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a synthetic dataset"):
        generate(tmp_path / "x", SyntheticConfig(image_size=32, train_per_class=1, val_per_class=1, test_per_class=1))
    generate(tmp_path / "y", SyntheticConfig(image_size=32, train_per_class=1, val_per_class=1, test_per_class=1),
             progress=False)
    with pytest.raises(UserError, match="different synthetic dataset"):
        generate(tmp_path / "y", SyntheticConfig(seed=9, image_size=32, train_per_class=1, val_per_class=1,
                                                 test_per_class=1))


def test_classes_differ_only_in_small_parts():
    """Same nuisance draw, two classes: the pixels that differ are a few percent of the image."""
    cfg = SyntheticConfig()
    fracs = []
    for i in range(10):
        imgs = []
        for name in cfg.classes[:2] + cfg.classes[-1:]:
            wing, head = name.split("_")
            imgs.append(np.asarray(render(wing, head, np.random.default_rng(i), 64), dtype=np.int16))
        for other in imgs[1:]:
            fracs.append((np.abs(imgs[0] - other).max(-1) > 40).mean())
    assert 0.002 < float(np.mean(fracs)) < 0.06, fracs  # parts, not the object or the background


def test_colour_histograms_carry_no_class(tmp_path):
    cfg = SyntheticConfig(seed=1, image_size=64, train_per_class=60, val_per_class=30, test_per_class=1)
    root = generate(tmp_path / "fg", cfg, progress=False)
    res = colour_histogram_baseline(root)
    assert res["train_top1"] > res["chance"] + 10  # the classifier does fit its training data ...
    assert res["val_top1"] < res["chance"] + 10, res  # ... yet colour does not generalise to new images


@pytest.mark.slow  # trains the demo's recipe for 18 epochs
def test_demo_convnext_learns_what_colour_cannot(tmp_path):
    """The demo's model and recipe, shortened (~1.5 min on 2 cores): far above chance and the histogram baseline.

    The full recipe reaches ~98 % (benchmarks/foundation.md); this shortened run must clear 55 %
    (3.3x chance) and beat the colour histogram by 40 points. The same seeded run is not the same
    number on every CPU: its float sums follow each machine's kernels (AVX2 vs AVX-512 oneDNN/ATen
    paths), and 18 short epochs amplify that: >= 70 % on the AVX2 EPYC machines, 66.7 % on an
    AVX-512 BF16 / AMX Xeon (2026-12-01). The claim is "learns what colour cannot", not a number.
    """
    from edge_fgic.training.config import DEMO_RECIPE, TrainConfig
    from edge_fgic.training.trainer import train

    cfg = SyntheticConfig(seed=2, train_per_class=200, val_per_class=25, test_per_class=1)
    root = generate(tmp_path / "fg", cfg, progress=False)
    hist = colour_histogram_baseline(root)
    recipe = dict(DEMO_RECIPE, data=f"synthetic={root}", out=str(tmp_path / "run"), epochs=18, gradcam=0)
    res = train(TrainConfig.from_dict(recipe), progress=False, final_eval=False)
    top1 = res.best_metrics["val_top1"]
    assert hist["val_top1"] < hist["chance"] + 10, hist
    assert top1 > 55 and top1 > hist["val_top1"] + 40, (top1, hist)
