"""Markdown tables for benchmarks/quantization.md from int8_latency.py's JSON (no hand-copied numbers).

    .venv/bin/python benchmarks/quantization/report.py benchmarks/quantization/oxford17.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "—"


def render(path: str) -> str:
    r = json.loads(Path(path).read_text())
    lines = [f"Input {r['input_size']} px, batch 1, median of {r['runs']} runs; val = {r['val_images']} images. "
             "Versions: " + ", ".join(f"{k} {v.split('-')[0]}" for k, v in r["machine"].items() if k != "cpu") + ".",
             ""]
    t = r["teacher"]
    lines += ["**Accuracy** (val top-1 %; agreement = same top-1 class as the reference, %)", "",
              "| student | FP32 top-1 | INT8 | TensorRT-legal | NNCF INT8 top-1 | drop (pt) | agreement vs FP32 "
              "| deployed ONNX top-1 | ONNX vs NNCF agreement | ONNX vs NNCF max abs logit diff |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for s in r["students"]:
        name = f"{Path(s['checkpoint']).parent.name} ({s.get('variant') or '?'})"
        lines.append(f"| {name} | {s['fp32_val_top1']:.2f} | — | — | — | — | — | — | — | — |")
        for q in s["int8"]:
            lines.append(
                f"| | | {Path(q['run']).name} ({q['mode']}) | "
                f"{'yes' if q['tensorrt_violations'] == 0 else 'no (' + str(q['tensorrt_violations']) + ' Q/DQ)'} "
                f"| {q['nncf_val_top1']:.2f} | {s['fp32_val_top1'] - q['nncf_val_top1']:+.2f} "
                f"| {q['nncf_agreement_vs_fp32']:.2f} "
                f"| {q['onnx_val_top1']:.2f} | {q['onnx_agreement_vs_nncf']:.2f} "
                f"| {q['onnx_max_abs_diff_vs_nncf']:.3f} |")
    lines += ["", "**Latency** (ms; INT8 ONNX with activations rewritten to uint8, exact; speed-up = median over 5 "
              "rounds of FP32 / INT8 timed back to back, same runtime and threads)", "",
              "| model | precision | ORT 1t | ORT 2t | OpenVINO 1t | OpenVINO 2t | PyTorch eager 1t | PyTorch eager 2t "
              "| ONNX size |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines.append(f"| teacher ({t['model']['name']}, {t['model']['kwargs'].get('norm_layer', 'layernorm')}) "
                 "| FP32 | | | | "
                 f"| {t['torch_1t']:.2f} | {t['torch_2t']:.2f} | |")
    lines.append("| stock convnext_tiny (random weights: the GPU recipes' teacher) | FP32 | | | | "
                 f"| {t['convnext_tiny_torch_1t']:.2f} | {t['convnext_tiny_torch_2t']:.2f} | |")
    for s in r["students"]:
        f = s["fp32"]
        name = Path(s["checkpoint"]).parent.name
        size = s["int8"][0]["size_bytes"]["fp32_onnx"] / 1e6 if s["int8"] else 0
        lines.append(f"| {name} | FP32 | {f['ort_1t']:.3f} | {f['ort_2t']:.3f} | {f['ov_1t']:.3f} | {f['ov_2t']:.3f} "
                     f"| {f['torch_1t']:.2f} | {f['torch_2t']:.2f} | {size:.2f} MB |")
        for q in s["int8"]:
            u = q["latency_u8"]
            sp = q.get("speedup_u8") or {k: f[k] / u[k] for k in u}
            lines.append(f"| {Path(q['run']).name} | INT8 | {u['ort_1t']:.3f} ({sp['ort_1t']:.2f}x) "
                         f"| {u['ort_2t']:.3f} ({sp['ort_2t']:.2f}x) "
                         f"| {u['ov_1t']:.3f} ({sp['ov_1t']:.2f}x) | {u['ov_2t']:.3f} ({sp['ov_2t']:.2f}x) | | "
                         f"| {q['size_bytes']['int8_onnx'] / 1e6:.2f} MB |")
    lines += ["", "**Same INT8 graphs with their activations as quantized** (signed runs: int8, the TensorRT form), "
              "onnxruntime / OpenVINO ms:", "",
              "| INT8 run | ORT 1t | ORT 2t | OpenVINO 1t | OpenVINO 2t |", "|---|---|---|---|---|"]
    for s in r["students"]:
        for q in s["int8"]:
            a = q["latency_as_quantized"]
            lines.append(f"| {Path(q['run']).name} | {a['ort_1t']:.3f} | {a['ort_2t']:.3f} | {a['ov_1t']:.3f} "
                         f"| {a['ov_2t']:.3f} |")
    best = min((q["latency_u8"][k], k, Path(q["run"]).name, s) for s in r["students"] for q in s["int8"]
               for k in q["latency_u8"])
    lines += [
        "", f"Fastest deployed INT8: {best[2]} on {best[1]} at {best[0]:.3f} ms; "
        f"teacher eager {t['torch_1t'] if best[1].endswith('1t') else t['torch_2t']:.2f} ms "
        f"at the same threads ({_ratio(t['torch_1t'] if best[1].endswith('1t') else t['torch_2t'], best[0])}); "
        "convnext_tiny eager "
        f"{_ratio(t['convnext_tiny_torch_1t'] if best[1].endswith('1t') else t['convnext_tiny_torch_2t'], best[0])}."]
    return "\n".join(lines)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(render(p))
        print()
