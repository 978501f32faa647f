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


_HELD: dict[str, int] = {}  # lock files this process holds -> depth (a stage inside a command re-enters)
LOCK_NAME = ".edge-fgic.lock"


@contextlib.contextmanager
def out_lock(folder: str | os.PathLike, command: str) -> Iterator[Path]:
    """Only one edge-fgic command writes into ``folder`` at a time: a second one refuses in one line
    instead of interleaving its files with the first's. An OS file lock (flock), so a killed command
    never leaves a stale lock; the lock file goes with the command, and so does a folder that this
    command created and left empty (a command that failed early writes nothing)."""
    import fcntl
    import json as _json

    from .errors import UserError
    folder = Path(folder).expanduser()
    key = str(folder.resolve())
    if os.environ.get("RANK", "0") not in ("", "0"):  # torchrun: the job's rank 0 holds it for every rank
        yield folder
        return
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield folder
        finally:
            _HELD[key] -= 1
        return
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{folder}: cannot create the output folder ({exc.strerror}); choose another --out") from None
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if created:
            _rmdir_if_empty(folder)
        raise UserError(f"{folder}: cannot write there ({exc.strerror}); "
                        "check its permissions or choose another --out") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            holder = _json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (OSError, ValueError):
            holder = {}
        os.close(fd)
        who = f"pid {holder.get('pid')}: edge-fgic {holder.get('command')}" if holder else "another process"
        raise UserError(f"{folder}: another edge-fgic command ({who}) is writing here; wait for it to finish "
                        "or choose another --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, _json.dumps({"pid": os.getpid(), "command": command}).encode(), 0)
    _HELD[key] = 1
    try:
        yield folder
    finally:
        _HELD.pop(key, None)
        try:
            path.unlink()
        except OSError:
            pass
        os.close(fd)  # releases the flock
        if created:
            _rmdir_if_empty(folder)


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
