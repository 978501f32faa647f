"""The GEMM peaks of benchmarks/portability.md: each runtime's own fp32 / int8 kernels at 1 and 2 threads.

    .venv/bin/python benchmarks/portability/gemm_peaks.py \\
        --out benchmarks/portability/gemm-peaks-xeon-avx512bf16-amx.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_fgic.bench.roofline import gemm_peak
from edge_fgic.bench.sysinfo import cpu_info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="")
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    res = {"cpu": cpu_info(), "peaks": {f"{p}/{t}t": gemm_peak(p, threads=t, seconds=a.seconds)
                                        for t in (1, 2) for p in ("fp32", "int8")}}
    for key, peak in res["peaks"].items():
        others = {n: round(b["macs_per_s"] / 1e9, 1) for n, b in (peak.get("backends") or {}).items()
                  if b.get("macs_per_s")}
        print(f"{key}: best {peak['macs_per_s'] / 1e9:.1f} GMAC/s by {peak['backend']}; {others}")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
