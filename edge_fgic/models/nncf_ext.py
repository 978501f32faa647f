"""NNCF's C++ quantizer kernels, built and tried in a child process before edge-fgic needs them.

NNCF compiles a torch C++ extension (ninja + ``c++``, or ``$CXX``) the first time a quantizer runs on
the CPU (``nncf/torch/quantization/extensions.py``); torch builds it in
``$TORCH_EXTENSIONS_DIR/nncf/quantized_functions_cpu/<torch>`` (default
``~/.cache/torch_extensions/py<ver>_<cpu|cuXY>/...``) and re-runs ninja in every process. What NNCF
does on its own, in the calling process:

* a failed build (no compiler, no ninja, a compiler error or crash) falls back to its reference
  kernels (``ReferenceQuantizedFunctions``: torch ops, wrapped in ``torch.compile`` — which needs the
  same C++ compiler) and logs the whole compiler output as a warning; nothing records it;
* a build that outlasts ``NNCF_EXTENSION_LOAD_TIMEOUT`` (60 s; edge-fgic sets 600 because a cold build
  takes ~35 s on an idle 2-core machine) raises, and the compiler keeps running in the background;
* the compiled module is loaded (``dlopen``) into the process, where a broken one would kill it.

Here, once per process (:func:`ensure_cpu_kernels`, called by ``models.quantized.nncf``):

1. a build this machine already proved (a stamp next to it naming the torch, NNCF, compiler and ninja
   and the build files) is left to NNCF, which loads it in-process (ninja finds nothing to do);
2. otherwise a child process, in a session of its own, builds and loads the extension and checks one
   quantizer call against NNCF's reference; after ``NNCF_EXTENSION_LOAD_TIMEOUT`` it is killed with its
   compilers. Its stderr goes to a log in a private temp folder that is removed (one a killed run left
   is removed at the next start); where torch guards builds with a lock *file* (FileBaton; torch 2.14
   holds an OS lock), a stale ``lock`` a killed build left, which makes every later build wait, goes too;
3. if the child failed, NNCF is given its reference kernels explicitly, in eager torch ops (no build,
   no ``torch.compile`` in this process), one warning line says why and how to fix it, and the
   quantize report's ``nncf_kernels`` records it. ``EDGE_FGIC_NNCF_KERNELS=reference`` asks for the
   reference kernels outright; ``=extension`` makes a failed build an error instead of a fallback.
   A child process of this one (an isolated export) inherits the decision through the environment.

The reference kernels compute the same quantization grid; their outputs differ from the extension's
by float rounding only (at most 5e-7 on randn*3 tensors, checked here), and QAT's backward runs slower.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import UserError

KERNELS_ENV = "EDGE_FGIC_NNCF_KERNELS"          # auto (default) | reference | extension
REASON_ENV = "EDGE_FGIC_NNCF_KERNELS_REASON"    # why a parent chose the reference kernels (inherited)
TIMEOUT_ENV = "NNCF_EXTENSION_LOAD_TIMEOUT"     # NNCF's own: seconds, 0 = no limit
STAMP = "edge-fgic-proven.json"
FIX = "install a C++ compiler and ninja (apt install g++ ninja-build; pip install ninja) or fix $CXX"

_STATE: dict[str, Any] | None = None


def kernels_record() -> dict[str, Any]:
    """What the quantize report records: which CPU kernels NNCF's quantizers run with, and why."""
    if _STATE is None:
        return {"cpu": "not loaded"}
    record = dict(_STATE)
    try:
        from nncf.torch.quantization.extensions import QuantizedFunctionsCPU
        loaded = getattr(QuantizedFunctionsCPU, "_loaded_namespace", None)
    except ImportError:
        loaded = None
    if record["cpu"] == "extension" and loaded is not None and "Reference" in getattr(loaded, "__name__", ""):
        record = {"cpu": "reference", "reason": "NNCF fell back by itself in this process (see its warning)"}
    return record


