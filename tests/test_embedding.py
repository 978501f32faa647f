"""The embedding (issue 18): recall@k and the class-pair margins in metrics, eval's embedding figures, and
``export --embedding``: the second output, its manifest entry, its round trip and the runners' access to it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from torch import nn

from edge_fgic.metrics import (class_pair_distances, embedding_summary, l2_normalize, neighbour_agreement,
                               recall_at_k, retrieval_ranks)

# ---------------------------------------------------------------- metrics (NumPy only)

# 2-D toy: class 0 points right, class 1 up; item 4 (class 1) sits among class 0
TOY = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.8, 0.2]])
TOY_Y = np.array([0, 0, 1, 1, 1])


def test_recall_at_k_hand_computed():
    # item 4's most similar same-label item is item 3 (cos 0.348), behind items 1 (0.991) and 0 (0.970): rank 2
    assert retrieval_ranks(TOY, TOY_Y).tolist() == [0, 0, 0, 0, 2]
    r = recall_at_k(TOY, TOY_Y, (1, 2, 3))
    assert r == {"recall@1": 80.0, "recall@2": 80.0, "recall@3": 100.0, "queries": 5, "unscored": 0}
    # scale-free: a raw (un-normalised) embedding ranks like its normalised copy
    assert recall_at_k(TOY * [[3.0], [0.5], [2.0], [7.0], [1.0]], TOY_Y) == recall_at_k(l2_normalize(TOY), TOY_Y)


def test_recall_at_k_ties_singletons_and_empty():
    # a tie between the best positive and a negative counts against the query
    e = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert retrieval_ranks(e, [0, 0, 1]).tolist() == [1, 1, -1]  # item 2's class has no other image
    r = recall_at_k(e, [0, 0, 1], (1, 2))
    assert r == {"recall@1": 0.0, "recall@2": 100.0, "queries": 2, "unscored": 1}
    assert recall_at_k(np.zeros((1, 4)), [0])["recall@1"] is None
    with pytest.raises(ValueError):
        recall_at_k(TOY, TOY_Y, (0,))


def test_recall_at_k_chunked_equals_unchunked():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(301, 12)) + np.repeat(rng.normal(size=(10, 12)), 31, axis=0)[:301]
    y = np.repeat(np.arange(10), 31)[:301]
    whole = recall_at_k(e, y, (1, 5, 10), chunk=10_000)
    for chunk in (1, 7, 64):
        assert recall_at_k(e, y, (1, 5, 10), chunk=chunk) == whole
    assert np.array_equal(retrieval_ranks(e, y, chunk=3), retrieval_ranks(e, y))
    assert neighbour_agreement(e, e, chunk=5) == 100.0
    assert neighbour_agreement(e, e * 2.0) == 100.0


def test_class_pair_distances_toy():
    # class 0: exactly (1, 0) twice -> spread 0; class 1: (0, 1) and (1, 0) -> centroid (1, 1)/sqrt2
    e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = np.array([0, 0, 1, 1])
    (d,) = class_pair_distances(e, y, [(0, 1)])
    c = 1 / np.sqrt(2)
    assert d["distance"] == pytest.approx(1 - c)
    assert d["a_spread"] == pytest.approx(0.0, abs=1e-12)
    assert d["b_spread"] == pytest.approx(1 - c)
    assert d["separation"] == pytest.approx((1 - c) / ((1 - c) / 2))  # 2 class-widths apart
    # a class without images: None, not NaN
    (missing,) = class_pair_distances(e, y, [(0, 2)], num_classes=3)
    assert missing["distance"] is None and missing["separation"] is None
    s = embedding_summary(e, y)
    assert s["dim"] == 2 and s["mean_centroid_distance"] == pytest.approx(1 - c)
    assert s["mean_spread"] == pytest.approx((1 - c) / 2)


# ---------------------------------------------------------------- eval


def _tiny_model(classes: int = 3):
    from edge_fgic.models import create_model
    torch.manual_seed(0)
    return create_model("convnext_atto", classes, depths=(1, 1, 1, 1), dims=(8, 16, 32, 64))


def _split(root: Path, per_class: int = 4):
    from edge_fgic.data.datasets import FGDataset, SplitIndex
    from edge_fgic.data.transforms import PreprocessConfig, eval_transform
    from PIL import Image
    rng = np.random.default_rng(0)
    samples = []
    for label, name in enumerate(("ant", "bee", "cat")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            arr = rng.integers(0, 60, size=(32, 32, 3), dtype=np.uint8)
            arr[..., label] = 200
            p = root / name / f"{k}.png"
            Image.fromarray(arr).save(p)
            samples.append((str(p), label))
    cfg = PreprocessConfig(input_size=32, crop_pct=1.0)
    return FGDataset(SplitIndex(["ant", "bee", "cat"], samples), eval_transform(cfg)), cfg


def test_predict_with_embedding_matches_forward_embedding(tmp_path):
    from edge_fgic.training.evaluate import predict_logits, predict_with_embedding
    ds, _ = _split(tmp_path / "d")
    model = _tiny_model()
    logits, targets, emb = predict_with_embedding(model, ds, batch_size=5, progress=False)
    plain, _ = predict_logits(model, ds, batch_size=5, progress=False)
    assert np.allclose(logits, plain, atol=1e-6)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        ref = model.eval().forward_embedding(x).numpy()
    assert emb.shape == (12, model.num_features) and np.allclose(emb, ref, atol=1e-5)


def test_eval_reports_recall_and_pair_distances(tmp_path):
    from edge_fgic.training.evaluate import evaluate
    from edge_fgic.training.render import metrics_table
    ds, cfg = _split(tmp_path / "d")
    out = tmp_path / "eval"
    res = evaluate(_tiny_model(), ds, out, preprocess=cfg, batch_size=5, gradcam_images=0, progress=False)
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("recall@1", "recall@5"):
        assert 0.0 <= saved[key] <= 100.0 and saved[key] == res[key]
    emb = saved["embedding"]
    assert emb["dim"] == 64 and emb["queries"] == 12 and set(emb["class_spread"]) == {"ant", "bee", "cat"}
    assert [(p["a"], p["b"]) for p in emb["confused_pairs"]] == [(p["a"], p["b"]) for p in saved["confused_pairs"]]
    for p in emb["confused_pairs"]:
        assert 0.0 <= p["distance"] <= 2.0 and p["a_spread"] >= 0.0
    # the existing report is unchanged: same files, same CSV columns
    assert {p.name for p in out.iterdir()} == {"metrics.json", "per_class.csv", "confused_pairs.csv",
                                               "confusion_matrix.png"}
    console = Console(record=True, width=160)
    console.print(metrics_table(res))
    text = console.export_text()
    assert "recall@1 (embedding)" in text and "recall@5 (embedding)" in text
    if saved["confused_pairs"]:
        assert "centroid distance" in text


class _OldNet(nn.Module):
    """A model without forward_with_embedding (as an old checkpoint's class would be)."""

    num_classes = 3

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))

    def forward(self, x):
        return self.net(x)


