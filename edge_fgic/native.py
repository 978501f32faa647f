"""Small helpers for native code that runs in a child process (imports only :mod:`edge_fgic.fileio`).

* :func:`telling_line` picks the line worth quoting from what a dead child printed on stderr;
* :func:`stage` tells the parent which native step a child is in (so a death names the step);
* :func:`crash_point` is a hook **for tests only**: ``EDGE_FGIC_TEST_CRASH=<point>[:segv|abort|exit]``
  (comma-separated for several points) makes the process die in native code at that point — a real
  ``SIGSEGV`` inside a C call, ``abort()`` or ``_exit(3)`` — after printing a line as native code would.
  Points: ``openvino-convert``, ``openvino-compile``, ``nncf-extension``, ``tensorrt-build``. Nothing reads it
  otherwise.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

TEST_CRASH_ENV = "EDGE_FGIC_TEST_CRASH"
STAGE_ENV = "EDGE_FGIC_NATIVE_STAGE"
WORK_KIND = "edge-fgic-native"          # <tmp>/.edge-fgic-native-<pid>-XXXX: a child's log, result, inputs

# lines worth quoting from a dead child's stderr (last match wins, after the noise below is dropped)
TELLING = re.compile(r"error|fatal|abort|no space|failed|killed|out of memory|cannot|terminate|bad_alloc|died|"
                     r"not found|no such file|segmentation", re.IGNORECASE)
# lines that match TELLING but say nothing: ninja's summary and command echo, a build's progress lines
_NOISE = re.compile(r"^(ninja: build stopped|FAILED: |\[\d+/\d+\] |subprocess\.CalledProcessError|"
                    r"The above exception|Traceback \(most recent call last\)|During handling of the above)")
_ERROR = re.compile(r"\berror\s*:", re.IGNORECASE)   # "error:", "fatal error:", "LLVM ERROR:"
_FAULT = "Fatal Python error:"          # faulthandler's block after a fatal signal (in the child)


def telling_line(text: str, limit: int = 240, *, first: bool = False) -> str:
    """The most telling line of ``text``, before faulthandler's report: a line saying ``error:`` (a
    compiler's, ``LLVM ERROR:``), else one naming a failure that is not build noise — the last such
    line, or the first with ``first`` (a compiler's first error is the cause, the rest follow from it);
    else faulthandler's ``Fatal Python error: <signal>`` with the innermost frame; else the last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "it printed nothing"
    cut = next((i for i, ln in enumerate(lines) if ln.startswith(_FAULT)), len(lines))
    said = [ln for ln in lines[:cut] if not _NOISE.match(ln)]
    for pattern in (_ERROR, TELLING):
        hits = [ln for ln in said if pattern.search(ln)]
        if hits:
            return (hits[0] if first else hits[-1])[:limit]
    if cut < len(lines):
        frame = next((ln for ln in lines[cut + 1:] if ln.startswith("File ")), "")
        m = re.match(r'File "(.+)", line (\d+) in (\S+)', frame)
        where = f" in {m.group(3)} ({Path(m.group(1)).name}:{m.group(2)})" if m else ""
        return (lines[cut] + where)[:limit]
    return lines[-1][:limit]


def log_line(log: str | os.PathLike, limit: int = 240) -> str:
    """:func:`telling_line` of a log file ('it printed nothing' when it is missing or empty)."""
    try:
        return telling_line(Path(log).read_text(errors="replace"), limit)
    except OSError:
        return "it printed nothing"


@contextlib.contextmanager
def native_workdir() -> Iterator[Path]:
    """A private folder in the system temp folder for a child's log, result and inputs, removed on the way
    out; those a killed command left behind (its pid is gone) are removed when the next one starts."""
    import shutil
    import tempfile
    import time

    from .fileio import private_workdir
    tmp = Path(tempfile.gettempdir())
    # an older edge-fgic named them edge-fgic-calib-XXXX (no pid): those a day old are no live export's
    for old in tmp.glob("edge-fgic-calib-*"):
        try:
            if old.is_dir() and time.time() - old.stat().st_mtime > 86400:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    with private_workdir(tmp, WORK_KIND) as d:
        yield d


def stage(text: str) -> None:
    """In a child whose parent watches (``EDGE_FGIC_NATIVE_STAGE`` names a file): the step now running."""
    path = os.environ.get(STAGE_ENV)
    if path:
        try:
            Path(path).write_text(text)
        except OSError:
            pass


def in_watched_child() -> bool:
    """True in a child process started by :mod:`edge_fgic.export.isolate` (it watches for a death)."""
    return bool(os.environ.get(STAGE_ENV))


def read_stage(path: str | os.PathLike, default: str) -> str:
    try:
        return Path(path).read_text().strip() or default
    except OSError:
        return default


def signal_text(code: int | None) -> str:
    """A child's return code as words: ``killed by SIGSEGV, signal 11`` / ``exit code 3``."""
    if code is None:
        return "no exit status"
    if code < 0:
        import signal
        try:
            return f"killed by {signal.Signals(-code).name}, signal {-code}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def crash_point(point: str) -> None:
    """Test hook: die here in native code if ``EDGE_FGIC_TEST_CRASH`` names ``point`` (see the module doc)."""
    wanted = os.environ.get(TEST_CRASH_ENV)
    if not wanted:
        return
    for item in wanted.split(","):
        name, _, how = item.strip().partition(":")
        if name != point:
            continue
        how = how or "segv"
        os.write(2, f"{point}: fatal error injected by {TEST_CRASH_ENV}={item.strip()} (test hook)\n".encode())
        if how == "exit":
            os._exit(3)
        if how == "abort":
            os.abort()
        import ctypes
        ctypes.string_at(0)  # a real SIGSEGV inside a C function (a NULL read)
