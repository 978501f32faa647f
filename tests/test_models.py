"""Model factory, pretrained loading from a local file, attention head, checkpoint round trip."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from edge_fgic.data.transforms import PreprocessConfig
from edge_fgic.errors import UserError
from edge_fgic.models import available_models, create_model, load_model, save_checkpoint

TINY = dict(depths=(1, 1, 1, 1), dims=(8, 16, 32, 64))


@pytest.mark.parametrize("name", ["convnext_atto", "convnext_tiny", "convnext_large", "convnextv2_atto",
                                  "convnextv2_nano"])
@pytest.mark.parametrize("attention", [False, True])
def test_convnext_family_builds_and_runs(name, attention):
    m = create_model(name, 5, attention_head=attention, **TINY).eval()
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_int8_friendly_variant_has_no_layernorm_or_gelu():
    m = create_model("convnext_atto", 4, conv_mlp=True, norm_layer="batchnorm2d", act_layer="relu", **TINY)
    kinds = {type(mod).__name__ for mod in m.modules()}
    assert "BatchNorm2d" in kinds and "ReLU" in kinds
    assert not {"LayerNorm", "LayerNorm2d", "GELU"} & kinds, kinds
    assert m.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 4)


def test_available_models_lists_both_generations():
    names = available_models()
    assert "convnext_atto" in names and "convnextv2_atto" in names and not any(n.startswith("resnet") for n in names)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_pretrained_from_local_file(tmp_path, suffix):
    # an "ImageNet" checkpoint of the backbone: 1000 classes, as timm's hub files are
    src = timm.create_model("convnext_atto", num_classes=1000, **TINY)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    else:
        torch.save(src.state_dict(), path)
    m = create_model("convnext_atto", 7, pretrained=path, **TINY)
    got, ref = m.backbone.state_dict(), src.state_dict()
    assert torch.equal(got["stem.0.weight"], ref["stem.0.weight"])
    assert torch.equal(got["stages.3.blocks.0.conv_dw.weight"], ref["stages.3.blocks.0.conv_dw.weight"])
    assert got["head.fc.weight"].shape == (7, 64)  # the classifier is new: 7 classes, not 1000


def test_pretrained_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match="not found"):
        create_model("convnext_atto", 3, pretrained=tmp_path / "missing.safetensors", **TINY)
    other = timm.create_model("convnext_atto", num_classes=1000, depths=(1, 1, 1, 1), dims=(16, 32, 64, 128))
    path = tmp_path / "other.pth"
    torch.save(other.state_dict(), path)
    with pytest.raises(UserError, match="do not fit") as exc:
        create_model("convnext_atto", 3, pretrained=path, **TINY)
    assert "\n" not in str(exc.value)


def test_checkpoint_round_trip_is_exact(tmp_path):
    m = create_model("convnextv2_atto", 4, attention_head=True, **TINY).eval()
    pp = PreprocessConfig(input_size=48, crop_pct=0.9, interpolation="bilinear")
    path = save_checkpoint(tmp_path / "m.pt", m, classes=list("abcd"), preprocess=pp,
                           train_config={"lr": 0.1, "out": tmp_path})
    m2, ckpt = load_model(path)
    x = torch.randn(2, 3, 48, 48)
    assert torch.equal(m(x), m2(x))
    assert ckpt.preprocess == pp and ckpt.classes == list("abcd") and ckpt.train_config["out"] == str(tmp_path)
    assert len(ckpt.sha256) == 64


def test_cam_layer_keeps_at_least_4x4_for_small_inputs():
    m = create_model("convnext_atto", 3, **TINY).eval()
    for size, expect in ((224, 7), (128, 4), (64, 4), (32, 4)):
        layer = m.cam_target_layer(size)
        seen = []
        h = layer.register_forward_hook(lambda _m, _i, out: seen.append(out.shape[-1]))
        m(torch.randn(1, 3, size, size))
        h.remove()
        assert seen == [expect], (size, seen)
    assert m.cam_target_layer() is m.attention