def test_eval_without_embedding_skips_with_a_note(tmp_path):
    from edge_fgic.training.evaluate import evaluate
    from edge_fgic.training.render import metrics_table
    ds, cfg = _split(tmp_path / "d", per_class=2)
    res = evaluate(_OldNet(), ds, tmp_path / "eval", preprocess=cfg, gradcam_images=0, progress=False)
    assert res["recall@1"] is None and res["recall@5"] is None
    assert "skipped" in res["embedding"]["note"] and "forward_with_embedding" in res["embedding"]["note"]
    assert 0.0 <= res["top1"] <= 100.0
    console = Console(record=True, width=160)
    console.print(metrics_table(res))
    assert "embedding metrics skipped" in console.export_text()


# ---------------------------------------------------------------- export --embedding


def _checkpoint(tmp_path: Path):
    from conftest import TINY_MODEL, write_imagefolder
    from edge_fgic.data.transforms import PreprocessConfig
    from edge_fgic.models import create_model, save_checkpoint
    data = write_imagefolder(tmp_path / "data", size=(32, 32))
    torch.manual_seed(0)
    model = create_model("convnext_atto", 3, **TINY_MODEL)
    ckpt = save_checkpoint(tmp_path / "run" / "best.pt", model, classes=["ant", "bee", "cat"],
                           preprocess=PreprocessConfig(input_size=32, crop_pct=1.0))
    return ckpt, f"imagefolder={data}", model


def _export(ckpt, data, out, target="onnx", precision="fp32", **kw):
    from edge_fgic.export.exporter import ExportConfig, export
    (res,) = export(ExportConfig(model=str(ckpt), target=target, precision=precision, data=data, out=str(out),
                                 name="m", **kw), progress=False)
    assert res.status == "ok", res.message
    return Path(res.artifact), res


