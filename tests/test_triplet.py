"""Metric learning: the batch-hard triplet loss, the P x K sampler, the mixup label rule, the config rule,
and the loss inside train / distill (resume equality, off = unchanged)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edge_fgic.cli import app
from edge_fgic.errors import UserError
from edge_fgic.models import create_model, load_checkpoint
from edge_fgic.training import trainer as trainer_mod
from edge_fgic.training.config import TrainConfig
from edge_fgic.training.metric_loss import batch_hard_triplet_loss, dominant_labels, pairwise_distances
from edge_fgic.training.sampler import PKBatchSampler, pk_sampler
from edge_fgic.training.trainer import train

from conftest import one_error_line

TINY = dict(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64])


def unit(deg: float, scale: float = 1.0) -> list[float]:
    return [scale * math.cos(math.radians(deg)), scale * math.sin(math.radians(deg))]


def chord(a: float, b: float) -> float:
    """Euclidean distance between two unit vectors at angles a, b (degrees)."""
    return 2 * math.sin(math.radians(abs(a - b)) / 2)


# ---------------------------------------------------------------- the loss


def test_loss_on_a_hand_built_batch():
    # class 0 at 0 and 60 degrees, class 1 at 90 and 180, a lone class 2 at 270 (no positive: not an anchor, but
    # the closest negative of the anchor at 180); lengths vary, the loss normalises them away
    angles, labels = [0, 60, 90, 180, 270], [0, 0, 1, 1, 2]
    emb = torch.tensor([unit(a, s) for a, s in zip(angles, [1.0, 3.0, 0.5, 2.0, 7.0])], requires_grad=True)
    m = 0.2
    expected = [
        max(0.0, chord(0, 60) - chord(0, 90) + m),        # 1 - sqrt 2 + 0.2 < 0: satisfied
        max(0.0, chord(60, 0) - chord(60, 90) + m),       # hardest negative 90 deg is 30 deg away
        max(0.0, chord(90, 180) - chord(90, 60) + m),
        max(0.0, chord(180, 90) - chord(180, 270) + m),   # the lone class-2 sample is the hardest negative: 0.2
    ]
    assert expected[0] == 0 and expected[3] == pytest.approx(m)
    loss = batch_hard_triplet_loss(emb, torch.tensor(labels), margin=m)
    assert loss.item() == pytest.approx(sum(expected) / 4, abs=1e-6)
    loss.backward()
    assert torch.isfinite(emb.grad).all()
    # the margin is the knob: a larger one makes every anchor active
    big = batch_hard_triplet_loss(emb.detach(), torch.tensor(labels), margin=1.0).item()
    expected_big = [chord(0, 60) - chord(0, 90) + 1, chord(60, 0) - chord(60, 90) + 1,
                    chord(90, 180) - chord(90, 60) + 1, chord(180, 90) - chord(180, 270) + 1]
    assert big == pytest.approx(sum(expected_big) / 4, abs=1e-6)


def test_anchors_without_a_positive_or_a_negative_are_left_out():
    emb = torch.randn(4, 8, requires_grad=True)
    for labels in ([0, 1, 2, 3], [5, 5, 5, 5]):  # no positives / no negatives: no valid anchor
        loss = batch_hard_triplet_loss(emb, torch.tensor(labels))
        assert loss.item() == 0.0 and loss.requires_grad
        loss.backward()
        assert torch.equal(emb.grad, torch.zeros_like(emb))
        emb.grad = None
    # one pair: only its two samples are anchors; the two singletons are negatives only
    e = torch.tensor([unit(0), unit(10), unit(180), unit(90)])
    got = batch_hard_triplet_loss(e, torch.tensor([0, 0, 1, 2]), margin=0.5).item()
    assert got == pytest.approx(max(0.0, chord(0, 10) - chord(0, 90) + 0.5), abs=1e-6)


def test_gradient_is_finite_at_identical_embeddings():
    emb = torch.ones(6, 4, requires_grad=True)
    loss = batch_hard_triplet_loss(emb, torch.tensor([0, 0, 1, 1, 2, 2]), margin=0.2)
    assert loss.item() == pytest.approx(0.2)
    loss.backward()
    assert torch.isfinite(emb.grad).all()
    d = pairwise_distances(torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]))
    assert torch.equal(d.diagonal(), torch.zeros(3)) and d[0, 1] == 0
    assert d[0, 2].item() == pytest.approx(math.sqrt(2), abs=1e-6)


# ---------------------------------------------------------------- the P x K sampler


def _labels(per_class: list[int]) -> list[int]:
    return [c for c, n in enumerate(per_class) for _ in range(n)]


def test_pk_batches_have_p_distinct_classes_times_k_images():
    labels = _labels([9, 8, 2, 12, 1, 7, 6, 5])  # classes smaller than K=4 draw with replacement
    s = pk_sampler(labels, batch_size=12, pk_images=4, seed=3, epoch=0)
    batches = list(s)
    assert len(batches) == len(s) == len(labels) // 12
    arr = np.asarray(labels)
    for b in batches:
        assert len(b) == 12
        counts = np.unique(arr[b], return_counts=True)[1]
        assert len(counts) == 3 and set(counts) == {4}
    one = next(i for b in batches for i in b if labels[i] == 4)  # the 1-image class: K copies of its image
    assert labels[one] == 4


def test_pk_epoch_covers_the_dataset_and_is_deterministic_under_seed_and_epoch():
    labels = _labels([8] * 10)
    sampler = PKBatchSampler(labels, 4, 4, num_batches=len(labels) // 16, seed=0)
    seen = [i for b in sampler for i in b]
    assert len(set(seen)) >= 0.8 * len(labels)  # about every image once an epoch
    assert set(np.asarray(labels)[seen]) == set(range(10))  # every class
    again = pk_sampler(labels, 16, 4, seed=0, epoch=0)
    assert list(again) == list(sampler)  # (seed, epoch) -> the same batches, whatever the global RNG did
    torch.manual_seed(123), np.random.seed(7)
    assert list(pk_sampler(labels, 16, 4, seed=0, epoch=0)) == list(sampler)
    assert list(pk_sampler(labels, 16, 4, seed=0, epoch=1)) != list(sampler)
    assert list(pk_sampler(labels, 16, 4, seed=1, epoch=0)) != list(sampler)


def test_pk_ddp_ranks_get_disjoint_slices_of_the_epoch():
    labels = _labels([10] * 8)
    world = 3
    ranks = [list(pk_sampler(labels, 8, 2, seed=5, epoch=2, world=world, rank=r)) for r in range(world)]
    assert all(len(r) == len(labels) // 8 // world for r in ranks)
    whole = pk_sampler(labels, 8, 2, seed=5, epoch=2, world=world).epoch_batches()
    assert len(whole) == world * len(ranks[0])
    for r in range(world):
        assert ranks[r] == whole[r::world]  # round-robin: each batch goes to exactly one rank
    flat = [tuple(b) for r in ranks for b in r]
    assert sorted(flat) == sorted(tuple(b) for b in whole)


def test_pk_more_classes_per_batch_than_the_split_has_is_one_line():
    with pytest.raises(UserError, match=r"train split.*8 classes per batch, but it has 6 classes.*--pk-images 8"):
        pk_sampler(_labels([6] * 6), batch_size=32, pk_images=4, seed=0, epoch=0, source="train split")


# ---------------------------------------------------------------- config and CLI


def test_config_rule_batch_size_is_p_times_k():
    base = dict(triplet_weight=0.5, pk_images=4)
    assert TrainConfig.from_dict({**base, "batch_size": 32}).uses_triplet()
    for bs in (30, 4):  # not a multiple of K / only one class per batch
        with pytest.raises(UserError, match=r"^recipe\.yaml: triplet_weight > 0 .*batch_size \d+ must be a multiple"):
            TrainConfig.from_dict({**base, "batch_size": bs}, "recipe.yaml")
    assert not TrainConfig.from_dict({"batch_size": 30, "pk_images": 4}).uses_triplet()  # off: no rule
    qat = TrainConfig.from_dict({**base, "batch_size": 30, "quantize": {"mode": "qat"}})  # QAT trains without it
    assert not qat.uses_triplet()
    with pytest.raises(UserError, match="triplet_weight must be >= 0"):
        TrainConfig.from_dict({"triplet_weight": -1})


def test_cli_flags_reach_the_config(tiny_checkpoint):
    runner = CliRunner()
    line = one_error_line(runner.invoke(app, ["train", "--triplet-weight", "0.5", "--pk-images", "4", "-b", "6",
                                              "--triplet-margin", "0.3"]))
    assert "batch_size 6 must be a multiple of 4" in line and "--batch-size 8" in line
    teacher = tiny_checkpoint()
    line = one_error_line(runner.invoke(app, ["distill", "--teacher", str(teacher), "--triplet-weight", "1",
                                              "--pk-images", "3", "-b", "8"]))
    assert "batch_size 8 must be a multiple of 3" in line


# ---------------------------------------------------------------- mixup: the dominant label


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixed_samples_take_the_label_of_their_dominant_source(mode, kind):
    from timm.data import Mixup

    n, classes = 8, 5
    kw = dict(mixup_alpha=1.0, cutmix_alpha=0.0) if kind == "mixup" else dict(mixup_alpha=0.0, cutmix_alpha=1.0)
    fn = Mixup(**kw, mode=mode, label_smoothing=0.1, num_classes=classes)
    values = torch.arange(1, n + 1, dtype=torch.float32)  # image i is all (i + 1): the mix reveals its weights
    branches = set()
    for seed in range(40):
        torch.manual_seed(seed), np.random.seed(seed)
        y = torch.randint(0, classes, (n,))
        x = values[:, None, None, None].expand(n, 3, 16, 16).clone()
        x, target = fn(x, y)
        own = (x.mean(dim=(1, 2, 3)) - values.flip(0)) / (values - values.flip(0))  # weight of the sample's own image
        got = dominant_labels(y, target)
        for i in range(n):
            if abs(own[i].item() - 0.5) < 1e-3 or y[i] == y.flip(0)[i]:
                continue
            mine = own[i].item() > 0.5
            branches.add(mine)
            assert got[i].item() == (y[i] if mine else y.flip(0)[i]).item(), (seed, i, own[i].item())
    assert branches == {True, False}  # both rules were exercised
    y = torch.tensor([0, 1, 2, 3])
    assert torch.equal(dominant_labels(y, y), y)  # no mixing: the labels themselves
    assert torch.equal(dominant_labels(y, torch.nn.functional.one_hot(y, 4).float()), y)  # odd batch: one-hot


# ---------------------------------------------------------------- in the training loop


# the training tests' tiny recipe (gradcam off: nothing here looks at it) on conftest's tiny_synth
from test_training import tiny_cfg as _tiny_cfg  # noqa: E402


def tiny_cfg(data: Path, out: Path, **over) -> TrainConfig:
    return _tiny_cfg(data, out, **{"gradcam": 0, **over})


def test_train_loader_draws_pk_batches_only_with_the_loss_on(tiny_synth, tmp_path):
    pp = trainer_mod.preprocess_from(tiny_cfg(tiny_synth, tmp_path))
    on = tiny_cfg(tiny_synth, tmp_path, triplet_weight=1.0, pk_images=2)
    train_ds, _ = trainer_mod._datasets(on, pp, False)
    cpu = torch.device("cpu")
    loader = trainer_mod._loader(train_ds, on, True, 0, 1, 0, cpu)
    assert isinstance(loader.batch_sampler, PKBatchSampler) and len(loader) == len(train_ds) // 8
    for _, y in loader:
        assert len(y) == 8 and sorted(np.unique(y.numpy(), return_counts=True)[1]) == [2, 2, 2, 2]
    off = tiny_cfg(tiny_synth, tmp_path, pk_images=3, triplet_margin=0.7)
    assert not isinstance(trainer_mod._loader(train_ds, off, True, 0, 1, 0, cpu).batch_sampler, PKBatchSampler)
    assert not isinstance(trainer_mod._loader(train_ds, on, False, 0, 1, 0, cpu).batch_sampler, PKBatchSampler)


def test_student_with_features_gives_the_embedding_in_the_same_pass():
    from edge_fgic.training.distill import StudentWithFeatures

    torch.manual_seed(0)
    student = create_model("convnext_atto", 3, **TINY).eval()
    mod = StudentWithFeatures(student, torch.nn.Conv2d(64, 16, 1))
    x = torch.randn(2, 3, 32, 32)
    (logits, proj), emb = mod.forward_with_embedding(x)
    ref_logits, ref_proj = mod(x)
    assert torch.allclose(logits, ref_logits, atol=1e-6) and torch.allclose(proj, ref_proj)
    assert torch.allclose(emb, student.forward_embedding(x))


@pytest.mark.slow  # three short training runs
def test_weight_zero_leaves_training_unchanged(tiny_synth, tmp_path):
    base = train(tiny_cfg(tiny_synth, tmp_path / "base", epochs=1), progress=False, final_eval=False)
    off = train(tiny_cfg(tiny_synth, tmp_path / "off", epochs=1, pk_images=2, triplet_margin=0.9), progress=False,
                final_eval=False)
    a, b = load_checkpoint(base.last), load_checkpoint(off.last)
    assert a.extra["history"][0]["train_loss"] == b.extra["history"][0]["train_loss"]
    assert "train_triplet" not in b.extra["history"][0]
    for k, v in a.state_dict.items():
        assert torch.equal(v, b.state_dict[k]), k
    on = train(tiny_cfg(tiny_synth, tmp_path / "on", epochs=1, triplet_weight=1.0, pk_images=2), progress=False,
               final_eval=False)
    row = load_checkpoint(on.last).extra["history"][0]
    assert row["train_triplet"] > 0 and row["train_loss"] != a.extra["history"][0]["train_loss"]
    header = (tmp_path / "on" / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,train_loss,train_triplet,")


@pytest.mark.slow  # three training runs
def test_resume_with_the_triplet_loss_continues_exactly(tiny_synth, tmp_path, monkeypatch):
    over = dict(epochs=3, triplet_weight=0.5, triplet_margin=0.3, pk_images=2, mixup=0.3, cutmix=0.3)
    full = train(tiny_cfg(tiny_synth, tmp_path / "full", **over), progress=False, final_eval=False)

    real_write = trainer_mod.write_history
    calls = {"n": 0}

    def crash_after_first_epoch(out, history):
        real_write(out, history)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer_mod, "write_history", crash_after_first_epoch)
    cfg = tiny_cfg(tiny_synth, tmp_path / "cut", **over)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False, final_eval=False)
    resumed = train(cfg, resume=True, progress=False, final_eval=False)

    a, b = load_checkpoint(full.last), load_checkpoint(resumed.last)
    assert a.extra["epoch"] == b.extra["epoch"] == 2
    for k, v in a.state_dict.items():
        assert torch.equal(v, b.state_dict[k]), k
    for key in ("train_loss", "train_triplet"):
        assert [r[key] for r in a.extra["history"]] == [r[key] for r in b.extra["history"]], key
    with pytest.raises(UserError, match="changed option triplet_weight"):
        train(tiny_cfg(tiny_synth, tmp_path / "cut", **{**over, "triplet_weight": 0.0}), resume=True,
              progress=False, final_eval=False)


@pytest.mark.slow  # a teacher and a student
def test_distill_with_the_triplet_loss_and_feature_kd(tiny_synth, tmp_path):
    from edge_fgic.training.distill import distill_config

    teacher = train(tiny_cfg(tiny_synth, tmp_path / "teacher", epochs=1), progress=False, final_eval=False)
    cfg = distill_config(teacher.best, load_checkpoint(teacher.best),
                         overrides=dict(epochs=1, triplet_weight=1.0, pk_images=2, feature_kd=0.5,
                                        out=str(tmp_path / "student")))
    assert cfg.uses_triplet() and cfg.teacher
    res = train(cfg, progress=False, final_eval=False)
    row = load_checkpoint(res.last).extra["history"][0]
    assert math.isfinite(row["train_triplet"]) and row["train_triplet"] > 0


@pytest.mark.slow  # torchrun: two fresh interpreters
def test_torchrun_ddp_with_the_triplet_loss(tiny_synth, tmp_path):
    """Two CPU ranks over gloo: each draws its own slice of the epoch's P x K batches; the triplet term is logged."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "edge_fgic",
           "train", "--data", f"synthetic={tiny_synth}", "--out", str(out), "--epochs", "2", "--input-size", "32",
           "-b", "4", "--triplet-weight", "0.5", "--pk-images", "2", "--workers", "0", "--device", "cpu", "--no-eval",
           "--set", "crop_pct=1.0", "--set", "auto_augment=none",
           "--set", "model_kwargs={depths: [1, 1, 1, 1], dims: [8, 16, 32, 64]}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    history = load_checkpoint(out / "last.pt").extra["history"]
    assert len(history) == 2 and all(r["train_triplet"] >= 0 for r in history)
