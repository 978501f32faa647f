#!/usr/bin/env python
"""Tables for benchmarks/peers.md from one ``edge-fgic bench`` report over ours + the peers.

    .venv/bin/python benchmarks/peers/report.py benchmarks/peers/demo/bench.json

Per runtime: every row (ours FP32, ours INT8, each peer) with top-1, drop [95 % CI], agreement, p50 ms and the
speed-up over the same runtime's FP32 (median over the interleaved rounds of the per-round p50 ratio, with the
range over rounds); then ours vs the best peer on that runtime. Best peer = among the peers within the bench gate
(drop <= --max-drop), those within TIE of the fastest p50, the one with the highest agreement; if no peer is
within the gate, the most accurate one; where we export several INT8 forms (signed / unsigned), "ours" is picked
from them by the same rule. Speed verdicts: "faster"/"slower" only when every round says so, else "tie".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

TIE = 0.05  # p50 within 5 % of the fastest peer: tied on speed, agreement decides
RUNTIME = {".onnx": "onnxruntime", ".xml": "OpenVINO", ".tflite": "LiteRT (XNNPACK)"}


def round_p50s(row: dict, rounds: int) -> list[float]:
    s = row.get("latency_samples_ms") or []
    if rounds > 1 and s and len(s) % rounds == 0:
        n = len(s) // rounds
        return [float(np.median(s[i * n:(i + 1) * n])) for i in range(rounds)]
    return [float(row["latency_ms"]["p50"])]


def is_ours_int8(name: str) -> bool:
    return not name.startswith("peer-") and "int8" in name


def who(name: str) -> str:
    if name.startswith("student-fp32"):
        return "ours FP32"
    if is_ours_int8(name):
        return "**ours INT8**"
    return "peer"


def best_of(rows: list[dict], gate: float) -> tuple[dict, bool]:
    """Among rows within the gate, those within TIE of the fastest p50, the highest agreement; else the most
    accurate."""
    ok = [r for r in rows if r["drop"] <= gate]
    if not ok:
        return max(rows, key=lambda r: r["top1"]), False
    fastest = min(r["latency_ms"]["p50"] for r in ok)
    return max((r for r in ok if r["latency_ms"]["p50"] <= fastest * (1 + TIE)), key=lambda r: r["agreement"]), True


def ran_as(row: dict) -> str:
    ex = row.get("execution") or {}
    eff = ex.get("effective") or {}
    text = eff.get("precision") or "?"
    if eff.get("integer_ops") is not None and (eff["integer_ops"] or ex.get("artifact_precision") == "int8"):
        text = f"int8 {eff['integer_ops']}/{eff.get('compute_ops', '?')} ops + {text}"
    elif eff.get("integer_graph"):
        text = f"int8 + {text}"
    elif ex.get("artifact_precision") == "int8" and ex.get("runtime") == "litert":
        text += " (int8 inside, float I/O: the runner's read-back keys on the input dtype)"
    d = eff.get("delegate")
    if isinstance(d, dict) and d.get("nodes") is not None:
        text += f", XNNPACK {d.get('delegated', '?')}/{d.get('nodes')} nodes"
    elif isinstance(d, str) and d:
        text += f", {d}"
    return text


def fmt_drop(r: dict) -> str:
    """Δ top-1 vs the reference in points (negative = a loss) and its paired-bootstrap 95 % CI, as bench.md shows it."""
    if r.get("drop") is None:
        return "ref"
    lo, hi = r["drop_ci"]  # bench's drop = reference - artifact
    return f"{0.0 - r['drop']:+.2f} [{0.0 - hi:+.2f}, {0.0 - lo:+.2f}]"


def head_to_head(ours: dict, peer: dict, rounds: int) -> tuple[float, float, float]:
    """peer p50 / our p50 per round: median, min, max (> 1 = ours faster)."""
    a, b = round_p50s(ours, rounds), round_p50s(peer, rounds)
    if len(a) != len(b):
        a, b = [ours["latency_ms"]["p50"]], [peer["latency_ms"]["p50"]]
    r = [y / x for x, y in zip(a, b)]
    return float(np.median(r)), min(r), max(r)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bench")
    a = ap.parse_args()
    rep = json.loads(Path(a.bench).read_text())
    rounds = int(rep["config"].get("rounds") or 1)
    gate = float(rep["config"].get("max_drop", 1.0))
    rows = [r for r in rep["rows"] if not r.get("reference") and not r.get("variant")]
    ref = next(r for r in rep["rows"] if r.get("reference"))
    m = rep["machine"]
    cpu = m["cpu"]
    print(f"Reference: `{rep['config']['reference']}` (PyTorch FP32, top-1 {ref['top1']:.2f} %), "
          f"{rep['images']} {rep['config']['split']} images of `{rep['config']['data']}`; "
          f"{rep['config']['threads']} threads, {rounds} interleaved rounds of {rep['config']['runs']} "
          "timed batch-1 runs.")
    print(f"CPU: {cpu['model']}, {cpu['logical_cores']} logical cores; ISA: {', '.join(cpu['isa'])}. "
          f"Libraries: {', '.join(f'{k} {v}' for k, v in m['libraries'].items())}.\n")
    verdicts = []
    for suffix, runtime in RUNTIME.items():
        group = [r for r in rows if Path(r["artifact"]).suffix == suffix and r.get("target") != "tensorrt"]
        if not group:
            continue
        fp32 = next((r for r in group if r["name"].startswith("student-fp32") and r.get("status") == "ok"), None)
        f_r = round_p50s(fp32, rounds) if fp32 else None
        print(f"#### {runtime}\n")
        mine = [r for r in group if is_ours_int8(r["name"]) and r.get("status") == "ok"]
        ours = best_of(mine, gate)[0] if mine else None
        print("| | artifact | top-1 | Δ top-1 [95 % CI] | agreement | p50 ms | speed-up vs FP32 [range over rounds] "
              "| its p50 / ours INT8 [rounds] | ran as |")
        print("|---|---|---:|---|---:|---:|---|---|---|")
        stats = {}
        for r in group:
            if r.get("status") != "ok":
                print(f"| {who(r['name'])} | `{r['name']}` | ✗ | {r.get('reason', '')[:120]} | | | | | |")
                continue
            p = round_p50s(r, rounds)
            if f_r and len(p) == len(f_r):
                ratios = [a_ / b_ for a_, b_ in zip(f_r, p)]
                sp = (float(np.median(ratios)), min(ratios), max(ratios))
            else:
                sp = (fp32["latency_ms"]["p50"] / r["latency_ms"]["p50"],) * 3 if fp32 else (float("nan"),) * 3
            stats[r["name"]] = sp
            if ours and r is not ours and r["name"].startswith("peer-"):
                h = head_to_head(ours, r, rounds)
                vs = f"{h[0]:.2f} [{h[1]:.2f}, {h[2]:.2f}]"
            else:
                vs = ""
            print(f"| {who(r['name'])} | `{r['name']}` | {r['top1']:.2f} | {fmt_drop(r)} | {r['agreement']:.2f} % | "
                  f"{r['latency_ms']['p50']:.3f} | {sp[0]:.2f}× [{sp[1]:.2f}, {sp[2]:.2f}] | {vs} | {ran_as(r)} |")
        print()
        peers = [r for r in group if r["name"].startswith("peer-") and r.get("status") == "ok"]
        if not ours or not peers:
            continue
        best, within = best_of(peers, gate)
        verdicts.append((runtime, ours, best, stats[ours["name"]], stats[best["name"]], within))
    print("#### Ours vs the best peer per runtime\n")
    print("| runtime | INT8 | Δ top-1 [95 % CI] | agreement | p50 ms | speed-up vs FP32 |")
    print("|---|---|---|---:|---:|---|")
    for runtime, ours, best, so, sb, _ in verdicts:
        for tag, r, s in (("ours", ours, so), ("best peer", best, sb)):
            print(f"| {runtime} | {tag}: `{r['name']}` | {fmt_drop(r)} | {r['agreement']:.2f} % | "
                  f"{r['latency_ms']['p50']:.3f} | {s[0]:.2f}× [{s[1]:.2f}, {s[2]:.2f}] |")
    print()
    for runtime, ours, best, so, sb, within in verdicts:
        med, lo, hi = head_to_head(ours, best, rounds)
        word = "faster" if lo > 1 else "slower" if hi < 1 else "tied on speed"
        d_agree = ours["agreement"] - best["agreement"]
        d_top1 = ours["top1"] - best["top1"]
        print(f"- {runtime}: vs `{best['name']}`: ours is {word} (peer p50 / our p50 = {med:.2f}, rounds "
              f"{lo:.2f}–{hi:.2f}; {ours['latency_ms']['p50']:.3f} vs {best['latency_ms']['p50']:.3f} ms), "
              f"top-1 {d_top1:+.2f} pt, agreement with FP32 {d_agree:+.2f} pt"
              f"{'' if within else ' (no peer within the gate; best = most accurate)'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