def ensure_cpu_kernels() -> dict[str, Any]:
    """Make sure NNCF's CPU quantizer kernels are usable before NNCF's first quantizer call (see the
    module doc); returns :func:`kernels_record`."""
    global _STATE
    if _STATE is not None:
        return dict(_STATE)
    from nncf.torch.quantization import extensions as ext
    ns = ext.QuantizedFunctionsCPU
    loaded = getattr(ns, "_loaded_namespace", None)
    if loaded is not None:  # NNCF loaded something itself already (not through here)
        kind = "reference" if "Reference" in getattr(loaded, "__name__", "") else "extension"
        _STATE = {"cpu": kind, **({"reason": "NNCF fell back by itself"} if kind == "reference" else {})}
        return dict(_STATE)
    mode = os.environ.get(KERNELS_ENV, "auto").strip().lower() or "auto"
    if mode not in ("auto", "reference", "extension"):
        raise UserError(f"{KERNELS_ENV}={mode}: choose auto, reference or extension")
    if mode == "reference":
        _use_reference(ns, os.environ.get(REASON_ENV) or f"asked for ({KERNELS_ENV}=reference)")
        return dict(_STATE)
    build_dir = Path(ext.QuantizedFunctionsCPULoader.get_build_dir())
    key = _key(build_dir)
    if _stamped(build_dir, key):
        _STATE = {"cpu": "extension", "build_dir": str(build_dir)}
        return dict(_STATE)
    ok, reason, seconds = build_in_child(build_dir)
    if ok:
        _write_stamp(build_dir, _key(build_dir))
        _STATE = {"cpu": "extension", "build_dir": str(build_dir), "build_seconds": round(seconds, 1)}
        return dict(_STATE)
    if mode == "extension":
        raise UserError(f"NNCF's C++ quantizer extension cannot be built in {build_dir} ({reason}); {FIX}, or "
                        f"unset {KERNELS_ENV}=extension to use NNCF's reference kernels")
    _use_reference(ns, reason)
    from ..progress import err_console
    err_console.print(f"warning: NNCF's C++ quantizer extension cannot be built ({reason}); using NNCF's "
                      f"reference kernels (same results, slower QAT); to build it, {FIX} "
                      f"({KERNELS_ENV}=reference skips the attempt)", style="yellow",
                      markup=False, highlight=False, soft_wrap=True)
    return dict(_STATE)


def _use_reference(ns, reason: str) -> None:
    """NNCF's reference kernels in eager torch ops, as NNCF's own fallback but without trying the build."""
    global _STATE
    if not hasattr(ns, "_loaded_namespace"):  # an NNCF without the lazy namespace this relies on
        raise UserError(f"NNCF's C++ quantizer extension cannot be built ({reason}) and this NNCF has no "
                        f"reference-kernel switch edge-fgic knows; {FIX}")
    from nncf.torch.quantization.reference import ReferenceBackendType, ReferenceQuantize
    ref = ReferenceQuantize(backend_type=ReferenceBackendType.TORCH)

    class EagerReferenceQuantizedFunctions:  # NNCF's ReferenceQuantizedFunctions minus torch.compile
        Quantize_forward = staticmethod(ref.forward)
        Quantize_backward = staticmethod(ref.backward)

    ns._loaded_namespace = EagerReferenceQuantizedFunctions
    os.environ[KERNELS_ENV] = "reference"  # an isolated export's child decides the same, without a build
    os.environ[REASON_ENV] = reason
    _STATE = {"cpu": "reference", "reason": reason}


# ---------------------------------------------------------------- the stamp of a proven build


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        return ""
    try:
        st = os.stat(path)
        return f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return path


def _key(build_dir: Path) -> str:
    """What a proven build depends on: torch, NNCF, Python, the compiler and ninja torch would run, and
    the build files as they are now (another checkout sharing the cache rewrites build.ninja)."""
    import nncf
    import torch
    from nncf.torch.quantization import extensions as ext
    parts = [torch.__version__, nncf.__version__, sys.executable, sys.version, os.environ.get("CXX", ""),
             _tool(os.environ.get("CXX", "c++")), _tool("ninja")]
    headers = Path(torch.__file__).parent / "include" / "torch" / "extension.h"  # a reinstalled torch
    for f in [*getattr(ext, "CPU_EXT_SRC_LIST", []), headers, build_dir / "build.ninja",
              build_dir / f"{ext.QuantizedFunctionsCPULoader.name()}.so"]:
        try:
            st = os.stat(f)
            parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{f}:missing")
    try:
        parts.append(hashlib.sha256((build_dir / "build.ninja").read_bytes()).hexdigest())
    except OSError:
        pass
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _stamped(build_dir: Path, key: str) -> bool:
    try:
        return key in json.loads((build_dir / STAMP).read_text()).get("keys", [])
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def _write_stamp(build_dir: Path, key: str) -> None:
    """Add ``key`` to the build's stamp; the last few stay (two environments sharing one cache, e.g. with
    and without the venv's ninja on PATH, would otherwise prove the same build in turn)."""
    from ..fileio import write_json
    try:
        keys = json.loads((build_dir / STAMP).read_text()).get("keys", [])
        keys = [k for k in keys if isinstance(k, str) and k != key][-7:]
    except (OSError, ValueError, AttributeError):
        keys = []
    try:
        write_json(build_dir / STAMP, {"keys": [*keys, key],
                                       "proven_by": "edge-fgic (built, loaded and checked in a child process)"})
    except OSError:
        pass  # a read-only cache: the child builds (a no-op) again next time


# ---------------------------------------------------------------- the child


def _timeout() -> float | None:
    raw = os.environ.get(TIMEOUT_ENV, "600")
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{TIMEOUT_ENV}={raw}: expected seconds (0 = no limit)") from None
    return value if value > 0 else None


