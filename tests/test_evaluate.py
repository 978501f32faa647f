"""Metrics against hand-computed cases, Grad-CAM hygiene, and the files `evaluate` writes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console

from edge_fgic.data.datasets import FGDataset, SplitIndex
from edge_fgic.data.transforms import PreprocessConfig, eval_transform
from edge_fgic.errors import UserError
from edge_fgic.models.factory import create_model
from edge_fgic.training.evaluate import (
    classification_metrics,
    confused_pairs,
    evaluate,
    predict_logits,
    select_gradcam_indices,
)
from edge_fgic.training.plots import plot_confusion_matrix
from edge_fgic.training.render import metrics_table
from edge_fgic.training.gradcam import grad_cam, save_gradcam_grid

TINY = dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64))


def _logits_for(preds, num_classes):
    """Logits whose arg-max is ``preds`` (runner-up is the next class, for a defined ranking)."""
    z = np.zeros((len(preds), num_classes), dtype=np.float32)
    for r, p in enumerate(preds):
        z[r, p] = 4.0
        z[r, (p + 1) % num_classes] = 1.0
    return z


def _tiny(classes=3, attention=False, seed=0):
    torch.manual_seed(seed)
    return create_model("convnext_atto", classes, attention_head=attention, **TINY)


def _hooks_clear(model):
    return all(not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks for m in model.modules())


# ---------------------------------------------------------------- metrics


def test_metrics_three_classes_by_hand():
    targets = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    preds = np.array([0, 0, 0, 1, 1, 1, 0, 2, 2, 1])
    logits = _logits_for(preds, 3)
    m = classification_metrics(logits, targets, ["a", "b", "c"])

    # cm rows = true: a:[3,1,0] b:[1,2,0] c:[0,1,2]
    assert m["confusion_matrix"] == [[3, 1, 0], [1, 2, 0], [0, 1, 2]]
    assert m["n"] == 10 and m["errors"] == 3
    assert m["top1"] == pytest.approx(70.0)
    assert m["topk_k"] == 3 and m["top5"] == pytest.approx(100.0)  # k = min(5, C) = 3
    pc = {r["class"]: r for r in m["per_class"]}
    # precision: a 3/4, b 2/4, c 2/2; recall: a 3/4, b 2/3, c 2/3
    assert pc["a"]["precision"] == pytest.approx(75.0) and pc["a"]["recall"] == pytest.approx(75.0)
    assert pc["b"]["precision"] == pytest.approx(50.0) and pc["b"]["recall"] == pytest.approx(200 / 3, abs=1e-3)
    assert pc["c"]["precision"] == pytest.approx(100.0) and pc["c"]["recall"] == pytest.approx(200 / 3, abs=1e-3)
    assert pc["a"]["f1"] == pytest.approx(75.0)
    assert pc["b"]["f1"] == pytest.approx(400 / 7, abs=1e-3)  # 2*.5*(2/3)/(.5+2/3) = 4/7
    assert pc["c"]["f1"] == pytest.approx(80.0)
    assert [pc[k]["support"] for k in "abc"] == [4, 3, 3]
    assert m["macro_precision"] == pytest.approx(75.0)
    assert m["macro_recall"] == pytest.approx((75 + 400 / 3) / 3, abs=1e-3)
    assert m["macro_f1"] == pytest.approx((75 + 400 / 7 + 80) / 3, abs=1e-3)
    assert m["macro_classes"] == 3

    # most confused: {a, b} with 1 + 1 errors over 7 images; then {c, b}: c->b once, over 6 images
    p1, p2 = m["confused_pairs"]
    assert (p1["a"], p1["b"], p1["a_as_b"], p1["b_as_a"], p1["total"], p1["support"]) == ("a", "b", 1, 1, 2, 7)
    assert p1["rate"] == pytest.approx(200 / 7, abs=1e-3)
    assert (p2["a"], p2["b"], p2["a_as_b"], p2["b_as_a"], p2["total"], p2["support"]) == ("c", "b", 1, 0, 1, 6)
    assert p2["rate"] == pytest.approx(100 / 6, abs=1e-3)
    assert p2["a_as_b_rate"] == pytest.approx(100 / 3, abs=1e-3)

    expected_nll = torch.nn.functional.cross_entropy(torch.from_numpy(logits).double(),
                                                     torch.from_numpy(targets)).item()
    assert m["nll"] == pytest.approx(expected_nll, abs=1e-5)
    json.dumps(m)  # plain JSON types only


def test_top5_with_more_classes_and_fewer_than_five():
    c = 7
    z = np.tile(np.arange(c, 0, -1, dtype=np.float32), (4, 1))  # ranking 0 > 1 > ... > 6
    targets = np.array([0, 4, 5, 6])  # ranks 1, 5, 6, 7
    m = classification_metrics(z, targets, [f"c{i}" for i in range(c)])
    assert m["topk_k"] == 5
    assert m["top1"] == pytest.approx(25.0)
    assert m["top5"] == pytest.approx(50.0)

    m2 = classification_metrics(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([0, 0]), ["x", "y"])
    assert m2["topk_k"] == 2 and m2["top5"] == pytest.approx(100.0) and m2["top1"] == pytest.approx(50.0)


def test_class_never_predicted_and_class_absent():
    # 4 classes; class 2 has samples but is never predicted; class 3 neither occurs nor is predicted
    targets = np.array([0, 0, 1, 2])
    preds = np.array([0, 1, 0, 0])
    m = classification_metrics(_logits_for(preds, 4), targets, ["a", "b", "c", "d"])
    pc = m["per_class"]
    assert pc[2]["predicted"] == 0 and pc[2]["precision"] == 0.0 and pc[2]["recall"] == 0.0 and pc[2]["f1"] == 0.0
    assert pc[0]["precision"] == pytest.approx(100 / 3, abs=1e-3) and pc[0]["recall"] == pytest.approx(50.0)
    assert pc[0]["f1"] == pytest.approx(40.0)
    assert m["macro_classes"] == 3  # "d" is left out of the macro averages
    assert m["macro_precision"] == pytest.approx(100 / 9, abs=1e-3)
    assert m["macro_recall"] == pytest.approx(50 / 3, abs=1e-3)
    assert m["macro_f1"] == pytest.approx(40 / 3, abs=1e-3)
    assert all(np.isfinite(v) for r in pc for v in (r["precision"], r["recall"], r["f1"]))


def test_confused_pair_ranking_and_orientation():
    cm = np.array(
        [
            [10, 3, 0, 1],
            [2, 10, 0, 0],
            [0, 3, 5, 0],
            [2, 0, 0, 10],
        ]
    )
    names = ["w", "x", "y", "z"]
    pairs = confused_pairs(cm, names, top=None)
    # {w,x}: 5 errors; {x,y} and {w,z}: 3 each -> tie broken by rate (3/20 > 3/26)
    assert [(p["a"], p["b"], p["total"]) for p in pairs] == [("w", "x", 5), ("y", "x", 3), ("z", "w", 3)]
    assert [p["rank"] for p in pairs] == [1, 2, 3]
    assert (pairs[2]["a_as_b"], pairs[2]["b_as_a"]) == (2, 1)
    assert pairs[1]["rate"] == pytest.approx(15.0)
    assert len(confused_pairs(cm, names, top=2)) == 2
    assert confused_pairs(cm, names, top=0) == []
    assert confused_pairs(np.diag([3, 4]), ["p", "q"]) == []


def test_metrics_reject_bad_input():
    with pytest.raises(UserError):
        classification_metrics(np.zeros((0, 3)), np.zeros(0, dtype=int), ["a", "b", "c"])
    with pytest.raises(ValueError):
        classification_metrics(np.zeros((2, 3)), np.array([0, 3]), ["a", "b", "c"])
    with pytest.raises(ValueError):
        classification_metrics(np.zeros((2, 3)), np.array([0, 1]), ["a", "b"])


def test_gradcam_selection_is_deterministic_and_includes_errors():
    targets = np.arange(20) % 4
    preds = targets.copy()
    preds[[3, 11, 17]] = (preds[[3, 11, 17]] + 1) % 4
    a = select_gradcam_indices(preds, targets, 8)
    assert a == select_gradcam_indices(preds, targets, 8)
    assert len(a) == 8 and len(set(a)) == 8
    assert sum(preds[i] != targets[i] for i in a) == 3  # up to half the slots
    assert all(preds[i] != targets[i] for i in a[-3:])  # errors last
    assert select_gradcam_indices(preds, targets, 50) and len(select_gradcam_indices(preds, targets, 50)) == 20
    assert select_gradcam_indices(preds, targets, 0) == []


# ---------------------------------------------------------------- Grad-CAM


@pytest.mark.parametrize("attention", [False, True])
def test_grad_cam_shape_range_hooks_and_mode(attention):
    model = _tiny(3, attention)
    model.train()
    x = torch.randn(3, 3, 64, 64)
    cams = grad_cam(model, x)
    assert cams.shape == (3, 64, 64) and cams.dtype == torch.float32
    assert torch.isfinite(cams).all() and cams.min() >= 0.0 and cams.max() <= 1.0
    assert all(float(c.max()) in (0.0, 1.0) for c in cams)  # per-image min-max normalised
    assert _hooks_clear(model)
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())  # explains, never accumulates grads

    cams_t = grad_cam(model, x, torch.tensor([0, 1, 2]))
    assert cams_t.shape == (3, 64, 64)


def test_grad_cam_frozen_params_inference_mode_and_errors():
    model = _tiny(3)
    model.eval()
    model.backbone.stages[0].train()  # mixed modes must come back exactly
    before = {n: m.training for n, m in model.named_modules()}
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.inference_mode():
        x = torch.randn(2, 3, 64, 64)  # an inference tensor
        cams = grad_cam(model, x, [1, 0])
    assert cams.shape == (2, 64, 64) and cams.min() >= 0 and cams.max() <= 1
    assert {n: m.training for n, m in model.named_modules()} == before
    assert _hooks_clear(model)

    with pytest.raises(ValueError):
        grad_cam(model, torch.randn(2, 3, 64, 64), [0, 7])  # raises after the hook is registered
    assert _hooks_clear(model)
    assert {n: m.training for n, m in model.named_modules()} == before
    with pytest.raises(ValueError):
        grad_cam(model, torch.randn(2, 3, 64, 64), [0])


def test_save_gradcam_grid_png(tmp_path):
    x = torch.randn(5, 3, 32, 32)
    cams = torch.rand(5, 16, 16)  # resized to the image size
    titles = [f"class {i} / class {i} (p=0.9{i})" for i in range(5)]
    out = save_gradcam_grid(x, cams, (0.5,) * 3, (0.25,) * 3, titles, tmp_path / "g.png", highlight=[0, 0, 0, 1, 0])
    with Image.open(out) as im:
        im.verify()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


# ---------------------------------------------------------------- evaluate


def _write_split(root, classes=("red_bird", "green_bird", "blue_bird"), per_class=4, size=40):
    rng = np.random.default_rng(0)
    samples = []
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            arr = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
            arr[..., label] = 200
            arr[8 + k : 20 + k, 10:22] = 255  # a bright patch that moves a little
            p = root / name / f"{k}.png"
            Image.fromarray(arr).save(p)
            samples.append((str(p), label))
    return SplitIndex(list(classes), samples)


def _check_png(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.verify()


def test_evaluate_writes_all_files(tmp_path):
    index = _write_split(tmp_path / "data")
    cfg = PreprocessConfig(input_size=64)
    ds = FGDataset(index, eval_transform(cfg))
    model = _tiny(3)
    model.train()
    out = tmp_path / "eval"
    res = evaluate(model, ds, out, preprocess=cfg, batch_size=5, gradcam_images=5, progress=False, split_name="test")

    assert model.training  # mode restored
    names = {"metrics.json", "per_class.csv", "confused_pairs.csv", "confusion_matrix.png", "gradcam.png"}
    assert {p.name for p in out.iterdir()} == names  # and no temp files
    assert set(res["files"]) == {"metrics", "per_class", "confused_pairs", "confusion_matrix", "gradcam"}
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["split"] == "test" and saved["n"] == 12 and saved["num_classes"] == 3
    for key in ("top1", "top5", "macro_precision", "macro_recall", "macro_f1"):
        assert 0.0 <= saved[key] <= 100.0 and saved[key] == res[key]
    assert np.asarray(saved["confusion_matrix"]).sum() == 12
    assert saved["classes"] == ["red_bird", "green_bird", "blue_bird"]
    _check_png(out / "confusion_matrix.png")
    _check_png(out / "gradcam.png")

    rows = list(csv.DictReader((out / "per_class.csv").open()))
    assert [r["class"] for r in rows] == ["red_bird", "green_bird", "blue_bird"]
    assert sum(int(r["support"]) for r in rows) == 12
    pair_rows = list(csv.DictReader((out / "confused_pairs.csv").open()))
    assert sum(int(r["total"]) for r in pair_rows) == saved["errors"]

    console = Console(record=True, width=110)
    console.print(metrics_table(res))
    text = console.export_text()
    assert "top-1 accuracy" in text and "top-3 accuracy" in text and "macro F1" in text

    # same logits when predicting again (deterministic, dataset order)
    logits, targets = predict_logits(model, ds, batch_size=4, progress=False)
    assert logits.shape == (12, 3) and logits.dtype == np.float32 and targets.tolist() == [y for _, y in index.samples]


def test_evaluate_class_count_mismatch(tmp_path):
    index = _write_split(tmp_path / "data", per_class=1)
    cfg = PreprocessConfig(input_size=32)
    with pytest.raises(UserError):
        evaluate(_tiny(4), FGDataset(index, eval_transform(cfg)), tmp_path / "o", preprocess=cfg, progress=False)


def test_metrics_table_markup_safe_and_no_errors():
    m = classification_metrics(_logits_for([0, 1], 2), np.array([0, 1]), ["[bold]x", "y"])
    console = Console(record=True, width=100)
    console.print(metrics_table(m))
    assert "none (no errors)" in console.export_text()
    m = classification_metrics(_logits_for([1, 1], 2), np.array([0, 1]), ["[red]x", "y"])
    console = Console(record=True, width=100)
    console.print(metrics_table(m))
    assert "[red]x <-> y" in console.export_text()


def test_confusion_matrix_many_classes(tmp_path):
    rng = np.random.default_rng(0)
    c = 200
    cm = np.diag(rng.integers(20, 30, size=c)) + (rng.random((c, c)) < 0.01) * rng.integers(1, 4, size=(c, c))
    names = [f"{i:03d}.Some_Long_Bird_Name_{i}" for i in range(c)]
    _check_png(plot_confusion_matrix(cm, names, tmp_path / "big.png"))
    _check_png(plot_confusion_matrix(cm[:12, :12], names[:12], tmp_path / "small.png", normalize=False))
