"""Collect every ``*.json`` sidecar of an export folder into one markdown table (and a JSON list).

    .venv/bin/python benchmarks/export/report.py runs/o17-export [--json benchmarks/export/oxford17.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ORDER = {"onnx": 0, "tensorrt": 1, "openvino": 2, "tflite": 3}
PREC = {"fp32": 0, "fp16": 1, "int8": 2}


def rows(folder: Path) -> list[dict]:
    out = []
    for side in sorted(folder.glob("*.json")):
        m = json.loads(side.read_text())
        if m.get("schema") != "edge-fgic/manifest":
            continue
        rt = m.get("round_trip") or {}
        out.append({
            "artifact": m["artifact"]["file"], "target": m["artifact"]["target"],
            "precision": m["artifact"]["precision"],
            "size_mb": round(m["files"]["size_bytes"] / 1e6, 3), "build_s": m["export"].get("build_seconds"),
            "runtime": rt.get("runtime"), "images": rt.get("images"), "max_abs_diff": rt.get("max_abs_diff"),
            "agreement": rt.get("agreement"), "artifact_top1": rt.get("artifact_top1"),
            "reference_top1": rt.get("reference_top1"),
            "reference": "INT8 NNCF model" if m["artifact"]["precision"] == "int8" else "FP32 PyTorch",
            "activations": (m.get("quantization") or {}).get("activations", ""),
        })
    return sorted(out, key=lambda r: (ORDER.get(r["target"], 9), PREC.get(r["precision"], 9), r["artifact"]))


def markdown(rs: list[dict]) -> str:
    head = ("| target | precision | artifact | size MB | build s | round trip in | images | max abs Δ logit "
            "| agreement % | artifact top-1 | reference top-1 (reference) |")
    lines = [head, "|---|---|---|---:|---:|---|---:|---:|---:|---:|---|"]
    for r in rs:
        lines.append(f"| {r['target']} | {r['precision']} | {r['artifact']} | {r['size_mb']:.2f} | {r['build_s']:.1f} "
                     f"| {r['runtime']} | "
                     f"{r['images']} | {r['max_abs_diff']:.3g} | {r['agreement']:.2f} | {r['artifact_top1']:.2f} | "
                     f"{r['reference_top1']:.2f} ({r['reference']}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    rs = rows(a.folder)
    if a.json:
        a.json.write_text(json.dumps(rs, indent=2) + "\n")
    print(markdown(rs))
