"""Gate tolerances and reference numbers, shaped like NNCF's conformance data
(``tests/post_training/data/ptq_reference_data.yaml``).

Two files, each number in exactly one of them:

- ``edge_fgic/reference_defaults.yaml`` (package data, so an installed edge-fgic has it): the gates'
  tolerances, i.e. the export round trip per precision (per-target exceptions each carry a reason) and the
  bench's largest top-1 drop. The export gate reads them through :func:`export_tolerance` and
  :func:`export_target_tolerance`, the bench gate through :func:`bench_max_drop`.
- ``benchmarks/reference.yaml`` (the repository's benchmarks; not installed): per model × target × precision,
  the expected top-1 / drop / agreement of the committed ``bench.json`` rows, a tolerance, and a recorded reason
  for every accepted gap. It names the defaults file above for the gates it re-applies. :func:`load_reference`
  reads it; :func:`check_entry` compares measured rows with it as NNCF's pipeline does:
  ``np.isclose(value, reference, atol)``, "Regression" or "Improvement" outside it, and a ``*_xfail_reason``
  turns that failure into an expected one (a reason whose check passes is itself a failure: "Unexpected pass").

Imports nothing else of edge_fgic: the bench layer, read by export (never the reverse).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import exc_line

DEFAULTS_FILE = "reference_defaults.yaml"        # in the edge_fgic package
TOLERANCE_KEYS = ("min_agreement", "max_rel_diff")
METRICS = {"top1": True, "drop": False, "agreement": True}   # metric -> higher is better
CHECKS = ("status", "metrics", "gate", "speed")              # each has an optional <check>_xfail_reason
ENTRY_KEYS = {"artifact", "label", "atol", "note", *METRICS, *(f"{c}_xfail_reason" for c in CHECKS)}
ROUNDING = 0.005                                             # reference values are written to 2 decimals


# ------------------------------------------------------------------ the gates' defaults (package data)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _mapping(x: Any, where: str) -> dict:
    if not isinstance(x, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(x).__name__}")
    return x


def _only(d: dict, allowed: Iterable[str], where: str, required: Iterable[str] = ()) -> None:
    allowed, required = set(allowed), set(required)
    if set(d) - allowed:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(map(str, set(d) - allowed)))}; "
                         f"allowed: {', '.join(sorted(allowed))}")
    if required - set(d):
        raise ValueError(f"{where}: missing {', '.join(sorted(required - set(d)))}")


def _tolerance(d: Any, where: str, *, exception: bool) -> dict[str, float | None]:
    d = _mapping(d, where)
    _only(d, (*TOLERANCE_KEYS, "reason") if exception else TOLERANCE_KEYS, where,
          ("reason",) if exception else TOLERANCE_KEYS)
    if exception and not (isinstance(d["reason"], str) and d["reason"].strip()):
        raise ValueError(f"{where}: an exception to the round-trip gate needs its reason")
    out: dict[str, float | None] = {}
    for k in TOLERANCE_KEYS:
        if k not in d:
            continue
        if d[k] is not None and not _number(d[k]):  # YAML reads 1e-5 (no dot) as a string: write 1.0e-5
            raise ValueError(f"{where}.{k}: {d[k]!r} is not a number (write exponents as 1.0e-5)")
        out[k] = None if d[k] is None else float(d[k])
    if not 0.0 <= (out.get("min_agreement") or 0.0) <= 100.0:
        raise ValueError(f"{where}.min_agreement: a percentage in [0, 100]")
    return out


def validate_defaults(data: Any, where: str) -> dict[str, Any]:
    """The defaults file's content, checked; numbers as floats, exceptions keyed by (target, precision)."""
    data = _mapping(data, where)
    _only(data, ("export", "bench"), where, ("export", "bench"))
    export = _mapping(data["export"], f"{where}: export")
    _only(export, ("round_trip", "targets"), f"{where}: export", ("round_trip",))
    round_trip = {str(p): _tolerance(t, f"{where}: export.round_trip.{p}", exception=False)
                  for p, t in _mapping(export["round_trip"], f"{where}: export.round_trip").items()}
    targets: dict[tuple[str, str], dict[str, float | None]] = {}
    for target, per in _mapping(export.get("targets") or {}, f"{where}: export.targets").items():
        for precision, t in _mapping(per, f"{where}: export.targets.{target}").items():
            if precision not in round_trip:
                raise ValueError(f"{where}: export.targets.{target}.{precision}: no such precision in round_trip")
            targets[(str(target), str(precision))] = _tolerance(t, f"{where}: export.targets.{target}.{precision}",
                                                                exception=True)
    bench = _mapping(data["bench"], f"{where}: bench")
    _only(bench, ("max_drop",), f"{where}: bench", ("max_drop",))
    if not _number(bench["max_drop"]):
        raise ValueError(f"{where}: bench.max_drop: {bench['max_drop']!r} is not a number")
    return {"export": {"round_trip": round_trip, "targets": targets}, "bench": {"max_drop": float(bench["max_drop"])}}


