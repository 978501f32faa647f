"""Logits of several artifacts, in this process: ``python -m edge_fgic.bench.emulated_worker SPEC.json``.

The worker of :mod:`edge_fgic.bench.emulated`. It runs on every side: on the x86 host with the
project's interpreter, under ``qemu-x86_64 -cpu MODEL`` with that same interpreter, and under
``qemu-aarch64`` with an arm64 Debian python and aarch64 wheels, so it needs only numpy and
:mod:`edge_fgic.runtime` (no torch, no dataset code): the images come preprocessed as .npy files.
The process line records what the (emulated) CPU looks like from inside: /proc/cpuinfo (faked by
qemu-aarch64, the host's under qemu-x86_64), CPUID/HWCAP as numpy's dispatcher read them, and,
when an OpenVINO IR is in the spec, OpenVINO's CPU capabilities and default precision. The spec::

    {"artifacts": [{"path": ..., "manifest": {...}, "images": "x.npy", "logits": "out.npy"}, ...],
     "threads": 1, "precision": "auto", "start": 0, "read_back": null, "results": "results.jsonl"}

(``read_back``: runner backends whose ``execution`` is read; null = all.)

One JSON line per artifact is appended to ``results`` as soon as it is done (the first line
describes the process), so a runtime that kills the process loses only the artifact it was
running; the caller restarts the worker at ``start`` = the next one.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import exc_line

# modules the ARM side must never need: their presence in sys.modules means something dragged them in
HEAVY = ("torch", "torchvision", "timm", "onnx", "tensorflow", "nncf", "litert_torch", "jax", "PIL", "cv2")


def _heavy() -> list[str]:
    return [m for m in HEAVY if m in sys.modules]


def _cpuid() -> list[str] | None:
    """The CPU features numpy's dispatcher detected (x86: CPUID, aarch64: HWCAP): what the CPU itself
    says, also under qemu-x86_64, whose /proc/cpuinfo is the host's."""
    try:
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as feats
        except ImportError:  # numpy 1.x
            from numpy.core._multiarray_umath import __cpu_features__ as feats
        return sorted(k for k, v in feats.items() if v)
    except Exception:  # noqa: BLE001 - a description, never a failure
        return None


def _cpu() -> dict:
    """What this (possibly emulated) CPU reports: qemu >= 8 fakes an ARM /proc/cpuinfo for ``-cpu``;
    qemu-x86_64 does not (``isa`` is then the host's; ``cpuid`` is the emulated CPU's)."""
    try:
        from .sysinfo import parse_cpuinfo  # pure parser: no torch at import
        info = parse_cpuinfo(Path("/proc/cpuinfo").read_text(), platform.machine())
        out = {k: info.get(k) for k in ("arch", "model", "isa")}
    except Exception as exc:  # noqa: BLE001 - a description, never a failure
        out = {"arch": platform.machine(), "error": f"{type(exc).__name__}: {exc}"[:200]}
    out["cpuid"] = _cpuid()
    return out


