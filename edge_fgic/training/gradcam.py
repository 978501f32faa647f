"""Grad-CAM (Selvaraju et al. 2017) on the final feature map, and a grid plot of it.

:func:`grad_cam` hooks ``model.cam_target_layer()`` (the module whose output is the last
NCHW feature map), takes the gradient of the chosen class score with respect to that map
(``torch.autograd.grad``, so no parameter ``.grad`` is touched), weights each channel by
the spatial mean of its gradient, sums, applies ReLU, upsamples bilinearly to the input
size and min-max normalises every map to [0, 1].

It works whether or not the parameters require grad, also when called inside
``torch.inference_mode()``; the hook is always removed and every module's train/eval flag
is restored, even when something raises.

Plots use matplotlib's object API (``Figure`` + Agg canvas, never pyplot), so they are
headless, thread-safe and leave no global figure state behind.
"""

from __future__ import annotations

import contextlib
import math
import textwrap
from pathlib import Path
from typing import Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # headless; the Figure API below never needs an interactive backend

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..fileio import atomic_path
from ..models.checkpoint import unwrap

__all__ = ["eval_mode", "grad_cam", "save_gradcam_grid"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode; restore every submodule's own ``training`` flag afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in modes:
            m.training = flag


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def grad_cam(
    model: nn.Module,
    images: torch.Tensor,
    target_classes: torch.Tensor | Sequence[int] | None = None,
    *,
    batch_size: int = 16,
) -> torch.Tensor:
    """Grad-CAM maps ``[N, H, W]`` (float32, CPU, values in [0, 1]) for normalised ``images [N, 3, H, W]``.

    ``target_classes`` (length N) picks the class explained per image; ``None`` explains the
    predicted (arg-max) class. A map that is zero everywhere (no positive evidence) stays zero.
    Images are moved to the model's device; the model runs in eval mode.
    """
    if images.dim() != 4:
        raise ValueError(f"grad_cam expects images [N, 3, H, W], got shape {tuple(images.shape)}")
    n = images.shape[0]
    if target_classes is not None:
        target_classes = torch.as_tensor(target_classes, dtype=torch.long).reshape(-1).cpu()
        if target_classes.numel() != n:
            raise ValueError(f"target_classes has {target_classes.numel()} entries for {n} images")
    net = unwrap(model)
    layer = net.cam_target_layer(min(images.shape[-2:]))
    device = _model_device(net)
    captured: list[torch.Tensor] = []

    def _keep_activation(_module: nn.Module, _inputs, output) -> None:
        captured.append(output)

    maps: list[torch.Tensor] = []
    handle = layer.register_forward_hook(_keep_activation)
    try:
        with eval_mode(model), torch.inference_mode(False), torch.enable_grad():
            for start in range(0, n, max(1, int(batch_size))):
                captured.clear()
                # clone outside inference mode: inference tensors cannot enter an autograd graph
                x = images[start : start + batch_size].detach().clone().to(device=device, dtype=torch.float32)
                x.requires_grad_(True)  # a graph exists even when no parameter requires grad
                logits = model(x)
                if isinstance(logits, (tuple, list)):
                    logits = logits[0]
                if not captured:
                    raise RuntimeError("cam_target_layer() was not called in forward; cannot compute Grad-CAM")
                act = captured[-1]
                if act.dim() != 4:
                    raise RuntimeError(f"cam_target_layer() output must be NCHW, got shape {tuple(act.shape)}")
                if target_classes is None:
                    cls = logits.detach().argmax(dim=1)
                else:
                    # may be an inference tensor
                    cls = target_classes[start : start + batch_size].clone().to(logits.device)
                    if int(cls.min()) < 0 or int(cls.max()) >= logits.shape[1]:
                        raise ValueError(f"target_classes must lie in [0, {logits.shape[1] - 1}]")
                score = logits.gather(1, cls[:, None]).sum()
                (grad,) = torch.autograd.grad(score, act)
                weights = grad.mean(dim=(2, 3), keepdim=True)
                cam = F.relu((weights * act).sum(dim=1, keepdim=True))
                cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
                lo = cam.amin(dim=(1, 2), keepdim=True)
                hi = cam.amax(dim=(1, 2), keepdim=True)
                cam = (cam - lo) / (hi - lo).clamp_min(1e-12)
                maps.append(cam.detach().float().cpu())
    finally:
        handle.remove()
        captured.clear()
    if not maps:
        return torch.zeros((0, *images.shape[-2:]), dtype=torch.float32)
    return torch.cat(maps).clamp_(0.0, 1.0)


def denormalize(images_norm: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``[N, 3, H, W]`` normalised tensor -> ``[N, H, W, 3]`` float array in [0, 1]."""
    x = images_norm.detach().float().cpu()
    m = torch.tensor(list(mean), dtype=torch.float32)[:, None, None]
    s = torch.tensor(list(std), dtype=torch.float32)[:, None, None]
    return (x * s + m).clamp(0.0, 1.0).permute(0, 2, 3, 1).numpy()


def save_gradcam_grid(
    images_norm: torch.Tensor,
    cams: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    titles: Sequence[str],
    path: str | Path,
    *,
    highlight: Sequence[bool] | None = None,
    alpha: float = 0.45,
    ncols: int = 4,
    suptitle: str | None = "Grad-CAM of the predicted class (title: true / pred)",
) -> Path:
    """Overlay each map (jet, ``alpha``) on its de-normalised image; write a PNG grid atomically.

    ``titles`` are usually ``"true / pred (p=0.93)"``; ``highlight[i]`` draws title i in red
    (used for misclassified images). Long titles are wrapped.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    n = int(images_norm.shape[0])
    if n == 0:
        raise ValueError("save_gradcam_grid needs at least one image")
    if cams.shape[0] != n or len(titles) != n:
        raise ValueError(f"got {n} images, {cams.shape[0]} maps and {len(titles)} titles")
    imgs = denormalize(images_norm, mean, std)
    cams = cams.detach().float().cpu()
    if cams.dim() == 4:
        cams = cams[:, 0]
    if tuple(cams.shape[-2:]) != imgs.shape[1:3]:
        cams = F.interpolate(cams[:, None], size=imgs.shape[1:3], mode="bilinear", align_corners=False)[:, 0]
    heat = colormaps["jet"](cams.clamp(0, 1).numpy())[..., :3]
    blend = np.clip((1.0 - alpha) * imgs + alpha * heat, 0.0, 1.0)

    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(2.9 * ncols, 3.1 * nrows + (0.4 if suptitle else 0.0)), dpi=110, layout="constrained")
    for k in range(n):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        ax.imshow(blend[k], interpolation="bilinear")
        red = bool(highlight[k]) if highlight is not None else False
        wrapped = "\n".join(textwrap.fill(line, width=34, break_long_words=True)
                            for line in str(titles[k]).splitlines())
        ax.set_title(wrapped, fontsize=8, color="#c62828" if red else "black", fontweight="bold" if red else "normal")
        ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
