"""INT8 models with NNCF: the quantized model itself, below the quantize stage.

What building, rebuilding or inspecting an NNCF-quantized :class:`FGClassifier` needs, and nothing of
the training loop: a quantized checkpoint (:mod:`.checkpoint`) is rebuilt from here without loading
``edge_fgic.training`` or ``edge_fgic.quant`` (the stage that calibrates and fine-tunes lives there).
May import: errors, fileio, quiet, progress, native, and this package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError, exc_line
from ..quiet import quiet_nncf
from .factory import FGClassifier
from .fuse import fuse_for_deploy


def nncf():
    try:
        import nncf  # noqa: F401
    except ImportError as exc:  # pragma: no cover - nncf is a core dependency
        raise UserError(f"NNCF is not installed ({exc}); reinstall edge-fgic (pip install -e .)") from None
    quiet_nncf()
    # NNCF's C++ quantizer kernels: built and tried in a child process first, else its reference kernels
    from .nncf_ext import ensure_cpu_kernels
    ensure_cpu_kernels()
    return nncf


def quantizers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """NNCF's quantizer modules in ``model`` (name, module)."""
    from nncf.torch.quantization.layers import BaseQuantizer
    return [(n, m) for n, m in model.named_modules() if isinstance(m, BaseQuantizer)]


def is_weight_quantizer(name: str, module: nn.Module) -> bool:
    # weights are quantized per output channel: a scale per channel; activations per tensor
    return getattr(module, "scale", torch.ones(1)).numel() > 1


def make_signed(model: nn.Module) -> int:
    """Force every quantizer signed (int8, zero-point 0); returns how many changed."""
    changed = 0
    for _, q in quantizers(model):
        if not q.signed:
            q.signed = True
            changed += 1
    return changed


def quantize_model(fp32: FGClassifier, calib: list[torch.Tensor], signed_activations: bool, source: str,
                   overflow_fix: str = "enable") -> FGClassifier:
    """Fold, then ``nncf.quantize`` on the calibration batches (NCHW tensors); CPU."""
    nncf_ = nncf()
    model = fuse_for_deploy(fp32.cpu().float()).eval()
    model = model.to(memory_format=torch.contiguous_format)
    try:
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
        fix = {"first_layer": OverflowFix.FIRST_LAYER, "enable": OverflowFix.ENABLE,
               "disable": OverflowFix.DISABLE}[overflow_fix]
        q = nncf_.quantize(model, nncf_.Dataset(calib), preset=nncf_.QuantizationPreset.PERFORMANCE,
                          subset_size=len(calib), fast_bias_correction=True,
                          advanced_parameters=AdvancedQuantizationParameters(overflow_fix=fix))
    except Exception as exc:  # NNCF's tracer fails on unsupported Python control flow / ops
        first = exc_line(exc)
        if "Extension" in type(exc).__name__:  # the C++ extension, not the model
            raise UserError(f"{source}: NNCF's C++ extension could not be built or loaded "
                            f"({type(exc).__name__}: {first}); it needs g++ and ninja; "
                            "set NNCF_EXTENSION_LOAD_TIMEOUT=0 on a very slow machine") from None
        raise UserError(f"{source}: NNCF could not trace/quantize this model ({type(exc).__name__}: {first}); "
                        "use a stock timm ConvNeXt or a --variant student without custom modules") from None
    if signed_activations:
        make_signed(q)
    return q


def rebuild_quantized(model: FGClassifier, record: dict[str, Any], path: Path | None = None) -> FGClassifier:
    """The skeleton a quantized checkpoint's state_dict loads into: fold, then NNCF's saved config."""
    nncf()
    from nncf.torch import load_from_config
    model = fuse_for_deploy(model).eval()
    try:
        return load_from_config(model, record["nncf_config"])
    except Exception as exc:
        first = exc_line(exc, 160)
        raise UserError(f"{path or 'INT8 checkpoint'}: cannot rebuild the INT8 model from its NNCF config ({first}); "
                        "requantize with `edge-fgic quantize`") from None