def defaults_path() -> Path:
    """Where the package's defaults file is (for messages and the test that there is one copy)."""
    return Path(str(resources.files("edge_fgic").joinpath(DEFAULTS_FILE)))


@functools.lru_cache(maxsize=4)
def _read_defaults(path: str) -> dict[str, Any]:
    """"" = the package's file, read through importlib.resources (works from any installed layout)."""
    where = path or f"edge_fgic/{DEFAULTS_FILE}"
    try:
        text = Path(path).read_text(encoding="utf-8") if path else \
            resources.files("edge_fgic").joinpath(DEFAULTS_FILE).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{where}: cannot read the gate defaults ({exc_line(exc, 240)})") from None
    return validate_defaults(data, where)


def load_defaults(path: str | Path | None = None) -> dict[str, Any]:
    """The gate defaults (a fresh copy; callers may change it): the package's file unless ``path`` is given."""
    return copy.deepcopy(_read_defaults(str(Path(path).resolve()) if path else ""))


def export_tolerance() -> dict[str, dict[str, float | None]]:
    """Round-trip gate per precision: ``{"fp32": {"min_agreement": 99.0, "max_rel_diff": 1e-05}, ...}``."""
    return load_defaults()["export"]["round_trip"]


def export_target_tolerance() -> dict[tuple[str, str], dict[str, float | None]]:
    """Per-(target, precision) exceptions to :func:`export_tolerance` (their reasons stay in the file)."""
    return load_defaults()["export"]["targets"]


def bench_max_drop() -> float:
    """The bench gate: the largest top-1 drop (points) an exported artifact may have against the reference."""
    return load_defaults()["bench"]["max_drop"]


def gated(row: dict[str, Any]) -> bool:
    """Whether the bench gate judges this row: deployable artifacts as deployed (and ISA-capped rows: real
    machines); checkpoints (.pt, e.g. the teacher) and opt-in bf16/f16 rows are listed for comparison."""
    return not str(row["artifact"]).endswith(".pt") and (row.get("variant") or {}).get("precision", "auto") == "auto"


# ------------------------------------------------------------------ benchmarks/reference.yaml


def parse_key(key: str) -> tuple[str, str, str, str]:
    """``<model>_<target>_<precision>[_<variant>]`` -> (model, target, precision, variant); models use no "_"."""
    parts = key.split("_", 3)
    if len(parts) < 3 or not all(parts[:3]):
        raise ValueError(f"{key}: an entry is named <model>_<target>_<precision>[_<variant>]")
    return parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else ""


@dataclass
class Reference:
    path: Path
    defaults_path: Path
    gates: dict[str, Any]            # validate_defaults() of defaults_path
    checks: dict[str, float]         # atol_images, min_int8_speedup
    models: dict[str, str]
    entries: dict[str, dict[str, Any]]

    def by_row(self) -> dict[tuple[str, str], str]:
        """(artifact as bench.json records it, row label) -> entry key."""
        return {(e["artifact"], e.get("label", "")): k for k, e in self.entries.items()}


def row_id(row: dict[str, Any]) -> tuple[str, str]:
    return str(row["artifact"]), str((row.get("variant") or {}).get("label") or "")


