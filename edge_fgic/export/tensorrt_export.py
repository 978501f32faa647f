"""TensorRT: the TensorRT-bound ONNX (proved by the Q/DQ rule checker and onnxruntime), the
equivalent ``trtexec`` command, and — where TensorRT and a CUDA GPU exist — the engine itself,
built with TensorRT's Python API as a strongly typed network and proved in TensorRT.

Strongly typed means the ONNX decides every tensor's type: FP16 comes from an FP16 graph (float32
I/O, half inside), INT8 from explicit Q/DQ nodes (signed int8, zero-point 0, per-channel weights on
axis 0 — what TensorRT 10+/11 accept). Engines are tied to the GPU and TensorRT version: build on
the device.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import torch

from ..errors import NotApplicable, UserError
from ..fileio import write_text
from ..runtime.tensorrt_runner import tensorrt_available
from .exporter import Built, ExportJob, converter_versions
from .onnx_export import embed_onnx, export_float, export_int8, qdq_record

DEFAULTS = {"workspace_mb": 1024, "dla_core": None, "timing_cache": "", "builder_optimization_level": 3}


def outputs(stem: str, precision: str) -> list[str]:
    return [f"{stem}-{precision}-trt.onnx", f"{stem}-{precision}.engine"]


def trt_options(job: ExportJob) -> dict[str, Any]:
    opts = dict(DEFAULTS)
    opts.update((job.profile or {}).get("tensorrt") or {})
    return opts


def trtexec_command(onnx_name: str, engine_name: str, opts: dict[str, Any], input_size: int, dynamic: bool,
                    max_batch: int = 8) -> str:
    args = ["trtexec", f"--onnx={onnx_name}", f"--saveEngine={engine_name}", "--stronglyTyped",
            f"--memPoolSize=workspace:{int(opts['workspace_mb'])}M",
            f"--builderOptimizationLevel={int(opts['builder_optimization_level'])}"]
    if dynamic:
        s = f"3x{input_size}x{input_size}"
        args += [f"--minShapes=input:1x{s}", f"--optShapes=input:1x{s}", f"--maxShapes=input:{max_batch}x{s}"]
    if opts.get("dla_core") is not None:
        args += [f"--useDLACore={int(opts['dla_core'])}", "--allowGPUFallback"]
    if opts.get("timing_cache"):
        args.append(f"--timingCacheFile={opts['timing_cache']}")
    return " ".join(shlex.quote(a) for a in args)


def build_engine(onnx_path: Path, engine_path: Path, opts: dict[str, Any], input_size: int, dynamic: bool,
                 max_batch: int = 8) -> dict[str, Any]:
    """Build a strongly typed engine with TensorRT's Python API (needs ``tensorrt`` + a CUDA GPU)."""
    import tensorrt as trt
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"{onnx_path.name}: TensorRT's ONNX parser refused it ({errors[:200]})")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts["workspace_mb"]) << 20)
    config.builder_optimization_level = int(opts["builder_optimization_level"])
    if opts.get("dla_core") is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(opts["dla_core"])
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    cache_path = Path(opts["timing_cache"]) if opts.get("timing_cache") else None
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path and cache_path.exists() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    if dynamic:
        profile = builder.create_optimization_profile()
        s = (3, input_size, input_size)
        profile.set_shape("input", (1, *s), (1, *s), (max_batch, *s))
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserError(f"{onnx_path.name}: TensorRT could not build an engine (see the TensorRT log above)")
    engine_path.write_bytes(bytes(serialized))
    if cache_path:
        from ..fileio import atomic_path
        with atomic_path(cache_path) as tmp:
            tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    return {"tensorrt": trt.__version__, "gpu": torch.cuda.get_device_name(0)}


def export(job: ExportJob) -> list[Built]:
    """Runs isolated (targets.py): a TensorRT builder that aborts or runs out of memory kills the child only."""
    from ..native import crash_point
    from ..quant.onnx_qdq import check_tensorrt_qdq
    crash_point("tensorrt-build")
    onnx_name, engine_name = outputs(job.stem, job.precision)
    onnx_path = job.tmp / onnx_name
    opts = trt_options(job)
    dynamic = job.cfg.dynamic_batch
    if job.precision == "int8":
        import onnx
        summary = export_int8(job, onnx_path, signed=True)
        violations = check_tensorrt_qdq(onnx.load(str(onnx_path)))
        if violations:
            first = violations[0]
            raise NotApplicable(f"{job.cfg.model}: {len(violations)} Q/DQ node(s) break TensorRT's rules "
                                f"(e.g. {first}); "
                            f"requantize with signed activations: `edge-fgic quantize --signed -m "
                               f"{(job.ckpt.quantization or {}).get('source') or '<FP32 best.pt>'}`")
        quant = qdq_record(job.ckpt, summary, "int8 per tensor, zero-point 0")
        quant.details["tensorrt_rule_violations"] = 0
    else:
        export_float(job.model, onnx_path, job.input_size, precision=job.precision, opset=job.cfg.opset,
                     dynamic_batch=dynamic, embedding=job.cfg.embedding)
        quant = None
    cmd = trtexec_command(onnx_name, engine_name, opts, job.input_size, dynamic)
    cmd_path = job.tmp / f"{job.stem}-{job.precision}.trtexec.sh"
    write_text(cmd_path, "#!/bin/sh\n"
               "# Build the TensorRT engine on the target device (Jetson: JetPack's /usr/src/tensorrt/bin/trtexec)\n"
               "# from the ONNX next to this file. Written by edge-fgic export --target tensorrt.\n"
               f"set -e\ncd \"$(dirname \"$0\")\"\n{cmd}\n")
    cmd_path.chmod(0o755)
    batch = None if dynamic else 1
    common = dict(batch=batch, quantization=quant,
                  options={"opset": job.cfg.opset, "dynamic_batch": dynamic, "strongly_typed": True, "tensorrt": opts,
                           "trtexec": cmd})
    onnx_built = Built(artifact=onnx_path, runtime="onnxruntime", embed=embed_onnx, extras=[cmd_path],
                       converters={"torch.onnx (TorchScript exporter)": torch.__version__,
                                   **converter_versions("onnx", "onnxslim", "nncf")}, **common)
    ok, why = tensorrt_available()
    if not ok:
        onnx_built.notes.append(f"engine not built here ({why}); build it on the device: {cmd_path.name}")
        return [onnx_built]
    engine_path = job.tmp / engine_name
    info = build_engine(onnx_path, engine_path, opts, job.input_size, dynamic)
    engine = Built(artifact=engine_path, runtime="tensorrt", converters={**info}, **common)
    return [onnx_built, engine]
