"""Training loop: outputs, exact resume, options, recipes and misuse."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from edge_fgic.data.synthetic import SyntheticConfig, generate
from edge_fgic.errors import UserError
from edge_fgic.models import load_checkpoint
from edge_fgic.training import trainer as trainer_mod
from edge_fgic.training.config import DEMO_RECIPE, TrainConfig
from edge_fgic.training.trainer import train

REPO = Path(__file__).resolve().parents[1]
TINY = dict(depths=[1, 1, 1, 1], dims=[8, 16, 32, 64])


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "fg"
    return generate(root, SyntheticConfig(image_size=32, train_per_class=6, val_per_class=2, test_per_class=2),
                    progress=False)


def tiny_cfg(data: Path, out: Path, **over) -> TrainConfig:
    d = dict(data=f"synthetic={data}", model="convnext_atto", model_kwargs=TINY, input_size=32, crop_pct=1.0,
             epochs=2, batch_size=8, lr=2e-3, workers=0, out=str(out), gradcam=2, auto_augment="none",
             warmup_epochs=0.5)
    d.update(over)
    return TrainConfig.from_dict(d)


@pytest.mark.slow  # a training run + final eval
def test_train_writes_checkpoints_metrics_and_eval(tiny_synth, tmp_path):
    res = train(tiny_cfg(tiny_synth, tmp_path / "run"), progress=False)
    out = tmp_path / "run"
    for name in ("best.pt", "last.pt", "metrics.csv", "metrics.jsonl", "training_curves.png", "config.yaml"):
        assert (out / name).is_file(), name
    for name in ("metrics.json", "confusion_matrix.png", "gradcam.png", "confused_pairs.csv"):
        assert (out / "eval-val" / name).is_file(), name
    lines = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch,train_loss")
    best = load_checkpoint(res.best)
    assert best.classes == SyntheticConfig().classes
    assert best.preprocess.input_size == 32 and best.model.kwargs["dims"] == (8, 16, 32, 64)
    assert best.train_config["data"].startswith("synthetic=")
    assert "optimizer" not in best.extra  # best.pt is the model only; last.pt holds the training state
    assert {"optimizer", "scheduler", "rng", "epoch"} <= set(load_checkpoint(res.last).extra)
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files


@pytest.mark.slow  # three training runs
def test_resume_continues_exactly(tiny_synth, tmp_path, monkeypatch):
    full = train(tiny_cfg(tiny_synth, tmp_path / "full", epochs=3), progress=False, final_eval=False)

    real_write = trainer_mod.write_history
    calls = {"n": 0}

    def crash_after_first_epoch(out, history):
        real_write(out, history)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # as if Ctrl-C arrived right after epoch 1 was saved

    monkeypatch.setattr(trainer_mod, "write_history", crash_after_first_epoch)
    cfg = tiny_cfg(tiny_synth, tmp_path / "cut", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False, final_eval=False)
    assert load_checkpoint(tmp_path / "cut" / "last.pt").extra["epoch"] == 0
    resumed = train(cfg, resume=True, progress=False, final_eval=False)

    a, b = load_checkpoint(full.last), load_checkpoint(resumed.last)
    assert a.extra["epoch"] == b.extra["epoch"] == 2
    for k, v in a.state_dict.items():
        assert torch.equal(v, b.state_dict[k]), k
    assert [r["train_loss"] for r in a.extra["history"]] == [r["train_loss"] for r in b.extra["history"]]
    assert len((tmp_path / "cut" / "metrics.csv").read_text().strip().splitlines()) == 4


def test_mixup_ema_cyclic_attention_run(tiny_synth, tmp_path):
    cfg = tiny_cfg(tiny_synth, tmp_path / "run", epochs=2, mixup=0.2, cutmix=0.2, ema=True, ema_decay=0.9,
                   sched="cyclic", cycles=2, attention_head=True, optimizer="sgd", lr=0.05, patience=1)
    res = train(cfg, progress=False, final_eval=False)
    assert load_checkpoint(res.best).model.attention_head


def test_run_refuses_overwrite_and_bad_resume(tiny_synth, tmp_path):
    cfg = tiny_cfg(tiny_synth, tmp_path / "run", epochs=1)
    with pytest.raises(UserError, match="nothing to resume"):
        train(cfg, resume=True, progress=False)
    train(cfg, progress=False, final_eval=False)
    with pytest.raises(UserError, match="--resume"):
        train(cfg, progress=False)
    changed = tiny_cfg(tiny_synth, tmp_path / "run", epochs=1, lr=0.5)
    with pytest.raises(UserError, match="changed option lr"):
        train(changed, resume=True, progress=False)


def test_config_rejects_unknown_and_invalid_options():
    with pytest.raises(UserError, match="unknown training option"):
        TrainConfig.from_dict({"learning_rate": 0.1}, "r.yaml")
    with pytest.raises(UserError, match="optimizer"):
        TrainConfig.from_dict({"optimizer": "lamb"}, "r.yaml")


def test_recipes_are_valid_and_demo_recipe_matches_file():
    # pipelines: test_pipeline
    recipes = sorted(p for p in (REPO / "train").glob("*.yaml") if not p.name.startswith("pipeline-"))
    assert len(recipes) >= 8
    for path in recipes:
        d = yaml.safe_load(path.read_text())
        d.pop("description", None)
        TrainConfig.from_dict(d, str(path))
    demo = yaml.safe_load((REPO / "train" / "synthetic.yaml").read_text())
    demo.pop("description", None)
    assert demo == DEMO_RECIPE


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs CUDA: AMP (bf16/fp16) and channels_last run only on a GPU")
def test_cuda_amp_channels_last(tiny_synth, tmp_path):
    cfg = tiny_cfg(tiny_synth, tmp_path / "gpu", device="cuda", amp="auto", channels_last=True)
    res = train(cfg, progress=False, final_eval=False)
    assert res.best.is_file()


@pytest.mark.slow  # torchrun: two fresh interpreters
def test_torchrun_ddp_two_processes_on_cpu(tiny_synth, tmp_path):
    """The multi-GPU path (torchrun + DDP), exercised with two CPU processes over gloo on loopback."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "edge_fgic",
           "train",
           "--data", f"synthetic={tiny_synth}", "--out", str(out), "--epochs", "2", "--input-size", "32", "-b", "4",
           "--workers", "0", "--device", "cpu", "--no-eval", "--set", "crop_pct=1.0", "--set", "auto_augment=none",
           "--set", "model_kwargs={depths: [1, 1, 1, 1], dims: [8, 16, 32, 64]}"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = load_checkpoint(out / "last.pt")
    assert last.extra["epoch"] == 1
    assert len(last.extra["history"]) == 2