def load_reference(path: str | Path) -> Reference:
    """Read and check ``benchmarks/reference.yaml``; ``defaults:`` is a path relative to it."""
    p = Path(path)
    data = _mapping(yaml.safe_load(p.read_text(encoding="utf-8")), str(p))
    _only(data, ("defaults", "checks", "models", "entries"), str(p), ("defaults", "checks", "models", "entries"))
    dpath = (p.parent / str(data["defaults"])).resolve()
    checks = _mapping(data["checks"], f"{p}: checks")
    _only(checks, ("atol_images", "min_int8_speedup"), f"{p}: checks", ("atol_images", "min_int8_speedup"))
    if not all(_number(v) for v in checks.values()):
        raise ValueError(f"{p}: checks: numbers only")
    models = {str(k): str(v) for k, v in _mapping(data["models"], f"{p}: models").items()}
    entries = {str(k): _mapping(v, f"{p}: {k}") for k, v in _mapping(data["entries"], f"{p}: entries").items()}
    seen: dict[tuple[str, str], str] = {}
    for key, e in entries.items():
        model, *_ = parse_key(key)
        _only(e, ENTRY_KEYS, f"{p}: {key}", ("artifact",))
        if model not in models:
            raise ValueError(f"{p}: {key}: model {model!r} is not described under models:")
        for m in METRICS:
            if m in e and not _number(e[m]):
                raise ValueError(f"{p}: {key}.{m}: {e[m]!r} is not a number")
        for r in (k for k in e if k.endswith("_xfail_reason")):
            if not (isinstance(e[r], str) and e[r].strip()):
                raise ValueError(f"{p}: {key}.{r}: write the reason")
        atol = e.get("atol")
        if atol is not None and not (_number(atol) or isinstance(atol, dict) and set(atol) <= set(METRICS)
                                     and all(map(_number, atol.values()))):
            raise ValueError(f"{p}: {key}.atol: a number of points, or {{top1: .., drop: .., agreement: ..}}")
        rid = (str(e["artifact"]), str(e.get("label", "")))
        if rid in seen:
            raise ValueError(f"{p}: {key} and {seen[rid]} name the same row {rid}")
        seen[rid] = key
    return Reference(p, dpath, load_defaults(dpath), {k: float(v) for k, v in checks.items()}, models, entries)


# ------------------------------------------------------------------ checking measured rows


@dataclass
class Finding:
    key: str
    check: str            # status | metrics | gate | speed | name | reason
    kind: str             # Regression | Improvement | Gate | Slower | Mismatch | Unexpected pass
    message: str
    reason: str = ""      # the entry's recorded reason: an expected failure

    @property
    def expected(self) -> bool:
        return bool(self.reason)


def atol_for(entry: dict[str, Any], metric: str, images: int, checks: dict[str, float]) -> float:
    """The entry's ``atol`` (points; a number or per metric), else ``checks.atol_images`` images' worth."""
    atol = entry.get("atol")
    if isinstance(atol, dict):
        atol = atol.get(metric)
    if atol is None:
        atol = checks["atol_images"] * 100.0 / max(1, int(images))
    return float(atol)


def suggest(row: dict[str, Any], key: str = "") -> str:
    """A reference.yaml line for a measured row (what to paste when a new result is accepted)."""
    key = key or f"<model>_{row.get('target')}_{row.get('precision')}"
    label = row_id(row)[1]
    vals = ", ".join(f"{m}: {row[m]:.2f}" for m in METRICS if row.get(m) is not None)
    return f"{key}: {{artifact: {row['artifact']}{', label: ' + label if label else ''}, {vals}}}"


def _p50(row: dict[str, Any]) -> float | None:
    return ((row.get("latency_ms") or {}).get("p50")) or None


