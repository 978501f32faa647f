"""Distillation: the loss, the student variants, the CLI and its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from edge_fgic.cli import app
from edge_fgic.models import create_model, load_checkpoint
from edge_fgic.models.factory import VARIANTS, variant_kwargs
from edge_fgic.models.fuse import count_ops, fuse_for_deploy
from edge_fgic.training.config import TrainConfig
from edge_fgic.training.distill import feature_loss, kd_loss
from edge_fgic.training.trainer import train

from conftest import TINY_KW as TINY  # noqa: E402
runner = CliRunner()


@pytest.fixture
def synth(tiny_synth) -> Path:
    return tiny_synth


@pytest.fixture
def teacher(tiny_bnrelu_run) -> Path:
    return tiny_bnrelu_run


def test_kd_loss_zero_for_identical_logits_and_positive_otherwise():
    a = torch.randn(4, 6)
    assert kd_loss(a, a, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(a, torch.randn(4, 6), 4.0).item() > 0.01
    f = torch.randn(2, 8, 2, 2)
    assert feature_loss(f, f * 3 + 1).item() == pytest.approx(0.0, abs=1e-5)  # scale-free


@pytest.mark.slow  # 2 models, 60 optimizer steps
def test_distillation_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    teacher = create_model("convnext_atto", 5, **variant_kwargs("bn-relu", TINY)).eval()
    student = create_model("convnext_atto", 5, **variant_kwargs("stock", TINY))
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        t = teacher(x)
    opt = torch.optim.AdamW(student.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = kd_loss(student(x), t, 4.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_student_variants_build_run_and_fold_exactly(variant):
    torch.manual_seed(0)
    model = create_model("convnext_atto", 4, **variant_kwargs(variant, {**TINY, "ls_init_value": 0.3}))
    for m in model.modules():  # non-trivial BN statistics, so folding is really tested
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    model.eval()
    fused = fuse_for_deploy(model)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ref, got = model(x), fused(x)
    assert ref.shape == (3, 4)
    assert torch.allclose(ref, got, atol=1e-4, rtol=1e-4), (ref - got).abs().max()
    ops = count_ops(fused)
    assert ops["layer_scale"] == 0
    if variant != "stock":
        assert ops["batchnorm"] == 0 and count_ops(model)["batchnorm"] > 0
    else:
        assert ops["layernorm"] > 0  # LayerNorm has no fixed affine form: it stays


def test_distill_cli_writes_a_student_that_records_its_teacher(teacher, tmp_path):
    out = tmp_path / "student"
    r = runner.invoke(app, ["distill", "--teacher", str(teacher), "--variant", "stock", "--epochs", "1",
                            "--out", str(out), "--feature-kd", "0.5", "--no-eval"])
    assert r.exit_code == 0, r.output
    ck = load_checkpoint(out / "best.pt")
    tck = load_checkpoint(teacher)
    assert ck.train_config["teacher"] == str(teacher)
    assert ck.train_config["teacher_sha256"] == tck.sha256
    assert ck.train_config["variant"] == "stock" and "norm_layer" not in ck.model.kwargs  # stock block
    assert ck.classes == tck.classes and ck.preprocess == tck.preprocess  # the teacher's data and preprocessing
    assert load_checkpoint(out / "last.pt").extra["hooks"]["projector"]  # the feature projector resumes too
    # resume of a finished run trains nothing more and keeps the checkpoint
    r = runner.invoke(app, ["distill", "--teacher", str(teacher), "--variant", "stock", "--epochs", "1",
                            "--out", str(out), "--feature-kd", "0.5", "--no-eval", "--resume"])
    assert r.exit_code == 0 and "nothing to train" in r.output


def test_distill_refuses_a_teacher_with_other_classes(teacher, tmp_path, imagefolder):
    data = imagefolder(classes=("ant", "bee"), splits={"train": 2, "val": 1})
    out = tmp_path / "student"
    r = runner.invoke(app, ["distill", "--teacher", str(teacher), "--data", str(data), "--epochs", "1",
                            "--out", str(out)])
    assert r.exit_code == 2
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "classes that differ" in errors[0]
    assert not (out / "last.pt").exists()


def test_distill_refuses_a_student_as_its_own_teacher(teacher):
    before = teacher.read_bytes()
    r = runner.invoke(app, ["distill", "--teacher", str(teacher), "--epochs", "1", "--out", str(teacher.parent),
                            "--resume"])
    assert r.exit_code == 2 and "own teacher" in r.output
    assert teacher.read_bytes() == before


def test_distill_refuses_a_quantized_teacher_and_mismatched_normalisation(teacher, synth, tmp_path):
    cfg = dict(data=f"synthetic={synth}", model="convnext_atto", model_kwargs=TINY, input_size=32, crop_pct=1.0,
               epochs=1, batch_size=8, workers=0, out=str(tmp_path / "s"),
               teacher=str(teacher))  # default ImageNet mean/std
    with pytest.raises(Exception, match="same normalised images"):
        train(TrainConfig.from_dict(cfg), progress=False)
    assert not (tmp_path / "s").exists()
