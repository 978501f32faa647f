"""Jetson energy per inference from ``tegrastats`` power rails sampled during a timed loop.

Jetsons have no NVML power counter; ``tegrastats`` prints the INA3221 rail readings once per
``--interval`` ms. We timestamp each line on arrival (one clock for samples and the timed loop), keep
the instantaneous reading of the board-input rail, and integrate it over the loop's window.

Line formats seen on real boards (samples in tests/data/tegrastats/):
  Nano / TX (JetPack 4):   ... GR3D_FREQ 0%@76 ... POM_5V_IN 2132/2132 POM_5V_GPU 78/78 POM_5V_CPU 275/275
  Xavier NX (JetPack 4):   ... GR3D_FREQ 99% ... VDD_IN 14703/14683 VDD_CPU_GPU_CV 10874/10893 VDD_SOC 1405/1405
  Orin (JetPack 5/6):      07-29-2026 18:00:27 RAM ... GR3D_FREQ 0% cpu@54.937C ... VDD_IN 4673mW/4673mW ...
  AGX Orin:                ... VDD_GPU_SOC 2399mW/2399mW VDD_CPU_CV 400mW/400mW VIN_SYS_5V0 4032mW/4032mW ...
Rails are "NAME instant/average" in mW (unit implied before JetPack 5); newer releases may append a
third value and print temperatures as "cpu@51.3C/51.3C" - both are accepted.
"""

from __future__ import annotations

import bisect
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

SUM_OF_RAILS = "sum of rails"
# Rails that measure the whole module/board input, best first (NVIDIA: POM_5V_IN "represents the total
# power consumption", the GPU/CPU rails are subsets of it). Without one of these we sum every rail.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")

_TIMESTAMP = re.compile(r"^(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d)\s")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_GR3D = re.compile(r"\bGR3D(?:_FREQ)? (?:(\d+)%)?(?:@\[?(\d+))?")
_RAIL = re.compile(r"(?<![\w@/\[])([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?:/\d+(?:mW)?)?(?=\s|$)")
_TEMP = re.compile(r"(?<![\w%])([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)?(?=\s|$)")


@dataclass
class TegraSample:
    """One tegrastats line. ``t``: seconds since the sampler started (0.0 from :func:`parse_line`)."""

    t: float
    ram_used_mb: int | None
    gpu_util: int | None  # GR3D_FREQ %
    gpu_mhz: int | None
    rails: dict[str, tuple[int, int]]  # rail -> (instant mW, average mW)
    temps: dict[str, float]
    ram_total_mb: int | None = None
    timestamp: str | None = None  # "MM-DD-YYYY HH:MM:SS" prefix of JetPack 5+ lines (1 s resolution)


