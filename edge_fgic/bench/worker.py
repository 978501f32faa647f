"""One artifact, measured in a process of its own: ``python -m edge_fgic.bench.worker SPEC.json``.

A separate process per artifact gives each its own peak resident memory, a true cold start, and
isolation: an artifact that crashes its runtime cannot take the other measurements down.
The spec names the artifact, a .npy of preprocessed images (NCHW float32) and the timing plan;
the worker writes the logits (.npy) and a JSON result next to the spec.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from ..timing import time_calls


def _status_mb(key: str) -> float | None:
    """VmRSS / VmHWM of this process in MB. VmHWM (the peak) belongs to the address space that exec
    created, unlike getrusage's ru_maxrss, which Linux carries over from the parent that spawned us."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _rss_mb() -> float:
    return _status_mb("VmRSS") or 0.0


def _percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "min": float(a.min()), "runs": int(a.size)}


def measure(spec: dict) -> dict:
    from ..errors import UserError
    from ..runtime import open_runner
    images = np.load(spec["images"], mmap_mode="r")
    result: dict = {"artifact": spec["artifact"], "status": "ok"}
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    try:
        runner = open_runner(spec["artifact"], spec.get("manifest"), threads=spec.get("threads") or None,
                             device=spec.get("device", "cpu"), precision=spec.get("precision") or "auto")
    except UserError as exc:
        return {**result, "status": "failed", "reason": str(exc)}
    result["load_ms"] = 1000 * (time.perf_counter() - t0)
    result["runtime"] = runner.describe()
    x1 = np.ascontiguousarray(images[:1])
    t0 = time.perf_counter()
    runner.predict(x1)
    result["first_inference_ms"] = 1000 * (time.perf_counter() - t0)
    logits = np.concatenate([runner.predict(np.ascontiguousarray(images[i:i + 64])) for i in range(0, len(images), 64)])
    np.save(spec["logits"], logits)
    for _ in range(int(spec.get("warmup", 10))):
        runner.predict(x1)
    sampler = None
    if spec.get("target") == "jetson":  # board power during the timed loop -> energy per inference
        from .tegrastats import TegraStatsSampler
        try:
            sampler = TegraStatsSampler(interval_ms=50).__enter__()
        except RuntimeError as exc:
            result["energy_note"] = str(exc)
    ms: list[float] = []
    gpu_ms: list[float] = []
    # energy needs the loop to span several power samples: on a Jetson run for >= min_seconds
    min_seconds = float(spec.get("min_seconds", 3.0 if sampler else 0.0))
    if sampler is not None:
        wait = time.perf_counter() + 2.0
        while not sampler.samples and time.perf_counter() < wait:  # tegrastats' first line
            time.sleep(0.01)

    def gpu_time() -> None:  # CUDA events around the engine (TensorRT), read outside the timed span
        if getattr(runner, "last_gpu_ms", None) is not None:
            gpu_ms.append(runner.last_gpu_ms)

    t_start = sampler.now() if sampler else 0.0
    try:
        ms = time_calls(lambda: runner.predict(x1), int(spec.get("runs", 100)), min_seconds=min_seconds,
                        max_seconds=max(float(spec.get("max_seconds", 20.0)), min_seconds), after=gpu_time)
    finally:
        if sampler is not None:
            from .tegrastats import energy_per_inference
            t_end = sampler.now()
            sampler.__exit__(None, None, None)
            result["energy"] = energy_per_inference(sampler.samples, len(ms), t_start, t_end)
    result["latency_ms"] = _percentiles(ms)
    result["latency_samples_ms"] = [round(v, 4) for v in ms]  # lets the harness pool rounds
    if gpu_ms:  # GPU compute time alone (CUDA events around the engine), apart from end-to-end latency
        result["gpu_compute_ms"] = _percentiles(gpu_ms)
    result["fps_batch1"] = 1000.0 / result["latency_ms"]["p50"]
    b = int(spec.get("batch", 8))
    xb = np.ascontiguousarray(np.resize(images, (b, *images.shape[1:])) if len(images) < b else images[:b])
    runner.predict(xb)
    reps, t = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - t < 1.0:
        runner.predict(xb)
        reps += 1
    result["batch"] = b
    result["fps_batch"] = b * reps / (time.perf_counter() - t)
    result["batched_natively"] = runner.batch is None
    result["threads"] = runner.threads
    # what the runtime reports it ran (read back after timing: the read-back may compile a probe)
    result["execution"] = runner.execution
    result["rss_before_mb"] = rss0
    peak = _status_mb("VmHWM")
    result["peak_rss_mb"] = peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result


def run_in_process(spec: dict, spec_path: Path, timeout_s: float, env: dict[str, str] | None = None,
                   started=None) -> dict:
    """This module on ``spec`` in a process of its own, as bench runs every artifact (here, and on a device
    through :mod:`.agent`): the worker's result, or a failed one when it timed out or died. ``started`` is
    called with the child (the agent kills it when its host goes away)."""
    import os
    import subprocess
    from ..errors import exc_line
    spec_path.write_text(json.dumps(spec, default=str))
    proc = subprocess.Popen([sys.executable, "-m", "edge_fgic.bench.worker", str(spec_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env} if env else None)
    if started is not None:
        started(proc)
    try:
        _, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"artifact": spec["artifact"], "status": "failed", "reason": f"timed out after {timeout_s:.0f} s"}
    except BaseException:  # Ctrl-C: never leave the worker behind
        proc.kill()
        raise
    res_path = Path(spec["result"])
    if not res_path.exists():  # the runtime crashed the process (segfault, abort), or it was killed
        tail = exc_line(stderr or "", 200, last=True, default=f"exit code {proc.returncode}")
        return {"artifact": spec["artifact"], "status": "failed", "reason": f"worker died ({tail})"}
    return json.loads(res_path.read_text())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    try:
        result = measure(spec)
    except Exception as exc:  # the artifact loaded but failed: report it, never crash the harness
        from ..errors import exc_line
        first = exc_line(exc, 240, last=True)
        result = {"artifact": spec["artifact"], "status": "failed", "reason": f"{type(exc).__name__}: {first}"}
    Path(spec["result"]).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
