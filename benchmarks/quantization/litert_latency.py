"""LiteRT (TFLite, XNNPACK) INT8 vs FP32 latency of the student variants, one run.

Until the export issue lands a TFLite route for NNCF's QAT model, this measures what the
*architecture* gets from INT8 on LiteRT: each FP32 student (deploy-folded) is converted
with litert-torch, and quantized with litert-torch's own PT2E post-training quantizer
(symmetric, per-channel weights, calibrated on 64 training images). Needs a venv with
litert-torch (it is not a project dependency yet):

    python3 -m venv /tmp/lt && /tmp/lt/bin/pip install -c constraints.txt litert-torch==0.10.0 torch torchvision timm \
        pyyaml typer rich scipy matplotlib safetensors pillow
    PYTHONPATH=. /tmp/lt/bin/python benchmarks/quantization/litert_latency.py runs/o17-bnrelu-kd/best.pt \
        runs/o17-stock-kd/best.pt runs/o17-bnhswish-kd/best.pt --out benchmarks/quantization/litert_oxford17.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from edge_fgic.timing import median_ms as _median_ms


def _as_input(inp: dict, x: np.ndarray) -> np.ndarray:
    """Quantize a float input when the model takes integers (full-integer INT8 models)."""
    if inp["dtype"] == np.float32:
        return x.astype(np.float32)
    scale, zp = inp["quantization"]
    info = np.iinfo(inp["dtype"])
    return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(inp["dtype"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpts", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args()

    import ai_edge_litert
    import litert_torch
    from ai_edge_litert.interpreter import Interpreter
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    from edge_fgic.data.datasets import open_split, parse_data_spec
    from edge_fgic.data.transforms import eval_transform
    from edge_fgic.models import load_model
    from edge_fgic.models.fuse import fuse_for_deploy

    tmp = Path(tempfile.mkdtemp(prefix="litert-"))
    report = {"runtime": f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '2.3.0')} (XNNPACK)",
              "converter": "litert-torch 0.10.0; INT8 = its PT2E PTQ (not the NNCF QAT model)", "students": []}
    for ck_path in a.ckpts:
        fp, ck = load_model(ck_path)
        model = fuse_for_deploy(fp).eval()
        size = ck.preprocess.input_size
        spec = parse_data_spec(ck.train_config["data"])
        tr = open_split(spec, "train", eval_transform(ck.preprocess), progress=False)
        val = open_split(spec, "val", eval_transform(ck.preprocess), progress=False)
        calib = [tr[i][0][None] for i in range(0, len(tr), max(1, len(tr) // 64))][:64]
        x = calib[0]
        fp_tfl = tmp / "fp32.tflite"
        litert_torch.convert(model, (x,)).export(str(fp_tfl))
        exported = torch.export.export(model, (x,)).module()
        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
            pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
        prepared = quantize_pt2e.prepare_pt2e(exported, quantizer)
        with torch.no_grad():
            for c in calib:
                prepared(c)
        converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
        q_tfl = tmp / "int8.tflite"
        litert_torch.convert(converted, (x,), quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(q_tfl))
        entry = {"checkpoint": ck_path, "variant": ck.train_config.get("variant"), "input_size": size,
                 "size_bytes": {"fp32": fp_tfl.stat().st_size, "int8": q_tfl.stat().st_size}}
        preds = {}
        for name, path in (("fp32", fp_tfl), ("int8", q_tfl)):
            for th in (1, 2):
                it = Interpreter(model_path=str(path), num_threads=th)
                it.allocate_tensors()
                inp, out = it.get_input_details()[0], it.get_output_details()[0]
                xi = _as_input(inp, x.numpy())

                def run(xi=xi, it=it, inp=inp):
                    it.set_tensor(inp["index"], xi)
                    it.invoke()
                entry[f"{name}_{th}t_ms"] = _median_ms(run, a.runs)
            ops = sorted({d["op_name"] for d in it._get_ops_details()}) if hasattr(it, "_get_ops_details") else []
            entry[f"{name}_ops"] = ops
            entry[f"{name}_input_dtype"] = np.dtype(inp["dtype"]).name
            p = []
            for i in range(len(val)):
                it.set_tensor(inp["index"], _as_input(inp, val[i][0][None].numpy()))
                it.invoke()
                p.append(int(it.get_tensor(out["index"]).argmax()))
            preds[name] = np.array(p)
        y = np.array(val.targets)
        entry.update(fp32_top1=float(100 * (preds["fp32"] == y).mean()),
                     int8_top1=float(100 * (preds["int8"] == y).mean()),
                     agreement=float(100 * (preds["fp32"] == preds["int8"]).mean()))
        print(json.dumps(entry))
        report["students"].append(entry)
    Path(a.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