def _openvino() -> dict:
    """OpenVINO's view of this CPU: OPTIMIZATION_CAPABILITIES and the INFERENCE_PRECISION_HINT a
    plain compile gets (bf16 on AMX/AVX-512-BF16 x86, f16 on ARM cores with FP16 arithmetic)."""
    try:
        import openvino as ov

        from ..runtime.openvino_runner import ov_precision
        core = ov.Core()
        return {"capabilities": [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")],
                "default_precision_hint": ov_precision(core.get_property("CPU", "INFERENCE_PRECISION_HINT"))}
    except Exception as exc:  # noqa: BLE001 - a description, never a failure
        return {"error": f"{type(exc).__name__}: {exc_line(exc, 200, default='')}"[:200]}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for name in ("numpy", "onnxruntime", "openvino", "ai-edge-litert"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _open(path: str, manifest: dict | None, threads: int, precision: str):
    """``open_runner`` with the precision argument where the runner contract has it."""
    from ..runtime import open_runner
    try:
        return open_runner(path, manifest, threads=threads, device="cpu", precision=precision), precision
    except TypeError as exc:
        if "precision" not in str(exc):
            raise
        return (open_runner(path, manifest, threads=threads, device="cpu"),
                "runtime default (runner has no precision argument)")


def _probe(runner) -> dict | None:
    """A minimal read-back for runners without ``execution`` (before the runner contract landed)."""
    compiled = getattr(runner, "compiled", None)
    if compiled is not None:  # OpenVINO
        out = {}
        for key in ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS"):
            try:
                out[key] = str(compiled.get_property(key))
            except Exception:  # noqa: BLE001
                pass
        return {"probe": out}
    session = getattr(runner, "session", None)
    if session is not None:  # onnxruntime
        return {"probe": {"providers": session.get_providers()}}
    return None


def run_one(item: dict, threads: int, precision: str, read_back: list[str] | None = None) -> dict:
    from ..errors import UserError
    res: dict = {"path": item["path"], "status": "ok"}
    before = set(_heavy())
    t0 = time.perf_counter()
    try:
        runner, asked = _open(item["path"], item.get("manifest"), threads, precision)
    except UserError as exc:
        return {**res, "status": "failed", "reason": str(exc)}
    res["load_s"] = time.perf_counter() - t0
    res["requested_precision"] = asked
    x = np.load(item["images"])
    t0 = time.perf_counter()
    y = runner.predict(x)
    res["infer_s"] = time.perf_counter() - t0
    res["images"] = int(len(x))
    np.save(item["logits"], np.asarray(y, dtype=np.float32))
    t0 = time.perf_counter()
    if read_back is not None and getattr(runner, "backend", "") not in read_back:
        res["execution"] = None
        res["execution_skipped"] = True
        res["runtime"] = runner.describe()
        res["heavy_modules_imported"] = sorted(set(_heavy()) - before)
        return res
    try:
        ex = getattr(runner, "execution", None)
        res["execution"] = ex if ex is not None else _probe(runner)
    except Exception as exc:  # noqa: BLE001 - the read-back failing is a finding, not a crash
        res["execution"] = None
        res["execution_error"] = f"{type(exc).__name__}: {exc_line(exc, 200, default='')}"
    res["read_back_s"] = time.perf_counter() - t0
    label = getattr(runner, "execution_label", None)
    if callable(label) and res.get("execution"):
        try:
            res["execution_label"] = label()
        except Exception:  # noqa: BLE001
            pass
    res["runtime"] = runner.describe()
    res["heavy_modules_imported"] = sorted(set(_heavy()) - before)
    return res


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    threads, precision = int(spec.get("threads") or 1), spec.get("precision") or "auto"
    out = Path(spec["results"])
    t0 = time.perf_counter()
    import edge_fgic.runtime  # noqa: F401 - what the ARM side must be able to import on its own
    head = {"kind": "process", "machine": platform.machine(), "cpu": _cpu(), "versions": _versions(),
            "import_runtime_s": time.perf_counter() - t0, "heavy_modules_after_import": _heavy(),
            "start": int(spec.get("start", 0)), "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS",)}}
    if any(str(a["path"]).endswith(".xml") for a in spec["artifacts"]):
        head["openvino"] = _openvino()
    with open(out, "a") as fh:
        fh.write(json.dumps(head) + "\n")
    for i, item in enumerate(spec["artifacts"]):
        if i < int(spec.get("start", 0)):
            continue
        t0 = time.perf_counter()
        try:
            res = {"kind": "artifact", "index": i, **run_one(item, threads, precision, spec.get("read_back"))}
        except Exception as exc:  # noqa: BLE001 - one artifact's runtime error must not hide the others
            first = exc_line(exc)
            res = {"kind": "artifact", "index": i, "path": item["path"], "status": "failed",
                   "reason": f"{type(exc).__name__}: {first}"}
        res["wall_s"] = time.perf_counter() - t0
        with open(out, "a") as fh:
            fh.write(json.dumps(res, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
