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
