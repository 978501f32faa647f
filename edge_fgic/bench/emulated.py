"""The deploy artifacts on emulated CPUs under qemu user-mode emulation: numerics against this x86 host.

``python -m edge_fgic.bench.emulated runs/demo/export`` (after ``benchmarks/portability/arm64/setup.sh``;
``make arm64`` runs both) runs every artifact (.onnx, .tflite, OpenVINO .xml)
on N images of a split, first natively on this x86 host, then on each emulated CPU through the same
:func:`edge_fgic.runtime.open_runner`, in :mod:`.emulated_worker`:

- ARM64 cores (``cortex-a57`` ...): ``qemu-aarch64 -cpu CPU`` running an arm64 Debian python with
  aarch64 wheels of the same versions;
- smaller x86 CPUs (``x86-64:Haswell-v4`` ...): ``qemu-x86_64 -cpu MODEL`` running this host's own
  venv python and wheels. TCG has no AVX-512, and CPUID reports only the model's features, so
  onnxruntime (MLAS), LiteRT (XNNPACK) and OpenVINO (oneDNN) dispatch the kernels they would pick on
  such a machine (AVX2, AVX, SSE4.2). /proc/cpuinfo inside stays the host's (qemu fakes it for ARM
  only): the worker records CPUID as numpy's dispatcher reads it, and OpenVINO's own capabilities.

Per artifact x CPU it records the top-1 agreement with the native x86 run, the max |Δ logit|, the
runner's execution record (what the runtime was asked for and what it reports it ran; OpenVINO's
compiled kernel names) and the emulated wall time. Writes ``arm64.json`` and ``arm64.md``. Emulated
timings say nothing about a real core: numerics only.

Size: longer than ~400 lines because one module holds the three parts that change together: the x86-side
preparation, the qemu orchestration for both architectures, and the report (json + markdown).

Images are preprocessed here with the project's dataset readers and each artifact's manifest
preprocessing (as ``edge-fgic bench`` does), and handed to both sides as .npy files.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import exc_line
from ..metrics import agreement
from ..targets import TARGETS

REPO = Path(__file__).resolve().parents[2]
X86 = "x86-64:"  # prefix of the emulated x86 CPUs: x86-64:<qemu-x86_64 -cpu model>
# emulated CPU -> what it stands for
CPUS = {"cortex-a57": "Jetson Nano (Cortex-A57, ARMv8.0, no fp16 arithmetic, no dot product)",
        "neoverse-n1": "close to Jetson Orin's Cortex-A78AE (ARMv8.2: fp16, dot product)",
        "cortex-a55": "phone little core (ARMv8.2: fp16, dot product)",
        "cortex-a710": "phone big core (ARMv9: SVE2, i8mm, bf16)",
        X86 + "Haswell-v4": "AVX2-only x86 (AVX2 + FMA, no AVX-512), e.g. the AMD EPYC/older Xeon machines of this "
                            "project, AVX2 edge boxes",
        X86 + "Nehalem": "x86-64-v2 floor (SSE4.2, no AVX), the vector ISA of Atom/Celeron/Pentium Silver "
                         "(Goldmont, Tremont) mini PCs and edge boxes",
        X86 + "SandyBridge": "AVX without AVX2/FMA (Sandy/Ivy Bridge Xeons)"}
# what `make arm64` runs (SandyBridge: on request, --cpus)
DEFAULT_CPUS = ["cortex-a57", "neoverse-n1", "cortex-a55", "cortex-a710", X86 + "Haswell-v4", X86 + "Nehalem"]
# the CPU artifacts (not TensorRT engines): from the target table
SUFFIXES = tuple(sfx for t in TARGETS.values() if not t.needs_gpu for sfx in t.suffixes)
DEFAULT_CACHE = REPO / ".cache" / "arm64"
SETUP = "benchmarks/portability/arm64/setup.sh"
# variables that would cap or steer a runtime's ISA dispatch: dropped on the native and emulated x86 sides
# alike, so the (emulated) CPU alone decides
ISA_OVERRIDES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "NPY_DISABLE_CPU_FEATURES",
                 "NPY_ENABLE_CPU_FEATURES", "MKL_ENABLE_INSTRUCTIONS")


class EmulationError(RuntimeError):
    pass




def family(cpu: str) -> str:
    """``arm64`` (qemu-aarch64 -cpu CPU) or ``x86-64`` (``x86-64:MODEL``: qemu-x86_64 -cpu MODEL)."""
    return "x86-64" if cpu.startswith(X86) else "arm64"


# --------------------------------------------------------------------------------------------- setup
def load_setup(cache: Path = DEFAULT_CACHE, cpus: list[str] | None = None) -> dict:
    """What setup.sh built (``CACHE/setup.json``), checked for the families of ``cpus`` (default
    :data:`DEFAULT_CPUS`): ARM needs qemu-aarch64 >= 8, the root's python and the wheels; x86 needs
    qemu-x86_64 (from the same package; it runs this host's python)."""
    f = Path(cache) / "setup.json"
    if not f.is_file():
        raise EmulationError(f"{f}: not there; run {SETUP} first (as root once; cached afterwards)")
    s = json.loads(f.read_text())
    families = {family(c) for c in (cpus or DEFAULT_CPUS)}
    if "arm64" in families:
        major = int(str(s.get("qemu_version") or "0").split(".")[0] or 0)
        if major < 8:
            raise EmulationError(f"qemu-aarch64 {s.get('qemu_version')}: need >= 8 "
                                 "(7.2 crashes in onnxruntime/LiteRT's cpuinfo)")
        for key in ("qemu", "python", "site"):
            if not Path(s[key]).exists():
                raise EmulationError(f"{s[key]}: missing; rerun {SETUP}")
    if "x86-64" in families and not (s.get("qemu_x86_64") and Path(s["qemu_x86_64"]).exists()):
        raise EmulationError(f"{f}: no qemu-x86_64 (built by an older {SETUP}); rerun it")
    return s


def qemu_command(setup: dict, cpu: str) -> list[str]:
    """The interpreter command of an emulated CPU: the arm64 root's python, or this host's own (venv) python."""
    if family(cpu) == "x86-64":
        return [setup["qemu_x86_64"], "-cpu", cpu[len(X86):], sys.executable]
    return [setup["qemu"], "-L", setup["root"], "-cpu", cpu, setup["python"]]


def arm_env(setup: dict) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "LD_"))}
    env.update(PYTHONPATH=f"{setup['site']}:{REPO}", PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return env


def host_env() -> dict[str, str]:
    """The native x86 side's environment, also the emulated x86 side's (same python, same wheels)."""
    env = {k: v for k, v in os.environ.items() if k not in ISA_OVERRIDES}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def emulated_env(setup: dict, cpu: str) -> dict[str, str]:
    return host_env() if family(cpu) == "x86-64" else arm_env(setup)


# ------------------------------------------------------------------------------------------- workers
def run_worker(cmd: list[str], env: dict[str, str], items: list[dict], work: Path, tag: str, *, threads: int,
               precision: str, timeout_s: float, read_back: list[str] | None = None) -> tuple[dict, list[dict]]:
    """Run :mod:`.emulated_worker` over ``items``; restart after the artifact that killed it.

    Returns the first process description and one result per item (in order)."""
    results: dict[int, dict] = {}
    head: dict = {}
    start, attempt = 0, 0
    while start < len(items):
        attempt += 1
        out = work / f"{tag}-{attempt}.jsonl"
        spec = work / f"{tag}-{attempt}.json"
        spec.write_text(json.dumps({"artifacts": items, "threads": threads, "precision": precision, "start": start,
                                    "read_back": read_back, "results": str(out)}, default=str))
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd + ["-m", "edge_fgic.bench.emulated_worker", str(spec)], env=env, cwd=REPO,
                                  capture_output=True, text=True, timeout=timeout_s)
            why = exc_line(proc.stderr, 300, last=True, default=f"exit code {proc.returncode}")
        except subprocess.TimeoutExpired:
            why = f"timed out after {timeout_s:.0f} s"
        lines = [json.loads(ln) for ln in out.read_text().splitlines() if ln.strip()] if out.exists() else []
        for ln in lines:
            if ln.get("kind") == "process":
                head = head or {**ln, "worker_s": None}
            else:
                results[int(ln["index"])] = ln
        if not head:
            head = {"kind": "process", "error": why}
        head["worker_s"] = (head.get("worker_s") or 0.0) + time.perf_counter() - t0
        done = [i for i in range(start, len(items)) if i in results]
        nxt = next((i for i in range(start, len(items)) if i not in results), len(items))
        if nxt < len(items):  # that artifact died with the process (segfault, abort, timeout)
            results[nxt] = {"index": nxt, "path": items[nxt]["path"], "status": "failed",
                            "reason": f"worker died: {why}"}
            if not done and not lines:  # not even the process line: the interpreter itself cannot start
                for i in range(nxt + 1, len(items)):
                    results[i] = {"index": i, "path": items[i]["path"], "status": "failed",
                                  "reason": f"worker died: {why}"}
                break
        start = nxt + 1
    return head, [results[i] for i in range(len(items))]


