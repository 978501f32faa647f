"""INT8 vs FP32 latency (and accuracy of the deployed graphs) of quantized students, one run.

For each FP32 student checkpoint and its INT8 (NNCF) checkpoints this script exports
  * FP32 ONNX of the deploy-folded model,
  * INT8 Q/DQ ONNX (weights folded to int8; activations as quantized, and rewritten to uint8
    zero-point 128 for onnxruntime on x86, which is exact),
then times batch-1 inference with onnxruntime and OpenVINO at 1 and 2 threads (5 rounds,
every artifact of a student timed once per round, back to back; latency = median of the
round medians, speed-up = median of the per-round FP32/INT8 ratios), and runs the INT8 graphs over the
val split to check top-1 and agreement with the NNCF model. The teacher's PyTorch eager FP32 latency is
timed in the same run.

    .venv/bin/python benchmarks/quantization/int8_latency.py --teacher runs/o17-teacher/best.pt \
        --student runs/o17-bnrelu-kd/best.pt runs/o17-bnrelu-kd-qat runs/o17-bnrelu-kd-ptq ... \
        --out benchmarks/quantization/o17.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from edge_fgic.timing import median_ms as _median_ms


def ort_session(path: str, threads: int):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ov_model(path: str, threads: int):
    import openvino as ov
    core = ov.Core()
    compiled = core.compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    return compiled.create_infer_request()


def time_interleaved(paths: dict[str, str], size: int, runs: int, rounds: int = 5) -> dict[str, dict[str, list[float]]]:
    """Per-round medians for every (artifact, runtime, threads), artifacts interleaved round by round.

    This VM's speed drifts by tens of percent over minutes, so FP32 and INT8 are timed side by
    side in each round and speed-ups are taken per round (see ``speedups``)."""
    x = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    out: dict[str, dict[str, list[float]]] = {name: {} for name in paths}
    for th in (1, 2):
        runners = {}
        for name, p in paths.items():
            s, r = ort_session(p, th), ov_model(p, th)
            runners[name] = {f"ort_{th}t": (lambda s=s: s.run(None, {"input": x})),
                             f"ov_{th}t": (lambda r=r: r.infer({0: x}))}
        for _ in range(rounds):
            for name, fns in runners.items():
                for key, fn in fns.items():
                    out[name].setdefault(key, []).append(_median_ms(fn, max(10, runs // rounds), warmup=5))
    return out


def medians(rounds: dict[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in rounds.items()}


def speedups(ref: dict[str, list[float]], new: dict[str, list[float]]) -> dict[str, float]:
    """Median over rounds of ref/new, each round's pair measured back to back."""
    return {k: statistics.median(a / b for a, b in zip(ref[k], new[k])) for k in ref}


