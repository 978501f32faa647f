"""A torch-free install of edge-fgic, as a device gets it: the wheel built from this checkout, installed into a
fresh venv (the base interpreter, not .venv's site-packages) with only the runtime extras asked for.

Use in a test: take the session fixture ``slim_venv`` (tests/conftest.py: a venv with ``[litert,camera]``, the
path of the venv) and run ``slim_venv / "bin" / "edge-fgic"`` with ``cwd`` outside the repository; or call
``build_slim_venv(some_dir, extras=("litert",))`` yourself for another set of extras (e.g. the remote helper's
sshd user) and ``slim_run(venv, "edge-fgic", "--version")``. Both assert that ``import torch`` fails there.

Speed: the wheel is built once per session (``wheel()``, ~2 s, from a copy of the package sources so parallel
builds never share ``build/``); pip installs from its own cache (and this machine's local index), so a venv costs
the unpacking of onnxruntime (+ ai-edge-litert, + OpenCV): measured in benchmarks/install/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
# what the wheel is built from (pyproject names README.md as the long description; edge_fgic/profiles links export/)
SOURCES = ("pyproject.toml", "README.md", "edge_fgic", "export")
BASE_PYTHON = getattr(sys, "_base_executable", "") or shutil.which("python3") or sys.executable

_lock = threading.Lock()
_wheels: dict[str, Path] = {}


def build_wheel(out_dir: Path) -> Path:
    """Build edge-fgic's wheel into ``out_dir`` from a copy of the sources; returns the .whl path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edge-fgic-src-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in SOURCES:
            p = REPO / name
            if p.is_dir():
                shutil.copytree(p, src / name, symlinks=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ruff_cache", "*.egg-info"))
            else:
                shutil.copy2(p, src / name)
        if _has_module("build"):
            cmd = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out_dir), str(src)]
        else:  # pip alone (dev extra not installed): same backend, same wheel
            cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out_dir),
                   str(src)]
        _check(cmd, "building the wheel", cwd=src)
    wheels = sorted(out_dir.glob("edge_fgic-*.whl"), key=lambda p: p.stat().st_mtime)
    assert wheels, f"no wheel in {out_dir}"
    return wheels[-1]


def wheel(cache_dir: Path | None = None) -> Path:
    """The session's wheel (built once per process)."""
    with _lock:
        key = "wheel"
        if key not in _wheels or not _wheels[key].exists():
            _wheels[key] = build_wheel(Path(cache_dir or tempfile.mkdtemp(prefix="edge-fgic-wheel-")))
        return _wheels[key]


def build_slim_venv(venv_dir: Path, extras: Sequence[str] = ("litert",), whl: Path | None = None) -> Path:
    """A fresh venv at ``venv_dir`` with ``edge-fgic[<extras>]`` from the wheel (built if ``whl`` is None), with the
    project's constraints; returns ``venv_dir``. Asserts that torch is not importable there."""
    venv_dir = Path(venv_dir)
    whl = Path(whl) if whl else wheel()
    if not (venv_dir / "bin" / "python").exists():
        # no ensurepip: the venv is filled by this interpreter's pip through --python (seconds faster)
        _check([BASE_PYTHON, "-m", "venv", "--without-pip", str(venv_dir)], "creating the venv")
    spec = f"{whl}[{','.join(extras)}]" if extras else str(whl)
    pip = [sys.executable, "-m", "pip", "--python", str(venv_dir / "bin" / "python"), "install", "-q",
           "--disable-pip-version-check", "-c", str(CONSTRAINTS)]
    _check([*pip, spec], f"installing {spec}")
    # a venv reused with a rebuilt wheel of the same version: pip kept the old edge-fgic, replace it
    _check([*pip, "--force-reinstall", "--no-deps", str(whl)], "reinstalling the wheel")
    probe = slim_run(venv_dir, "python", "-c", "import torch", check=False)
    assert probe.returncode != 0, f"{venv_dir}: torch is importable in the slim venv"
    return venv_dir


def slim_run(venv_dir: Path, exe: str, *args: str, check: bool = True, cwd: Path | str | None = None,
             timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``venv_dir/bin/<exe> args...`` (text output captured), by default in a temp folder outside the repo."""
    run_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run_env.update(env or {})
    with tempfile.TemporaryDirectory(prefix="edge-fgic-slim-cwd-") as tmp:
        res = subprocess.run([str(Path(venv_dir) / "bin" / exe), *args], capture_output=True, text=True,
                             cwd=str(cwd or tmp), env=run_env, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"{exe} {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def _has_module(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


def _check(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    if res.returncode != 0:
        raise AssertionError(f"{what} failed ({' '.join(cmd)}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