# -------------------------------------------------------------------------------------------- inputs
def collect(paths: list[str], include_tensorrt: bool = False) -> tuple[list[tuple[Path, Any]], list[dict]]:
    """(artifact, manifest) pairs from files/folders, and the ones skipped (with why)."""
    from ..manifest import read_manifest
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix in SUFFIXES and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            raise EmulationError(f"{p}: no such artifact or folder")
    found, skipped = [], []
    for f in files:
        if f.suffix not in SUFFIXES:
            skipped.append({"artifact": str(f), "reason": f"not a CPU artifact ({', '.join(SUFFIXES)})"})
            continue
        m = read_manifest(f)
        if not m:
            skipped.append({"artifact": str(f), "reason": "no manifest (sidecar or embedded): preprocessing unknown"})
            continue
        if m.artifact.target == "tensorrt" and not include_tensorrt:
            skipped.append({"artifact": str(f), "reason": "TensorRT-bound ONNX: built into an engine on the Jetson, "
                                                          "not run by onnxruntime there"})
            continue
        found.append((f, m))
    if not found:
        raise EmulationError(f"{', '.join(paths)}: no artifacts with manifests found ({', '.join(SUFFIXES)})")
    return found, skipped


def images_for(data: str, split: str, inp, n: int, work: Path, cache: dict) -> Path:
    """The first ``n`` images of a split, preprocessed as the manifest says (NCHW float32 .npy): the bench's own."""
    from ..data.datasets import parse_data_spec
    from .harness import preprocessed_images
    return preprocessed_images(parse_data_spec(data), split, inp, n, work, cache)[0]