def parse_line(line: str, t: float = 0.0) -> TegraSample | None:
    """Parse one line (pure). None for blank and '#' comment lines; ValueError if it is not tegrastats."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    ts = _TIMESTAMP.match(line)
    ram = _RAM.search(line)
    rails = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in _RAIL.finditer(line)}
    if not ram and not rails:
        raise ValueError(f"not a tegrastats line: {line[:80]!r}")
    gr3d = _GR3D.search(line)
    temps = {m.group(1): float(m.group(2)) for m in _TEMP.finditer(line) if float(m.group(2)) > -200}  # -256C = off
    return TegraSample(
        t=t, ram_used_mb=int(ram.group(1)) if ram else None, ram_total_mb=int(ram.group(2)) if ram else None,
        gpu_util=int(gr3d.group(1)) if gr3d and gr3d.group(1) else None,
        gpu_mhz=int(gr3d.group(2)) if gr3d and gr3d.group(2) else None,
        rails=rails, temps=temps, timestamp=ts.group(1) if ts else None)


def total_power_rail(sample: TegraSample) -> str:
    """The board-input rail (VDD_IN on Orin Nano/NX and Xavier NX, POM_5V_IN on Nano/TX2), else
    :data:`SUM_OF_RAILS` - e.g. AGX Orin/Xavier, whose module rails (no carrier board) we add up."""
    return next((r for r in INPUT_RAILS if r in sample.rails), SUM_OF_RAILS)


def total_power_mw(sample: TegraSample, rail: str | None = None) -> float | None:
    """Instantaneous power of ``rail`` (default :func:`total_power_rail`) in mW; None if absent."""
    rail = rail or total_power_rail(sample)
    if rail == SUM_OF_RAILS:
        values = [inst for name, (inst, _) in sample.rails.items() if name != "NC"]  # NC = not connected
        return float(sum(values)) if values else None
    return float(sample.rails[rail][0]) if rail in sample.rails else None


def _integrate(points: Sequence[tuple[float, float]], a: float, b: float) -> float:
    """Exact integral over [a, b] of the piecewise-linear curve through ``points`` (held constant
    before the first and after the last point)."""
    ts = [p[0] for p in points]
    vs = [p[1] for p in points]

    def value(x: float) -> float:
        if x <= ts[0]:
            return vs[0]
        if x >= ts[-1]:
            return vs[-1]
        i = bisect.bisect_left(ts, x)  # ts[i - 1] < x <= ts[i]
        w = (x - ts[i - 1]) / (ts[i] - ts[i - 1])
        return vs[i - 1] + w * (vs[i] - vs[i - 1])

    knots = [a] + [x for x in ts if a < x < b] + [b]
    return sum((x1 - x0) * (value(x0) + value(x1)) / 2 for x0, x1 in zip(knots, knots[1:]))


def energy_per_inference(samples: Iterable[TegraSample], n_inferences: int, t_start: float, t_end: float,
                         *, rail: str | None = None, baseline_mw: float | None = None) -> dict:
    """Mean input power over [t_start, t_end] (sampler clock) and energy per inference.

    Trapezoid integration through the samples (the window edges interpolated from their neighbours),
    so a window shorter than the sampling interval still gets a value, flagged in ``method``.
    ``baseline_mw`` (e.g. idle power measured before the loop) adds a dynamic-energy estimate."""
    if n_inferences <= 0 or t_end <= t_start:
        raise ValueError("need n_inferences > 0 and t_end > t_start")
    samples = sorted(samples, key=lambda s: s.t)
    rail = rail or (total_power_rail(samples[0]) if samples else None)
    points = [(s.t, p) for s in samples if (p := total_power_mw(s, rail)) is not None]
    duration = t_end - t_start
    inside = sum(1 for t, _ in points if t_start <= t <= t_end)
    result = {"rail": rail, "rail_note": None, "n_inferences": n_inferences, "duration_s": duration,
              "samples_in_window": inside, "mean_power_mw": None, "energy_j": None, "mj_per_inference": None,
              "method": None}
    if rail == SUM_OF_RAILS and samples:
        names = sorted(n for n in samples[0].rails if n != "NC")
        result["rail_note"] = (f"no board-input rail; sum of module rails {'+'.join(names)} "
                               "(excludes carrier board and regulator losses)")
    if not points:
        result["method"] = "no samples with that rail"
        return result
    mean_mw = _integrate(points, t_start, t_end) / duration
    energy_j = mean_mw / 1e3 * duration
    result.update(mean_power_mw=mean_mw, energy_j=energy_j, mj_per_inference=energy_j * 1e3 / n_inferences,
                  method="trapezoid" if inside >= 2 else
                  "interpolated: fewer than 2 samples inside the window (lengthen the loop or shorten --interval)")
    if baseline_mw is not None:
        result["baseline_mw"] = baseline_mw
        result["dynamic_mj_per_inference"] = (mean_mw - baseline_mw) * duration / n_inferences
    return result


@dataclass
class TegraStatsSampler:
    """Context manager running ``tegrastats --interval <ms>`` in the background.

    ``with TegraStatsSampler(100) as s: t0 = s.now(); run(); t1 = s.now()`` then
    ``energy_per_inference(s.samples, n, t0, t1)``. Lines are stamped on arrival with :meth:`now`
    (``stdbuf -oL`` is used when present so a pipe does not batch lines). If tegrastats dies early,
    sampling just stops: ``returncode`` and ``errors`` say why."""

    interval_ms: int = 100
    executable: str = "tegrastats"
    samples: list[TegraSample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # unparsed output lines (last 20)
    returncode: int | None = None
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _t0: float = field(default=0.0, repr=False)

    def now(self) -> float:
        """Seconds on the samples' clock."""
        return time.perf_counter() - self._t0

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> "TegraStatsSampler":
        path = shutil.which(self.executable)
        if path is None:
            raise RuntimeError(
                f"{self.executable!r} not found on PATH. Energy measurement needs an NVIDIA Jetson: tegrastats "
                "ships with L4T/JetPack (/usr/bin/tegrastats, package nvidia-l4t-tools). Run the bench on the "
                "board itself (inside a container, mount /usr/bin/tegrastats), or drop the energy option.")
        cmd = [path, "--interval", str(int(self.interval_ms))]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", *cmd]
        self._t0 = time.perf_counter()
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._thread = threading.Thread(target=self._read, name="tegrastats-reader", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            t = self.now()
            try:
                sample = parse_line(line, t)
            except ValueError:
                self.errors = (self.errors + [line.strip()])[-20:]
                continue
            if sample is not None:
                self.samples.append(sample)

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self.returncode = self._proc.returncode
        if self._thread is not None:
            self._thread.join(timeout=3)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
