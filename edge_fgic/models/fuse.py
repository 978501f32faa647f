"""Fold a trained ConvNeXt into its deploy form: the same function, fewer ops.

Quantized runtimes only run a convolution in integer when the graph around it is
``DequantizeLinear -> Conv [-> Relu] -> QuantizeLinear``. A BatchNorm after a conv, a
BatchNorm before a conv, or ConvNeXt's layer-scale multiply after the last 1x1 conv each
leave a float op between the conv and the next quantizer, so onnxruntime keeps that conv
in float (measured: only 5 of 19 convs of the BN student ran in integer before folding).

:func:`fuse_for_deploy` removes them exactly (in eval mode):

* stem ``Conv -> BN``                       -> one Conv
* block ``conv_dw -> BN``                   -> one depthwise Conv
* block ``fc2 -> * gamma`` (layer scale)    -> fc2 with scaled weights
* downsample ``BN -> Conv`` (no padding)    -> one Conv (the BN's affine moves into the conv)
* head ``pool -> BN -> Linear``             -> pool -> Linear

LayerNorm (stock ConvNeXt) has no fixed affine form and stays. timm's EfficientNet family
(the pretrained ``tf_efficientnet_lite0`` teacher) folds too: every ``conv -> BatchNormAct``
pair (stem, each block's pointwise/depthwise/projection convs, head) becomes one conv followed
by the BatchNormAct's own activation (ReLU6 for Lite). The returned model is a copy; the
function is checked against the original in ``tests/test_quantize.py`` and ``tests/test_weights.py``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """BN(x) = a * x + b per channel (eval mode)."""
    a = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1.0 / torch.sqrt(bn.running_var + bn.eps)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    return a, beta - bn.running_mean * a


@torch.no_grad()
def fold_bn_after(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """BN(conv(x)) as one conv."""
    a, b = _bn_affine(bn)
    new = copy.deepcopy(conv)
    new.weight.copy_(conv.weight * a.reshape(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(a)
    new.bias = nn.Parameter(bias * a + b)
    return new


@torch.no_grad()
def fold_bn_before(bn: nn.BatchNorm2d, layer: nn.Module) -> nn.Module:
    """layer(BN(x)) as one layer, for a Linear or an unpadded, ungrouped Conv2d."""
    a, b = _bn_affine(bn)
    new = copy.deepcopy(layer)
    w = layer.weight
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1 or any(p != 0 for p in _pads(layer)):
            raise ValueError("BN before a padded or grouped conv cannot be folded exactly")
        new.weight.copy_(w * a.reshape(1, -1, 1, 1))
        shift = (w * b.reshape(1, -1, 1, 1)).sum(dim=(1, 2, 3))
    else:
        new.weight.copy_(w * a.reshape(1, -1))
        shift = w @ b
    bias = layer.bias if layer.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    new.bias = nn.Parameter(bias + shift)
    return new


def _pads(conv: nn.Conv2d) -> tuple[int, ...]:
    p = conv.padding
    if isinstance(p, str):
        return (0,) if p == "valid" else (1,)
    return tuple(p)


@torch.no_grad()
def fold_layer_scale(fc2: nn.Module, gamma: torch.Tensor) -> nn.Module:
    """gamma * fc2(x) as one layer (Conv2d 1x1 or Linear)."""
    new = copy.deepcopy(fc2)
    shape = (-1, 1, 1, 1) if isinstance(fc2, nn.Conv2d) else (-1, 1)
    new.weight.copy_(fc2.weight * gamma.reshape(shape))
    if fc2.bias is not None:
        new.bias.copy_(fc2.bias * gamma)
    return new


def _is_bn(m: nn.Module) -> bool:
    return isinstance(m, nn.BatchNorm2d)


def fuse_for_deploy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` (FGClassifier or a timm ConvNeXt) with BN and layer
    scale folded where that is exact. Models with nothing to fold come back unchanged."""
    model = copy.deepcopy(model).eval()
    net = getattr(model, "backbone", model)
    if hasattr(net, "conv_stem") and hasattr(net, "blocks"):
        _fuse_efficientnet(net)
        return model
    if not hasattr(net, "stages"):
        return model
    stem = net.stem
    if isinstance(stem, nn.Sequential) and len(stem) == 2 and isinstance(stem[0], nn.Conv2d) and _is_bn(stem[1]):
        net.stem = nn.Sequential(fold_bn_after(stem[0], stem[1]))
    for stage in net.stages:
        ds = stage.downsample
        if isinstance(ds, nn.Sequential) and len(ds) == 2 and _is_bn(ds[0]) and isinstance(ds[1], nn.Conv2d) \
                and ds[1].groups == 1 and all(p == 0 for p in _pads(ds[1])):
            stage.downsample = nn.Sequential(fold_bn_before(ds[0], ds[1]))
        for block in stage.blocks:
            if getattr(block, "use_conv_mlp", False) and _is_bn(block.norm):
                block.conv_dw = fold_bn_after(block.conv_dw, block.norm)
                block.norm = nn.Identity()
            gamma = getattr(block, "gamma", None)
            if gamma is not None and hasattr(block, "mlp") and hasattr(block.mlp, "fc2"):
                block.mlp.fc2 = fold_layer_scale(block.mlp.fc2, gamma.detach())
                block.gamma = None
    head = getattr(net, "head", None)
    if head is not None and _is_bn(getattr(head, "norm", None)) and isinstance(getattr(head, "fc", None), nn.Linear) \
            and isinstance(getattr(head, "pre_logits", nn.Identity()), nn.Identity):
        head.fc = fold_bn_before(head.norm, head.fc)
        head.norm = nn.Identity()
    return model


