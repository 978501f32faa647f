"""Measure every machine-dependent runtime default on this CPU, and what the toolkit's explicit request
changes (the table in benchmarks/portability.md).

    .venv/bin/python benchmarks/portability/defaults.py runs/demo/export \\
        --out benchmarks/portability/defaults-<cpu>.json

Each probe runs in a process of its own where an environment variable (ONEDNN_MAX_CPU_ISA,
ATEN_CPU_CAPABILITY) must be set before the runtime loads. Inputs: the demo's exported FP32 / INT8
artifacts, their FP32 and INT8 checkpoints (named in the manifests), and the first N val images.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


def _images(export: Path, n: int) -> tuple[np.ndarray, dict]:
    from edge_fgic.data.datasets import open_split, parse_data_spec
    from edge_fgic.data.transforms import PreprocessConfig, eval_transform
    from edge_fgic.manifest import read_manifest
    m = read_manifest(export / "student-fp32.onnx")
    pre = PreprocessConfig(**m.input.preprocess())
    ds = open_split(parse_data_spec(m.source["data"]), "val", eval_transform(pre), progress=False)
    idx = np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int)
    return np.stack([ds[int(k)][0].numpy() for k in idx]).astype(np.float32), m


# ---------------------------------------------------------------- probes (run in a child process)

def probe(name: str, spec: dict) -> dict:
    x = np.load(spec["images"])
    export = Path(spec["export"])
    if name == "openvino":
        import openvino as ov

        from edge_fgic.runtime.openvino_runner import compiled_summary, ov_precision
        core = ov.Core()
        out: dict = {"capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
                     "isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA")}
        for art in ("student-fp32.xml", "student-int8.xml"):
            model = core.read_model(str(export / art))
            for label, cfg in (("default", {}), ("explicit", {"INFERENCE_PRECISION_HINT": "f32",
                                                               "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0})):
                try:
                    c = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 2, **cfg})
                except Exception as exc:  # noqa: BLE001 - a crash is a finding
                    out[f"{art}:{label}"] = {"error": str(exc).strip().splitlines()[-1][:200]}
                    continue
                y = np.concatenate([c.create_infer_request().infer({0: x[k:k + 1]})[c.output(0)]
                                    for k in range(len(x))])
                np.save(spec["images"].replace(".npy", f"-{name}-{art}-{label}.npy"), y)
                s = compiled_summary(c)
                out[f"{art}:{label}"] = {"hint": ov_precision(c.get_property("INFERENCE_PRECISION_HINT")),
                                         "dynamic_quantization_group_size":
                                             int(c.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE")),
                                         "threads": int(c.get_property("INFERENCE_NUM_THREADS")),
                                         "compute_precisions": s["compute_precisions"], "kernels": s["kernels"]}
        try:
            c = core.compile_model(core.read_model(str(export / "student-fp32.xml")), "CPU", {})
            out["default_threads"] = int(c.get_property("INFERENCE_NUM_THREADS"))
        except Exception as exc:  # noqa: BLE001
            out["default_threads"] = f"error: {str(exc).strip().splitlines()[-1][:120]}"
        return out
    if name == "onnxruntime":
        import onnxruntime as ort

        from edge_fgic.runtime import open_runner
        so = ort.SessionOptions()
        out = {"default_intra_op_threads_option": so.intra_op_num_threads,
               "available_providers": ort.get_available_providers()}
        for art in ("student-fp32.onnx", "student-int8.onnx"):
            r = open_runner(export / art, threads=2)
            eff = r.execution["effective"]
            out[art] = {k: eff.get(k) for k in ("integer_ops", "compute_ops", "float_ops_precision", "optimized_ops")}
            np.save(spec["images"].replace(".npy", f"-{name}-{art}.npy"), r.predict(x))
        return out
    if name == "litert":
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from edge_fgic.quiet import quiet_native_logs
        from edge_fgic.runtime.litert_runner import delegation
        out = {}
        for art in ("student-fp32.tflite", "student-int8.tflite"):
            for label, kw in (("default", {}),
                              ("no-default-delegates",
                               {"experimental_op_resolver_type":
                                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES})):
                with quiet_native_logs():
                    it = Interpreter(model_path=str(export / art), num_threads=2, **kw)
                    it.allocate_tensors()
                inp = it.get_input_details()[0]
                xx = np.zeros(inp["shape"], inp["dtype"])
                for _ in range(5):
                    it.set_tensor(inp["index"], xx)
                    it.invoke()
                ts = []
                for _ in range(50):
                    t = time.perf_counter()
                    it.set_tensor(inp["index"], xx)
                    it.invoke()
                    ts.append(1000 * (time.perf_counter() - t))
                out[f"{art}:{label}"] = {"delegation": delegation(it), "p50_ms": float(np.median(ts))}
        return out
    if name == "torch":
        import torch

        from edge_fgic.runtime import open_runner
        mk = torch.backends.mkldnn
        out = {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
               "onednn_max_cpu_isa_env": os.environ.get("ONEDNN_MAX_CPU_ISA"),
               "default_threads": torch.get_num_threads(),
               "default_fp32_precision": {"matmul": mk.matmul.fp32_precision, "conv": mk.conv.fp32_precision},
               "float32_matmul_precision": torch.get_float32_matmul_precision(),
               "mkldnn_bf16_supported": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
               "deterministic_algorithms": torch.are_deterministic_algorithms_enabled()}
        r = open_runner(spec["fp32_ckpt"], threads=2)
        np.save(spec["images"].replace(".npy", f"-{name}.npy"), r.predict(x))
        rb = open_runner(spec["fp32_ckpt"], threads=2, precision="bf16")
        np.save(spec["images"].replace(".npy", f"-{name}-bf16.npy"), rb.predict(x))
        ri = open_runner(spec["int8_ckpt"], threads=2)
        np.save(spec["images"].replace(".npy", f"-{name}-int8.npy"), ri.predict(x))
        return out
    raise ValueError(name)


def _child(name: str, spec_path: Path, env: dict[str, str], tag: str) -> dict:
    spec = json.loads(spec_path.read_text())
    spec["images"] = str(spec_path.with_name(f"x-{tag}.npy"))
    if not Path(spec["images"]).exists():
        Path(spec["images"]).symlink_to(spec_path.with_name("x.npy"))
    child_spec = spec_path.with_name(f"spec-{tag}.json")
    child_spec.write_text(json.dumps(spec))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, str(HERE), "--probe", name, str(child_spec)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300], "env": env}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["env"], res["seconds"] = env, round(time.perf_counter() - t, 1)
    return res


def _cmp(a: np.ndarray, b: np.ndarray) -> dict:
    return {"agreement": float((a.argmax(1) == b.argmax(1)).mean() * 100),
            "max_rel_diff": float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max())))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export", nargs="?", default="runs/demo/export")
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--out", default="")
    ap.add_argument("--probe", nargs=2, metavar=("NAME", "SPEC"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.probe:
        print(json.dumps(probe(a.probe[0], json.loads(Path(a.probe[1]).read_text()))))
        return 0
    import tempfile

    from edge_fgic.bench.harness import isa_levels_here
    from edge_fgic.bench.sysinfo import cpu_info
    export = Path(a.export).resolve()
    x, m = _images(export, a.images)
    from edge_fgic.manifest import read_manifest
    int8_ckpt = read_manifest(export / "student-int8.onnx").source["checkpoint"]
    with tempfile.TemporaryDirectory(prefix="portability-") as tmp:
        work = Path(tmp)
        np.save(work / "x.npy", x)
        spec = work / "spec.json"
        spec.write_text(json.dumps({"export": str(export), "fp32_ckpt": m.source["checkpoint"],
                                    "int8_ckpt": int8_ckpt}))
        levels = isa_levels_here()
        res: dict = {"cpu": cpu_info(), "python": platform.python_version(), "images": int(len(x)),
                     "isa_levels": levels}
        res["torch"] = {"native": _child("torch", spec, {}, "torch")}
        ref = np.load(work / "x-torch-torch.npy")
        ref8 = np.load(work / "x-torch-torch-int8.npy")
        res["torch"]["native"]["bf16_vs_f32"] = _cmp(np.load(work / "x-torch-torch-bf16.npy"), ref)
        for env in ({"ATEN_CPU_CAPABILITY": "avx2"}, {"ONEDNN_MAX_CPU_ISA": "AVX2"},
                    {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}):
            tag = "torch-" + "-".join(env.values())
            r = _child("torch", spec, env, tag)
            if "error" not in r:
                r["fp32_vs_native"] = _cmp(np.load(work / f"x-{tag}-torch.npy"), ref)
                r["int8_vs_native"] = _cmp(np.load(work / f"x-{tag}-torch-int8.npy"), ref8)
            res["torch"]["-".join(f"{k}={v}" for k, v in env.items())] = r
        res["openvino"] = {}
        for level in [None, *levels]:
            tag = f"ov-{level or 'native'}"
            r = _child("openvino", spec, {"ONEDNN_MAX_CPU_ISA": level} if level else {}, tag)
            for art, against in (("student-fp32.xml", ref), ("student-int8.xml", ref8)):
                for label in ("default", "explicit"):
                    f = work / f"x-{tag}-openvino-{art}-{label}.npy"
                    if f.exists() and isinstance(r.get(f"{art}:{label}"), dict):
                        r[f"{art}:{label}"]["vs_torch"] = _cmp(np.load(f), against)
            res["openvino"][level or "native"] = r
        r = _child("onnxruntime", spec, {}, "ort")
        for art, against in (("student-fp32.onnx", ref), ("student-int8.onnx", ref8)):
            r[art]["vs_torch"] = _cmp(np.load(work / f"x-ort-onnxruntime-{art}.npy"), against)
        res["onnxruntime"] = r
        res["litert"] = _child("litert", spec, {}, "litert")
    text = json.dumps(res, indent=2, default=str)
    if a.out:
        Path(a.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
