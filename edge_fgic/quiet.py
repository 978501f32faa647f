"""Holding back what native code prints (absl/MLIR/XNNPACK INFO lines on fd 2).

A low-level helper with no project imports, so runtimes and converters alike can use it."""

from __future__ import annotations

import contextlib
import os
import tempfile


@contextlib.contextmanager
def quiet_native_logs():
    """Redirect fd 2 while native code runs; a failing step still fails through its Python exception.

    Where ``EDGE_FGIC_NATIVE_LOG`` names a file (an isolated converter process, see
    :mod:`edge_fgic.export.isolate`), what native code prints is appended there instead of discarded,
    so the parent can quote the line a converter printed before it called ``exit()`` or aborted."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # litert-torch's per-pass progress lines
    saved = os.dup(2)
    keep = os.environ.get("EDGE_FGIC_NATIVE_LOG")
    with (open(keep, "ab") if keep else tempfile.TemporaryFile()) as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_nncf() -> None:
    """Keep NNCF's progress bars; drop its INFO lines ("Compiling and loading torch extension ...")
    and torch's "No CUDA runtime is found" warning on CPU-only machines, which users cannot act on.
    Also the warnings the converters that trace NNCF models print (TorchScript, OpenVINO's torch
    frontend, ai-edge-quantizer, JAX's fork notice): none is something a user can act on."""
    import logging
    import warnings

    import torch
    # NNCF compiles its C++ extension on first use and gives up after 60 s; on a busy 2-core machine the
    # build alone took longer (seen in CI). A slow first build is not an error: allow 10 minutes.
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "600")
    logging.getLogger("nncf").setLevel(logging.WARNING)
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)  # torchao's Enum registration notice
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    # OpenVINO's torch frontend
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.trace.*")
    # ai-edge-quantizer's calibration
    warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
    warnings.filterwarnings("ignore", message=".*os.fork\\(\\) was called.*")  # after litert-torch imported JAX
