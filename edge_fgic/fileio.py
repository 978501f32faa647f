"""Atomic writes: a crash never leaves a half-written file that looks valid.

Everything the toolkit persists (checkpoints, metrics, reports, plots) goes through
these helpers: write to a temporary file in the same folder, fsync, then rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale(parent: str | os.PathLike, kind: str) -> list[Path]:
    """Remove ``.{kind}-{pid}-*`` work folders in ``parent`` whose process is gone (a SIGKILL, an
    ``exit()`` in native code or a power cut skips every ``finally``); returns what was removed.
    Folders without a pid in their name come from older versions and are removed too."""
    import shutil
    removed = []
    parent = Path(parent)
    if not parent.is_dir():
        return removed
    for d in parent.glob(f".{kind}-*"):
        pid = d.name[len(kind) + 2:].split("-", 1)[0]
        if d.is_dir() and not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def private_dir(parent: str | os.PathLike, kind: str) -> Path:
    """A hidden work folder ``.{kind}-{pid}-XXXX`` in ``parent`` (created), after removing the ones
    dead processes left behind. The caller removes it when done."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(parent, kind)
    return Path(tempfile.mkdtemp(prefix=f".{kind}-{os.getpid()}-", dir=parent))


@contextlib.contextmanager
def private_workdir(parent: str | os.PathLike, kind: str) -> Iterator[Path]:
    """:func:`private_dir` as a context: removed on the way out, whatever happened."""
    import shutil
    d = private_dir(parent, kind)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
