#!/usr/bin/env python
"""benchmarks/techniques/<name>.json and .md from the cells benchmarks/techniques/run.sh trained.

    .venv/bin/python benchmarks/techniques/report.py runs/techniques/demo [--name demo]

Per variant (baseline, + triplet, + attention, + both) over its seeds: val top-1, macro F1, recall@1/5 (leave-one-out
retrieval on the pre-logits embedding) and the separation of the most-confused pairs (centroid distance / mean class
spread: it grows when the margin between look-alike classes grows), as mean, standard deviation and range; the
difference to the baseline paired by seed; and seed 0's most-confused pairs with their separation.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

VARIANTS = ("baseline", "triplet", "attention", "both")
LABEL = {"baseline": "recipe as is", "triplet": "+ triplet loss", "attention": "+ attention head",
         "both": "+ triplet + attention"}
METRICS = (("top1", "top-1 %"), ("macro_f1", "macro F1 %"), ("recall@1", "recall@1 %"), ("recall@5", "recall@5 %"),
           ("separation", "separation (top-5 pairs)"))


def cpu_line() -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from edge_fgic.bench.sysinfo import cpu_info
    c = cpu_info()
    return f"{c.get('model')}, {c.get('logical_cores')} logical cores; {', '.join(c.get('isa', []))}"


def cell(metrics: dict) -> dict:
    emb = metrics.get("embedding") or {}
    seps = [p["separation"] for p in emb.get("confused_pairs", [])[:5] if p.get("separation") is not None]
    return {"top1": metrics.get("top1"), "macro_f1": metrics.get("macro_f1"), "recall@1": metrics.get("recall@1"),
            "recall@5": metrics.get("recall@5"), "separation": statistics.fmean(seps) if seps else None,
            "pairs": [{k: p.get(k) for k in ("a", "b", "total", "distance", "separation")}
                      for p in emb.get("confused_pairs", [])[:5]]}


def summary(values: list[float]) -> dict:
    v = [x for x in values if x is not None]
    if not v:
        return {"n": 0}
    return {"n": len(v), "mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v), "max": max(v)}


def fmt(s: dict, digits: int = 2) -> str:
    if not s.get("n"):
        return "–"
    if s["n"] == 1:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, help="the OUT folder of run.sh (cells VARIANT-sSEED)")
    ap.add_argument("--name", default="", help="result name (default: the folder's name)")
    args = ap.parse_args(argv)
    name = args.name or args.runs.name
    cells: dict[str, dict[int, dict]] = {v: {} for v in VARIANTS}
    recipe = ""
    for d in sorted(args.runs.iterdir()):
        m = d / "eval-val" / "metrics.json"
        if not (d.is_dir() and m.exists() and "-s" in d.name):
            continue
        variant, seed = d.name.rsplit("-s", 1)
        if variant in cells:
            cells[variant][int(seed)] = cell(json.loads(m.read_text()))
            cfg = d / "config.yaml"
            recipe = recipe or (cfg.read_text().split("\n", 1)[0] if cfg.exists() else "")
    seconds: dict[str, list[int]] = {}
    sec_file = args.runs / "seconds.txt"
    if sec_file.exists():
        for line in sec_file.read_text().splitlines():
            v, _, s = line.split()
            seconds.setdefault(v, []).append(int(s))
    rows = {}
    for v in VARIANTS:
        seeds = sorted(cells[v])
        row = {key: summary([cells[v][s][key] for s in seeds]) for key, _ in METRICS}
        base = cells["baseline"]
        paired = [s for s in seeds if s in base]
        row["delta_vs_baseline"] = {key: summary([cells[v][s][key] - base[s][key] for s in paired
                                                  if cells[v][s][key] is not None and base[s][key] is not None])
                                    for key, _ in METRICS}
        row["seeds"] = seeds
        row["seconds"] = summary(seconds.get(v, []))
        rows[v] = row
    load = (args.runs / "load.txt").read_text().strip() if (args.runs / "load.txt").exists() else ""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {"name": name, "runs": str(args.runs), "cpu": cpu_line(), "python": platform.python_version(),
           "commit": commit, "load": load, "variants": rows, "cells": cells}
    here = Path(__file__).resolve().parent
    (here / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [f"### {name}: {args.runs} ({recipe.strip('# ').strip() or 'recipe in the cells config.yaml'})", "",
             f"CPU: {out['cpu']}; commit {out['commit']}; load {load.splitlines()[0] if load else '?'}", "",
             "| variant | " + " | ".join(lbl for _, lbl in METRICS) + " | s per run |",
             "|---|" + "---|" * (len(METRICS) + 1)]
    for v in VARIANTS:
        r = rows[v]
        lines.append(f"| {LABEL[v]} ({len(r['seeds'])} seeds) | " + " | ".join(fmt(r[k]) for k, _ in METRICS)
                     + f" | {fmt(r['seconds'], 0)} |")
    lines += ["", "Difference to the baseline, paired by seed (mean ± std, range):", "",
              "| variant | " + " | ".join(lbl for _, lbl in METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    for v in VARIANTS[1:]:
        d = rows[v]["delta_vs_baseline"]
        lines.append(f"| {LABEL[v]} | " + " | ".join(fmt(d[k]) for k, _ in METRICS) + " |")
    lines += ["", "Seed 0's five most-confused pairs (errors both ways; separation = centroid distance / mean "
              "spread):", ""]
    for v in VARIANTS:
        c0 = cells[v].get(0)
        if c0:
            pairs = "; ".join(f"{p['a']}/{p['b']} {p['total']} err, sep {p['separation']:.2f}"
                              for p in c0["pairs"] if p.get("separation") is not None)
            lines.append(f"- {LABEL[v]}: {pairs}")
    (here / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