# ----------------------------------------------------------------------------------------- comparing
def compare(ref: np.ndarray, emu: np.ndarray) -> dict[str, float]:
    d = np.abs(emu.astype(np.float64) - ref.astype(np.float64))
    scale = float(np.abs(ref).max()) or 1.0
    return {"agreement": agreement(ref, emu), "max_abs_diff": float(d.max()),
            "max_rel_diff": float(d.max() / scale), "mean_abs_diff": float(d.mean()),
            "bit_exact": bool(np.array_equal(ref, emu))}


def _label(res: dict) -> str:
    """What the runner read back, short: the runner's own label when it has one."""
    if res.get("execution_label"):
        return res["execution_label"]
    ex = res.get("execution") or {}
    if "probe" in ex:
        return ", ".join(f"{k}={v}" for k, v in ex["probe"].items())
    eff = ex.get("effective") or {}
    return str(eff.get("precision") or "")


def kernels(res: dict) -> dict[str, int]:
    """OpenVINO's compiled kernel names (primitiveType -> nodes) from a worker result; {} for other runtimes."""
    return dict(((res.get("execution") or {}).get("effective") or {}).get("kernels") or {})


def run(artifacts: list[str], *, data: str = "", split: str = "val", n: int = 64, cpus: list[str] | None = None,
        threads: int = 1, precision: str = "auto", cache: Path = DEFAULT_CACHE, jobs: int = 2,
        timeout_s: float = 3600.0, include_tensorrt: bool = False, read_back: list[str] | None = None,
        progress: bool = True) -> dict[str, Any]:
    """Every artifact natively on x86 and on each emulated CPU; the report :func:`markdown` renders.

    ``read_back``: the runtimes whose ``runner.execution`` is read (None = all; onnxruntime's imports
    onnx to inspect the optimised graph, ~5 s under ARM emulation)."""
    cpus = list(cpus or DEFAULT_CPUS)
    setup = load_setup(cache, cpus)
    found, skipped = collect(artifacts, include_tensorrt)
    data = data or next((m.source.get("data") for _, m in found if m.source.get("data")), "")
    if not data:
        raise EmulationError("no dataset recorded in the manifests (source.data); pass --data KIND=PATH")
    say = (lambda msg: print(f"[emulated] {msg}", flush=True)) if progress else (lambda msg: None)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edge-fgic-emulated-") as tmp:
        work, img_cache = Path(tmp), {}
        base = []
        for i, (f, m) in enumerate(found):
            base.append({"path": str(f.resolve()), "manifest": m.to_dict(),
                         "images": str(images_for(data, split, m.input, n, work, img_cache))})
        say(f"{len(base)} artifacts, {n} images of {data} [{split}]")

        def side(tag: str, cmd: list[str], env: dict) -> tuple[dict, list[dict], float]:
            safe = tag.replace(":", "-")
            items = [{**b, "logits": str(work / f"{safe}-logits-{i}.npy")} for i, b in enumerate(base)]
            t0 = time.perf_counter()
            head, res = run_worker(cmd, env, items, work, safe, threads=threads, precision=precision,
                                   timeout_s=timeout_s, read_back=read_back)
            for r, it in zip(res, items):
                if r.get("status") == "ok":
                    r["logits"] = np.load(it["logits"])
            return head, res, time.perf_counter() - t0

        say(f"x86 host and emulated CPUs {', '.join(cpus)}: {jobs} at a time")
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futs = {"x86": pool.submit(side, "x86", [sys.executable], host_env())}
            futs.update({cpu: pool.submit(side, cpu, qemu_command(setup, cpu), emulated_env(setup, cpu))
                         for cpu in cpus})
            done = {}
            for tag, fut in futs.items():
                done[tag] = fut.result()
                say(f"{tag} done in {done[tag][2]:.0f} s")
        x86_head, x86, _ = done.pop("x86")
    rows = []
    for i, (f, m) in enumerate(found):
        ref = x86[i]
        base_row = {"artifact": f.name, "path": str(f), "target": m.artifact.target,
                    "precision": m.artifact.precision, "x86": _strip(ref)}
        for cpu in cpus:
            e = done[cpu][1][i]
            row = {**base_row, "cpu": cpu, "family": family(cpu), "emulated": _strip(e), "status": "ok"}
            if ref.get("status") != "ok" or e.get("status") != "ok":
                row["status"] = "failed"
                row["reason"] = (e if e.get("status") != "ok" else ref).get("reason")
            else:
                row.update(compare(ref["logits"], e["logits"]))
                row["emulated_wall_s"] = e.get("wall_s")                          # incl. the read-back
                row["emulated_run_s"] = (e.get("load_s") or 0.0) + (e.get("infer_s") or 0.0)  # load + all images
            rows.append(row)
    families = {family(c) for c in cpus}
    emulators = {}
    if "arm64" in families:
        emulators["arm64"] = {"qemu": "qemu-aarch64", "qemu_version": setup.get("qemu_version"),
                              "root": setup.get("root_desc"),
                              "python": "the root's " + Path(setup.get("python", "python3")).name,
                              "wheels": setup.get("pins")}
    if "x86-64" in families:
        emulators["x86-64"] = {"qemu": "qemu-x86_64", "qemu_version": setup.get("qemu_x86_64_version"),
                               "python": _rel(sys.executable) + " (this host's own interpreter and wheels)"}
    return {"schema": "edge-fgic/emulated", "schema_version": 2,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "config": {"artifacts": [_rel(a) for a in artifacts], "data": data, "split": split, "images": n,
                       "cpus": cpus, "threads": threads, "precision": precision, "read_back": read_back or "all"},
            "host": _host(), "x86_process": x86_head, "emulators": emulators,
            "setup": {"build_s": setup.get("build_s"), "cache_mb": setup.get("cache_mb")},
            "processes": {cpu: done[cpu][0] for cpu in cpus},
            "emulated_wall_s": {cpu: round(done[cpu][2], 1) for cpu in cpus},
            "cpus": {c: CPUS.get(c, "") for c in cpus}, "skipped": skipped, "rows": rows,
            "wall_s": round(time.perf_counter() - t_all, 1)}