def _baton_torch() -> bool:
    """torch's extension build guards itself with a FileBaton (a lock *file*), not an OS lock."""
    from torch.utils import cpp_extension
    return not hasattr(cpp_extension, "FileLock")


def _clear_stale_baton(build_dir: Path, timeout: float | None) -> None:
    """An older torch guards a build with a ``lock`` file whose mere existence makes every later build
    wait (NNCF's FAQ: 'importing anything from nncf.torch hangs'); one older than a build may take is
    stale. (torch 2.14 holds an OS lock instead, which the kernel drops with a killed builder.)"""
    if not _baton_torch():  # an OS lock: the kernel drops it with a killed builder
        return
    lock = build_dir / "lock"
    try:
        if time.time() - lock.stat().st_mtime > (timeout or 600):
            lock.unlink()
    except OSError:
        pass


def build_in_child(build_dir: Path) -> tuple[bool, str, float]:
    """Build, load and check NNCF's CPU extension in a child process: ``(ok, reason, seconds)``."""
    from ..native import log_line, native_workdir, signal_text
    timeout = _timeout()
    _clear_stale_baton(build_dir, timeout)
    t0 = time.perf_counter()
    with native_workdir() as work:
        log, result = work / "nncf-extension.log", work / "nncf-extension.json"
        with open(log, "wb") as err:
            # a session of its own: a timeout kills ninja and the compilers with it
            proc = subprocess.Popen([sys.executable, "-m", "edge_fgic.models.nncf_ext", str(result)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                if _baton_torch():
                    (build_dir / "lock").unlink(missing_ok=True)  # the baton our killed build held
                return False, (f"the build took longer than {timeout:g} s and was stopped; a slow machine: "
                               f"set {TIMEOUT_ENV}=0 (no limit)"), time.perf_counter() - t0
            except BaseException:
                _kill(proc)
                raise
        seconds = time.perf_counter() - t0
        try:
            out = json.loads(result.read_text())
        except (OSError, ValueError):
            return False, f"the build process died ({signal_text(proc.returncode)}): {log_line(log)}", seconds
    return bool(out.get("ok")), str(out.get("reason", "")), seconds


def _kill(proc: subprocess.Popen) -> None:
    """Stop the child and everything it started. ninja runs each compiler in a process group of its
    own, so the child's group is not enough: every process of the child's session goes (Linux /proc)."""
    import signal
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # ninja interrupts its compilers on SIGTERM
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        pass
    for pid in [proc.pid, *_session(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def _session(sid: int) -> list[int]:
    """The processes whose session is ``sid`` (empty where /proc is not Linux's)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 3 and fields[3] == str(sid) and int(stat.parent.name) != sid:
            found.append(int(stat.parent.name))
    return found


def _child(result: Path) -> None:
    """In the child: NNCF's own loader builds and loads the extension; one quantizer call is checked
    against NNCF's reference. The outcome goes to ``result`` as JSON."""
    import faulthandler
    import logging

    from ..native import crash_point, telling_line
    faulthandler.enable()
    warnings: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())

    logging.getLogger("nncf").addHandler(Keep(logging.WARNING))
    out: dict[str, Any]
    try:
        import torch
        from nncf.torch.quantization.extensions import QuantizedFunctionsCPULoader
        from nncf.torch.quantization.reference import ReferenceBackendType, ReferenceQuantize
        crash_point("nncf-extension")
        module = QuantizedFunctionsCPULoader.load()  # NNCF's loader: falls back (and logs why) on failure
        if getattr(module, "__name__", "").startswith("Reference"):
            text = "\n".join(warnings)
            text = text.split("Reason:", 1)[-1] if "Reason:" in text else text
            out = {"ok": False, "reason": telling_line(text, first=True)}
        else:
            torch.manual_seed(0)
            x = torch.randn(64, 16, 3, 3) * 3
            low, rng = torch.full((64, 1, 1, 1), -2.0), torch.full((64, 1, 1, 1), 4.0)
            got = module.Quantize_forward(x, low, rng, 256)
            want = ReferenceQuantize(ReferenceBackendType.TORCH).forward(x, low, rng, 256)
            off = float(((got - want).abs() > 2.0 / 255).float().mean())
            out = ({"ok": True, "module": str(getattr(module, "__file__", module))} if off <= 0.01 else
                   {"ok": False, "reason": f"the built extension computes wrong quantizer outputs ({off:.1%} off)"})
    except Exception as exc:  # noqa: BLE001 - reported by the parent in one line
        out = {"ok": False, "reason": f"{type(exc).__name__}: {telling_line(str(exc))}"}
    tmp = result.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, result)


if __name__ == "__main__":  # python -m edge_fgic.models.nncf_ext RESULT.json (what build_in_child starts)
    _child(Path(sys.argv[1]))