# (conv, norm) attribute pairs of timm's EfficientNet/MobileNet blocks, in forward order
_EFF_PAIRS = (("conv_stem", "bn1"), ("conv_dw", "bn1"), ("conv_pw", "bn1"), ("conv_pw", "bn2"), ("conv_dw", "bn2"),
              ("conv_pwl", "bn3"), ("conv_pwl", "bn2"), ("conv_head", "bn2"))


def _norm_act_tail(bn: nn.Module) -> nn.Module:
    """What is left of a (timm) BatchNormAct2d once its affine moved into the conv: drop + activation."""
    tail = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None))
            if m is not None and not isinstance(m, nn.Identity)]
    return tail[0] if len(tail) == 1 else (nn.Sequential(*tail) if tail else nn.Identity())


def _fold_pairs(module: nn.Module) -> None:
    kids = dict(module.named_children())
    order = list(kids)
    for conv_name, bn_name in _EFF_PAIRS:
        conv, bn = kids.get(conv_name), kids.get(bn_name)
        # the pair must be adjacent in forward order (registration order in timm's blocks)
        if isinstance(conv, nn.Conv2d) and _is_bn(bn) and order.index(bn_name) == order.index(conv_name) + 1:
            setattr(module, conv_name, fold_bn_after(conv, bn))
            setattr(module, bn_name, _norm_act_tail(bn))
            kids = dict(module.named_children())


def _fuse_efficientnet(net: nn.Module) -> None:
    _fold_pairs(net)  # conv_stem/bn1 and conv_head/bn2
    for stage in net.blocks:
        for block in (stage if isinstance(stage, nn.Sequential) else [stage]):
            _fold_pairs(block)


def count_ops(model: nn.Module) -> dict[str, int]:
    """How many BN / LayerNorm / layer-scale ops a model still has (for reports and tests)."""
    counts = {"batchnorm": 0, "layernorm": 0, "layer_scale": 0}
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            counts["batchnorm"] += 1
        elif isinstance(m, nn.LayerNorm) or type(m).__name__.startswith("LayerNorm"):
            counts["layernorm"] += 1
        if getattr(m, "gamma", None) is not None and hasattr(m, "conv_dw"):
            counts["layer_scale"] += 1
    return counts
