"""One exception type for every mistake a user can fix.

The CLI catches :class:`UserError` and prints its message as one line (no traceback),
so each message must name the file or option at fault and say how to fix it.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""

    exit_code = 2


class BadImageError(UserError):
    """An image file that cannot be decoded (corrupt, truncated, not an image)."""


class CheckpointError(UserError):
    """A file that is not an edge-fgic checkpoint, or one for another model."""


class NotApplicable(UserError):
    """This target cannot be built from this input (e.g. TensorRT INT8 from unsigned activations);
    ``export --target all`` reports it as skipped, a single ``--target`` as an error."""


def debug_enabled() -> bool:
    """``--debug`` / ``EDGE_FGIC_DEBUG=1``: show tracebacks of unexpected errors instead of one line."""
    import os
    return os.environ.get("EDGE_FGIC_DEBUG", "") not in ("", "0")


def exc_line(exc: BaseException | str, limit: int = 200, *, last: bool = False, default: str = "") -> str:
    """One line of an exception's text for a one-line message: the first (or, for tracebacks and
    native logs whose cause comes last, the last) non-empty line, at most ``limit`` characters;
    the exception's type name (or ``default``) when it has no text."""
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return default or (type(exc).__name__ if isinstance(exc, BaseException) else "")
    return (lines[-1] if last else lines[0]).strip()[:limit]