def test_onnx_embedding_output_manifest_and_runner(tmp_path):
    import onnx

    from edge_fgic.manifest import read_manifest
    from edge_fgic.runtime import open_runner
    ckpt, data, model = _checkpoint(tmp_path)
    path, res = _export(ckpt, data, tmp_path / "emb", embedding=True)
    plain, _ = _export(ckpt, data, tmp_path / "plain")

    assert [o.name for o in onnx.load(str(path)).graph.output] == ["logits", "embedding"]
    assert [o.name for o in onnx.load(str(plain)).graph.output] == ["logits"]
    m = read_manifest(path)
    assert m.embedding is not None and m.embedding.name == "embedding" and m.embedding.normalized is True
    assert m.embedding.dim == model.num_features == 64 and m.embedding.shape == [1, 64]
    side = json.loads(Path(str(path) + ".json").read_text())
    assert side["embedding"]["dim"] == 64 and side["output"]["name"] == "logits"
    assert "embedding" not in json.loads(Path(str(plain) + ".json").read_text())  # without the flag: as before
    rt = res.round_trip["embedding"]
    assert rt["passed"] and rt["max_abs_diff"] < 1e-5 and rt["neighbour_agreement"] == 100.0

    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        ref_logits = model.eval()(x).numpy()
        ref_emb = torch.nn.functional.normalize(model.forward_embedding(x), dim=1).numpy()
    runner = open_runner(path)
    logits = runner.predict(x.numpy())  # logits by name, unchanged by the second output
    assert logits.shape == (5, 3) and np.allclose(logits, ref_logits, atol=1e-4)
    assert np.allclose(logits, open_runner(plain).predict(x.numpy()), atol=1e-5)
    both_logits, emb = runner.predict_with_embedding(x.numpy())
    assert np.allclose(both_logits, logits) and emb.shape == (5, 64)
    assert np.allclose(emb, ref_emb, atol=1e-5) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert runner.embedding.dim == 64 and open_runner(plain).embedding is None
    from edge_fgic.errors import UserError
    with pytest.raises(UserError, match="--embedding"):
        open_runner(plain).predict_embedding(x.numpy())


def test_embedding_refusals_are_one_line():
    from edge_fgic.errors import UserError
    from edge_fgic.export.embedding import check_embedding
    with pytest.raises(UserError, match="INT8"):
        check_embedding(_tiny_model(), "int8", "m.pt")
    with pytest.raises(UserError, match="forward_with_embedding"):
        check_embedding(_OldNet(), "fp32", "m.pt")


def test_export_cli_has_the_embedding_flag():
    from typer.testing import CliRunner

    from edge_fgic.cli import app
    out = CliRunner().invoke(app, ["export", "--help"], terminal_width=200).output
    assert "--embedding" in out


@pytest.mark.slow  # OpenVINO (a child process) and litert-torch: ~10 s each on 2 cores
# two of the four target x precision cells (suite time): FP32 OpenVINO, and FP16 TFLite, whose normalisation runs
# after the cast back to float32 (the FP32 TFLite and FP16 OpenVINO graphs are the same wrapper, converted alike)
@pytest.mark.parametrize("target, precision", [("openvino", "fp32"), ("tflite", "fp16")])
def test_embedding_output_in_openvino_and_tflite(target, precision, tmp_path):
    from edge_fgic.runtime import open_runner
    ckpt, data, model = _checkpoint(tmp_path)
    path, res = _export(ckpt, data, tmp_path / "out", target=target, precision=precision, embedding=True)
    assert res.round_trip["embedding"]["passed"]
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref_logits = model.eval()(x).numpy()
        ref_emb = torch.nn.functional.normalize(model.forward_embedding(x), dim=1).numpy()
    runner = open_runner(path)
    tol = 1e-4 if precision == "fp32" else 3e-2
    assert np.allclose(runner.predict(x.numpy()), ref_logits, atol=tol)
    logits, emb = runner.predict_with_embedding(x.numpy())
    assert np.allclose(logits, ref_logits, atol=tol) and np.allclose(emb, ref_emb, atol=tol)
    assert runner.embedding.dim == 64


def test_eval_of_a_trained_checkpoint_reports_recall(tiny_bnrelu_run, tmp_path):
    from edge_fgic.training.eval_stage import EvalConfig, run_eval
    res = run_eval(EvalConfig(model=str(tiny_bnrelu_run), out=str(tmp_path / "ev"), gradcam=0), progress=False)
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert 0.0 <= saved["recall@1"] <= saved["recall@5"] <= 100.0
    assert saved["embedding"]["queries"] == saved["n"] and res.metrics["recall@1"] == saved["recall@1"]