def test_early_stopping_and_resume_does_not_train_past_it(tiny_synth, tmp_path):
    # lr ~ 0: val top-1 cannot improve after epoch 1, so patience=1 stops after epoch 2 of 5
    cfg = tiny_cfg(tiny_synth, tmp_path / "run", epochs=5, lr=1e-12, patience=1, warmup_epochs=0)
    res = train(cfg, progress=False, final_eval=False)
    assert res.stopped_early and res.epochs_run == 2
    again = train(cfg, resume=True, progress=False, final_eval=False)
    assert again.stopped_early
    assert len(load_checkpoint(again.last).extra["history"]) == 2


def test_resume_after_the_dataset_changed_classes_is_one_line(tmp_path):
    from conftest import write_imagefolder

    data = write_imagefolder(tmp_path / "data", classes=("ant", "bee", "cat"), splits={"train": 4, "val": 2})
    cfg = tiny_cfg(data, tmp_path / "run", epochs=1)
    cfg.data = str(data)
    train(cfg, progress=False, final_eval=False)
    import shutil

    for split in ("train", "val"):  # one class fewer: the saved head no longer fits the new model
        shutil.rmtree(data / split / "cat")
    with pytest.raises(UserError, match="other classes") as exc:
        train(cfg, resume=True, progress=False, final_eval=False)
    assert "\n" not in str(exc.value)