def _strip(res: dict) -> dict:
    out = {k: v for k, v in res.items() if k not in ("logits", "kind", "index")}
    if out.get("path"):
        out["path"] = _rel(out["path"])
    return out


def _rel(path: str) -> str:
    try:
        return str(Path(path).absolute().relative_to(REPO))
    except ValueError:
        return str(path)


def _host() -> dict:
    try:
        from .sysinfo import cpu_info
        info = cpu_info()
    except Exception:  # noqa: BLE001
        info = {"arch": platform.machine()}
    return {k: info.get(k) for k in ("arch", "model", "isa", "usable_cores")} | {"python": platform.python_version()}


# ---------------------------------------------------------------------------------------------- report
def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    return "0" if v == 0 else f"{v:.1e}"


# numpy's CPUID feature names that decide the runtimes' x86 kernels (numpy has no AMX names)
_CPUID_SHOWN = ("SSE42", "AVX", "F16C", "FMA3", "AVX2", "AVX512F", "AVX512BW", "AVX512VL", "AVX512VNNI", "AVX512BF16",
                "AVX512FP16")


def cpuid_text(cpuid: list[str] | None) -> str:
    """``x86-64-v3: SSE42, AVX, F16C, FMA3, AVX2; no AVX-512`` from numpy's CPUID feature list."""
    if not cpuid:
        return "unknown"
    have = set(cpuid)
    level = max((f for f in have if f.startswith("X86_V")), default="")
    text = (f"x86-64-v{level[-1]}: " if level else "") + ", ".join(f for f in _CPUID_SHOWN if f in have)
    return text + ("" if "AVX512F" in have else "; no AVX-512")


