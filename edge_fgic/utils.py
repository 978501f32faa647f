"""Small helpers shared by the CLI, the trainer and the evaluators."""

from __future__ import annotations

import re

from .errors import UserError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; validate explicit choices.

    Raises a one-line :class:`UserError` for an unknown name or an unavailable device, so
    ``--device cuda`` on a CPU-only machine says what to do instead of failing deep in torch.
    """
    import torch  # local: keeps `edge-fgic --help` fast

    name = (device or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    m = re.fullmatch(r"cuda(?::(\d+))?", name)
    if m:
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: CUDA is not available on this machine; use --device cpu (or auto)")
        if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
            raise UserError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible "
                f"(cuda:0..cuda:{torch.cuda.device_count() - 1})"
            )
        return name
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UserError(f"--device {device}: Apple MPS is not available on this machine; "
                            "use --device cpu (or auto)")
        return "mps"
    raise UserError(f"--device {device}: unknown device; use {DEVICE_CHOICES}")