def ort_logits(path: str, images: torch.Tensor) -> np.ndarray:
    s = ort_session(path, 2)
    return np.concatenate([s.run(None, {"input": images[i:i + 1].numpy()})[0] for i in range(len(images))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--student", nargs="+", action="append", required=True, metavar="FP32_CKPT [INT8_RUN ...]")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    from edge_fgic.data.datasets import open_split, parse_data_spec
    from edge_fgic.data.transforms import eval_transform
    from edge_fgic.models import load_model
    from edge_fgic.models.fuse import fuse_for_deploy
    from edge_fgic.export.onnx_export import export_float
    from edge_fgic.quant.onnx_qdq import check_tensorrt_qdq, export_qdq
    import onnx
    import onnxruntime
    import openvino

    torch.set_num_threads(2)
    teacher, tck = load_model(a.teacher)
    size = tck.preprocess.input_size
    spec = parse_data_spec(tck.train_config["data"])
    val = open_split(spec, "val", eval_transform(tck.preprocess), progress=False)
    images = torch.stack([val[i][0] for i in range(len(val))])
    labels = np.array(val.targets)
    x1 = torch.zeros(1, 3, size, size)
    report = {"machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                          "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                          "openvino": openvino.__version__},
              "input_size": size, "val_images": len(val), "runs": a.runs, "teacher": {}, "students": []}
    with torch.inference_mode():
        for th in (1, 2):
            torch.set_num_threads(th)
            report["teacher"][f"torch_{th}t"] = _median_ms(lambda: teacher(x1), a.runs // 2)
        torch.set_num_threads(2)
        report["teacher"]["val_top1"] = float(100 * (teacher(images).argmax(1).numpy() == labels).mean())
    report["teacher"]["model"] = tck.model.to_dict()
    # the teacher a GPU user would distil from (stock convnext_tiny): its CPU eager latency at the same input size
    import timm
    tiny = timm.create_model("convnext_tiny", num_classes=len(tck.classes)).eval()
    with torch.inference_mode():
        for th in (1, 2):
            torch.set_num_threads(th)
            report["teacher"][f"convnext_tiny_torch_{th}t"] = _median_ms(lambda: tiny(x1), max(20, a.runs // 4),
                                                                         warmup=5)
        torch.set_num_threads(2)
    tiny = None  # free it before the exports
    tmp = Path(tempfile.mkdtemp(prefix="int8lat-"))
    for gi, group in enumerate(a.student):
        fp_path, runs = group[0], group[1:]
        fp, fck = load_model(fp_path)
        fused = fuse_for_deploy(fp)
        onnx_fp = str(tmp / f"g{gi}-fp32.onnx")
        export_float(fused, Path(onnx_fp), size)  # what `edge-fgic export --target onnx` writes
        with torch.inference_mode():
            fp_logits = fused(images).numpy()
        entry = {"checkpoint": fp_path, "variant": fck.train_config.get("variant"),
                 "fp32_val_top1": float(100 * (fp_logits.argmax(1) == labels).mean()), "int8": []}
        paths = {"fp32": str(onnx_fp)}
        for ri, run in enumerate(runs):
            q, qck = load_model(Path(run) / "best.pt")
            with torch.inference_mode():
                q_logits = q(images).numpy()
            res = {"run": run, "mode": qck.quantization["mode"], "tensorrt_legal": qck.quantization["tensorrt_legal"],
                   "nncf_val_top1": float(100 * (q_logits.argmax(1) == labels).mean()),
                   "nncf_agreement_vs_fp32": float(100 * (q_logits.argmax(1) == fp_logits.argmax(1)).mean())}
            raw = tmp / f"g{gi}-r{ri}-int8.onnx"
            export_qdq(q, raw, size)
            res["tensorrt_violations"] = len(check_tensorrt_qdq(onnx.load(str(raw))))
            u8 = tmp / f"g{gi}-r{ri}-int8-u8.onnx"
            export_qdq(q, u8, size, uint8_activations=True)
            ort_l = ort_logits(str(u8), images)
            res["onnx_val_top1"] = float(100 * (ort_l.argmax(1) == labels).mean())
            res["onnx_agreement_vs_nncf"] = float(100 * (ort_l.argmax(1) == q_logits.argmax(1)).mean())
            res["onnx_max_abs_diff_vs_nncf"] = float(np.abs(ort_l - q_logits).max())
            res["size_bytes"] = {"fp32_onnx": Path(onnx_fp).stat().st_size, "int8_onnx": u8.stat().st_size}
            paths[f"{ri}:u8"], paths[f"{ri}:raw"] = str(u8), str(raw)
            entry["int8"].append(res)
        timed = time_interleaved(paths, size, a.runs)
        entry["fp32"] = medians(timed["fp32"])
        entry["fp32_rounds"] = timed["fp32"]
        for ri, res in enumerate(entry["int8"]):
            res["latency_u8"] = medians(timed[f"{ri}:u8"])
            res["latency_as_quantized"] = medians(timed[f"{ri}:raw"])
            res["speedup_u8"] = speedups(timed["fp32"], timed[f"{ri}:u8"])
            res["speedup_as_quantized"] = speedups(timed["fp32"], timed[f"{ri}:raw"])
            res["rounds_u8"] = timed[f"{ri}:u8"]
            print(json.dumps({k: v for k, v in res.items() if not k.startswith("rounds")}))
        with torch.inference_mode():
            for th in (1, 2):
                torch.set_num_threads(th)
                entry["fp32"][f"torch_{th}t"] = _median_ms(lambda: fp(x1), a.runs // 2)
            torch.set_num_threads(2)
        report["students"].append(entry)
    Path(a.out).write_text(json.dumps(report, indent=2) + "\n")
    print("wrote", a.out)


if __name__ == "__main__":
    main()