def compare_metrics(entry: dict[str, Any], key: str, row: dict[str, Any], images: int,
                    checks: dict[str, float], where: str = "") -> list[tuple[str, str]]:
    """(kind, message) per metric outside its tolerance: NNCF's ``np.isclose(value, reference, atol)``."""
    out = []
    for metric, higher in METRICS.items():
        if metric not in entry:
            continue
        value, expected = row.get(metric), float(entry[metric])
        atol = atol_for(entry, metric, images, checks)
        if value is None:
            out.append(("Regression", f"Regression: {key} has no {metric} {where}"))
        elif not np.isclose(float(value), expected, rtol=0.0, atol=atol + ROUNDING):
            kind = "Improvement" if (value > expected) == higher else "Regression"
            message = (f"{kind}: {key} {metric} {value:.2f} vs reference {expected:.2f} ± {atol:.2f} {where}; "
                       f"if it is accepted: {suggest(row, key)}")
            out.append((kind, message))
    return out


def check_entry(ref: Reference, key: str, reports: dict[str, dict[str, Any]]) -> list[Finding]:
    """Every check of one entry against every report row it names; ``reports``: {name: bench.json content}."""
    entry = ref.entries[key]
    _, target, precision, _ = parse_key(key)
    max_drop, min_speedup = ref.gates["bench"]["max_drop"], ref.checks["min_int8_speedup"]
    fp32 = ref.entries.get(f"{key.split('_')[0]}_{target}_fp32") if precision == "int8" else None
    out: list[Finding] = []
    failed: set[str] = set()

    def add(check: str, kind: str, message: str) -> None:
        failed.add(check)
        out.append(Finding(key, check, kind, message, str(entry.get(f"{check}_xfail_reason", ""))))

    for name, rep in reports.items():
        rows = {row_id(r): r for r in rep.get("rows", [])}
        row = rows.get((entry["artifact"], entry.get("label", "")))
        if row is None:
            continue
        where = f"({name}: {row['artifact']})"
        if (row.get("target"), row.get("precision")) != (target, precision):
            out.append(Finding(key, "name", "Mismatch", f"Mismatch: {key} names {target} {precision}, the row is "
                                                        f"{row.get('target')} {row.get('precision')} {where}"))
        if row.get("status") != "ok":
            add("status", "Regression", f"Regression: {key} did not run "
                                        f"({row.get('reason') or row.get('status')}) {where}")
            continue
        for kind, message in compare_metrics(entry, key, row, rep.get("images", 0), ref.checks, where):
            add("metrics", kind, message)
        drop = row.get("drop")
        if row.get("gated", gated(row)) and drop is not None and drop > max_drop:  # the harness passes drop <= max_drop
            add("gate", "Gate", f"Gate: {key} loses {drop:.2f} pt of top-1 > the bench gate's {max_drop:g} pt {where}")
        base = rows.get((fp32["artifact"], fp32.get("label", ""))) if fp32 else None
        if base is not None and base.get("status") == "ok" and _p50(base) and _p50(row):
            speedup = _p50(base) / _p50(row)
            if speedup < min_speedup:
                add("speed", "Slower", f"Slower: {key} p50 {_p50(row):.3f} ms is {speedup:.2f}x its FP32's "
                                       f"{_p50(base):.3f} ms (expected >= {min_speedup:g}x) {where}")
    for check in CHECKS:
        if entry.get(f"{check}_xfail_reason") and check not in failed:
            out.append(Finding(key, "reason", "Unexpected pass",
                               f"Unexpected pass: {key} records a {check}_xfail_reason but its {check} check passes "
                               "in every report: remove the reason"))
    return out


def unmatched_rows(ref: Reference, reports: dict[str, dict[str, Any]]) -> list[str]:
    """Report rows without an entry, each with the line to add."""
    known = ref.by_row()
    return [f"{name}: no reference entry for {row['artifact']}; add e.g. {suggest(row)}"
            for name, rep in reports.items() for row in rep.get("rows", []) if row_id(row) not in known]


def unused_entries(ref: Reference, reports: dict[str, dict[str, Any]]) -> list[str]:
    """Entries that no report has a row for (stale, or their report is not committed)."""
    seen = {row_id(row) for rep in reports.values() for row in rep.get("rows", [])}
    return [k for rid, k in ref.by_row().items() if rid not in seen]