def _kernels_text(k: dict[str, int]) -> str:
    return ", ".join(f"{name} ×{n}" for name, n in sorted(k.items(), key=lambda kv: (-kv[1], kv[0]))) or "–"


def openvino_table(report: dict) -> list[str]:
    """Per CPU: what OpenVINO detected (capabilities, the precision it would pick unasked) and the kernels it
    compiled."""
    xml = sorted({r["artifact"] for r in report["rows"] if r["artifact"].endswith(".xml")})
    if not xml:
        return []
    procs = {"x86 host (native)": report.get("x86_process") or {}} | report["processes"]
    by = {(r["cpu"], r["artifact"]): r for r in report["rows"]}
    first = {r["artifact"]: r for r in report["rows"] if r["artifact"] in xml}
    lines = ["", "OpenVINO on each CPU: `OPTIMIZATION_CAPABILITIES` and the `INFERENCE_PRECISION_HINT` a plain "
                 "`compile_model(model, \"CPU\")` gets (what float parts would run in unasked; the runner asks f32 "
                 "explicitly), then the kernels each IR compiled to (`primitiveType` × nodes, read back from the "
                 "runtime model):", "",
             "| CPU | capabilities | default precision | " + " | ".join(f"{a} kernels" for a in xml) + " |",
             "|---|---|---|" + "---|" * len(xml)]
    for cpu, p in procs.items():
        ov = p.get("openvino") or {}
        cells = []
        for a in xml:
            res = first[a]["x86"] if cpu.startswith("x86 host") else (by.get((cpu, a)) or {}).get("emulated") or {}
            cells.append(_kernels_text(kernels(res)))
        caps = ", ".join(ov.get("capabilities") or []) or (ov.get("error") or "–")
        lines.append(f"| {cpu} | {caps} | {ov.get('default_precision_hint') or '–'} | " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict, command: str) -> str:
    cfg, host, emus = report["config"], report["host"], report.get("emulators") or {}
    xp = report.get("x86_process") or {}
    xv = xp.get("versions") or {}
    procs = report["processes"]
    av = next((p.get("versions") for c, p in procs.items() if family(c) == "arm64" and p.get("versions")), {}) or {}
    setup = report.get("setup") or {}
    build = setup.get("build_s") or {}
    lines = [
        "# Deploy artifacts on emulated CPUs (ARM64 cores, AVX2 / SSE4.2 x86) under qemu user-mode emulation",
        "",
        "Numerics only: **emulated timings mean nothing** (qemu is 30–600× slower than a real core and its "
        "slowdown differs per instruction class); the wall-time column only says what this check costs.",
        "",
        f"Command: `{command}` (what `make arm64` runs, after `{SETUP}`)",
        "",
        f"- Created {report['created']}; {cfg['images']} images of `{cfg['data']}` [{cfg['split']}], "
        f"threads={cfg['threads']}, precision={cfg['precision']!r} (the artifact's own precision, float parts in f32).",
        f"- x86 host (the reference): {host.get('model')}, {host.get('usable_cores')} cores, "
        f"ISA: {', '.join(host.get('isa') or [])}; "
        f"Python {xv.get('python')}, numpy {xv.get('numpy')}, onnxruntime {xv.get('onnxruntime')}, "
        f"openvino {xv.get('openvino')}, ai-edge-litert {xv.get('ai-edge-litert')}.",
    ]
    if "arm64" in emus:
        e = emus["arm64"]
        lines.append(f"- ARM64 CPUs: qemu-aarch64 {e['qemu_version']} (user mode, `-cpu CPU`), Debian {e['root']}; "
                     f"Python {av.get('python')}, numpy {av.get('numpy')}, onnxruntime {av.get('onnxruntime')}, "
                     f"openvino {av.get('openvino')}, ai-edge-litert {av.get('ai-edge-litert')} (aarch64 wheels), "
                     "OPENBLAS_NUM_THREADS=1.")
    if "x86-64" in emus:
        e = emus["x86-64"]
        lines.append(f"- x86 CPUs (`x86-64:MODEL`): qemu-x86_64 {e['qemu_version']} `-cpu MODEL` running "
                     f"{e['python']}: the same binaries as the reference column, only CPUID differs (TCG implements "
                     "no AVX-512), so each runtime dispatches the kernels it would pick on such a CPU. /proc/cpuinfo "
                     "inside is still the host's (qemu fakes it only for ARM), so the CPUID below is what numpy's "
                     "dispatcher read.")
    lines += [
        f"- Setup (`{SETUP}`, cached in `.cache/arm64`): built in {sum(build.values() or [0]):.0f} s cold "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in build.items())}), {setup.get('cache_mb')} MB; each later run only "
        "checks it (one emulated import per architecture, ~6 s).",
        "- Emulated CPUs: " + "; ".join(f"`{c}` = {d}" for c, d in report["cpus"].items()) + ".",
        "- Agreement = top-1 of the emulated run equal to top-1 of the native x86 run of the same artifact; "
        "Δ = |emulated − x86| logits, rel = max Δ / max |x86 logit|. Runner read-back: `runner.execution` on "
        "each side (requested vs what the runtime reports it compiled; onnxruntime and LiteRT do not say which "
        "ISA their kernels use, OpenVINO does, below).",
        "",
        f"- x86 host: CPUID (numpy's dispatcher): {cpuid_text((xp.get('cpu') or {}).get('cpuid'))}.",
    ]
    for cpu, p in procs.items():
        seen = p.get("cpu") or {}
        heavy = ", ".join(p.get("heavy_modules_after_import") or []) or "none"
        if family(cpu) == "x86-64":
            lines.append(f"- `{cpu}`: CPUID (numpy's dispatcher): {cpuid_text(seen.get('cpuid'))}; heavy modules after "
                         f"`import edge_fgic.runtime`: {heavy}.")
        elif seen.get("isa"):
            lines.append(f"- `{cpu}`: /proc/cpuinfo as qemu presents it: {seen.get('model')}, "
                         f"features {', '.join(seen['isa'])}; heavy modules after `import edge_fgic.runtime`: {heavy}.")
        elif p.get("error"):
            lines.append(f"- `{cpu}`: the worker did not start: {p['error']}.")
    lines += ["", "| artifact | CPU | agreement % | max \\|Δ\\| | rel | bit-exact | emulated read-back | x86 read-back "
              "| emulated s (load + images) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        if r["status"] != "ok":
            lines.append(f"| {r['artifact']} | {r['cpu']} | failed: {r.get('reason')} | | | | | | |")
            continue
        lines.append(f"| {r['artifact']} | {r['cpu']} | {r['agreement']:.1f} | {_fmt(r['max_abs_diff'])} | "
                     f"{_fmt(r['max_rel_diff'])} | {'yes' if r['bit_exact'] else 'no'} | {_label(r['emulated'])} | "
                     f"{_label(r['x86'])} | {r['emulated_run_s']:.1f} |")
    lines += openvino_table(report)
    heavy: dict[str, set] = {}
    for r in report["rows"]:
        if r["family"] != "arm64":
            continue
        for m in (r.get("emulated") or {}).get("heavy_modules_imported") or []:
            heavy.setdefault(m, set()).add(((r["emulated"].get("execution") or {}).get("runtime")) or r["artifact"])
    if heavy:
        lines += ["", "Modules the runners imported on the ARM side beyond numpy + the runtimes (while opening an "
                      "artifact or reading back its execution): "
                  + "; ".join(f"{m} (by {', '.join(sorted(b))})" for m, b in heavy.items()) + "."]
    errs = sorted({f"{r['cpu']} {r['artifact']}: {r['emulated']['execution_error']}" for r in report["rows"]
                   if (r.get("emulated") or {}).get("execution_error")})
    if errs:
        lines += ["", "Read-back errors on the emulated side: " + "; ".join(errs) + "."]
    if report["skipped"]:
        lines += ["", "Skipped: " + "; ".join(f"`{Path(s['artifact']).name}` ({s['reason']})"
                                              for s in report["skipped"]) + "."]
    lines += ["", f"Whole run: {report['wall_s']:.0f} s wall on this host (per emulated CPU: "
              + ", ".join(f"{c} {s:.0f} s" for c, s in report["emulated_wall_s"].items()) + ").", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "python -m edge_fgic.bench.emulated") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Set up the emulators, arm64 root and aarch64 wheels first: " + SETUP)
    ap.add_argument("artifacts", nargs="+",
                    help="artifact files or folders (.onnx, .tflite, OpenVINO .xml; each with its manifest)")
    ap.add_argument("--data", default="", help="KIND=PATH of the dataset (default: the one the manifests record)")
    ap.add_argument("--split", default="val")
    ap.add_argument("-n", "--images", type=int, default=64, help="first N images of the split (0 = all; default 64)")
    ap.add_argument("--cpus", default=",".join(DEFAULT_CPUS),
                    help=f"emulated CPUs, comma-separated: qemu-aarch64 -cpu models, or {X86}MODEL for "
                         "qemu-x86_64 -cpu MODEL "
                         f"(default {','.join(DEFAULT_CPUS)}; known: {', '.join(CPUS)})")
    ap.add_argument("--threads", type=int, default=1, help="runtime threads on both sides (default 1)")
    ap.add_argument("--precision", default="auto",
                    help="runner precision (default auto: the artifact's, float parts f32)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="worker processes at once (the x86 host and each emulated CPU; default 2)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per worker process")
    ap.add_argument("--cache", default=str(DEFAULT_CACHE), help="setup.sh's cache folder (default .cache/arm64)")
    ap.add_argument("--include-tensorrt", action="store_true", help="also run TensorRT-bound ONNX files in onnxruntime")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "portability"),
                    help="folder for arm64.json and arm64.md (default benchmarks/portability)")
    ap.add_argument("--name", default="arm64", help="file stem of the outputs (default arm64)")
    a = ap.parse_args(argv)
    from ..errors import UserError
    try:
        report = run(a.artifacts, data=a.data, split=a.split, n=a.images, cpus=[c for c in a.cpus.split(",") if c],
                     threads=a.threads, precision=a.precision, cache=Path(a.cache), jobs=a.jobs, timeout_s=a.timeout,
                     include_tensorrt=a.include_tensorrt)
    except (EmulationError, UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = prog + " " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    report["command"] = command
    from ..fileio import write_json, write_text
    out = Path(a.out)
    write_json(out / f"{a.name}.json", report)
    write_text(out / f"{a.name}.md", markdown(report, command))
    bad = [r for r in report["rows"] if r["status"] != "ok"]
    print(f"[emulated] wrote {out / (a.name + '.json')} and {out / (a.name + '.md')}: "
          f"{len(report['rows'])} artifact x CPU rows"
          + (f", {len(bad)} failed" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
