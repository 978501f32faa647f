#!/usr/bin/env python
"""Tables for benchmarks/teachers.md from one ``edge-fgic bench`` over the teacher's and the student's artifacts.

    .venv/bin/python benchmarks/teachers/report.py benchmarks/teachers/oxford17/bench.json

Per runtime, both models side by side: top-1, the INT8 artifact's Δ top-1 vs the same model's FP32 artifact on the
same images (bench's drop is against the student checkpoint, so this table takes the difference of the two top-1s),
p50 latency (median over interleaved rounds), INT8 speed-up over the same model's FP32 (median of per-round
ratios), size, and what ran (read back). Then the accuracy/latency Pareto front over every artifact.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "peers"))
from report import RUNTIME, ran_as, round_p50s  # noqa: E402


def model_of(row: dict) -> str:
    """Checkpoints by their run folder (teacher/best.pt), exports by their stem (teacher-fp32.onnx)."""
    p = Path(row["artifact"])
    stem = p.parent.name if p.suffix == ".pt" else p.name
    if p.suffix == ".pt" and p.parent.parent.name == "lite0-128" or stem.startswith("lite128"):
        return "EfficientNet-Lite0 128 px"
    if stem.startswith("teacher-unsigned"):
        return "EfficientNet-Lite0 (teacher), unsigned PTQ"
    return "EfficientNet-Lite0 (teacher)" if stem.startswith("teacher") else "ConvNeXt student"


MODELS = ("ConvNeXt student", "EfficientNet-Lite0 (teacher)", "EfficientNet-Lite0 (teacher), unsigned PTQ",
          "EfficientNet-Lite0 128 px")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench_json", type=Path)
    args = ap.parse_args(argv)
    rep = json.loads(args.bench_json.read_text())
    rounds = int(rep["config"].get("rounds") or 1)
    rows = [r for r in rep["rows"] if r.get("status") == "ok" and not r.get("variant")]
    m = (rep.get("machine") or {}).get("cpu") or {}
    print(f"Machine: {m.get('model', '?')}, {m.get('logical_cores', '?')} cores; "
          f"ISA {', '.join(m.get('isa', []) or []) or '?'}; "
          f"{rep['config'].get('threads')} threads, "
          f"batch 1, {rounds} interleaved rounds; {rep['images']} val images.\n")
    print("| model | runtime | precision | top-1 % | INT8 Δ vs own FP32 (pt) | p50 ms | INT8 speed-up | size MB "
          "| ran as (read back) |")
    print("|---|---|---|---|---|---|---|---|---|")
    pareto = []
    for ext, runtime in [(".pt", "PyTorch (eager)"), *RUNTIME.items()]:
        here = [r for r in rows if Path(r["artifact"]).suffix == ext]
        for model in MODELS:
            mine = [r for r in here if model_of(r) == model]
            own = "EfficientNet-Lite0 (teacher)" if model.endswith("unsigned PTQ") else model  # its FP32 row
            fp32 = next((r for r in here if model_of(r) == own and r.get("precision") == "fp32"), None)
            for r in sorted(mine, key=lambda r: (r.get("precision") != "fp32", r["name"])):
                p50s = round_p50s(r, rounds)
                p50 = float(np.median(p50s))
                delta = speed = ""
                if fp32 is not None and r is not fp32 and r.get("precision") != "fp32":
                    delta = f"{r['top1'] - fp32['top1']:+.2f}"
                    f50 = round_p50s(fp32, rounds)
                    if len(f50) == len(p50s):
                        ratios = [a / b for a, b in zip(f50, p50s)]
                        speed = f"{np.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
                print(f"| {model} | {runtime} | {r.get('precision')} | {r['top1']:.2f} | {delta} | {p50:.3f} "
                      f"| {speed} | "
                      f"{r.get('size_mb', 0):.2f} | {ran_as(r) if ext != '.pt' else 'torch'} |")
                pareto.append((p50, r["top1"], f"{model}, {runtime}, {r.get('precision')}"))
    front, best = [], -1.0
    for p50, top1, label in sorted(pareto):
        if top1 > best:
            front.append((p50, top1, label))
            best = top1
    print("\nPareto front (faster and at least as accurate than everything slower):\n")
    print("| p50 ms | top-1 % | artifact |\n|---|---|---|")
    for p50, top1, label in front:
        print(f"| {p50:.3f} | {top1:.2f} | {label} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
