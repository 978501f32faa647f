"""OpenVINO IR (.xml + .bin) by ``ov.convert_model`` from the PyTorch model (FP32/FP16) or the NNCF
model (INT8: OpenVINO reads NNCF's quantizers and runs the convolutions in integer on x86).

The target is isolated (``targets.py``): this runs in a child process (:mod:`.isolate`), and after
saving the IR it compiles it for the CPU with the settings the round trip asks for and runs one image,
so a converter or CPU plugin that crashes in native code kills the child, which the exporter reports in
one line (with what OpenVINO printed last) while removing its work folder."""

from __future__ import annotations

from pathlib import Path

import torch

from ..native import in_watched_child
from .exporter import Built, ExportJob, converter_versions
from ..manifest import Quantization
from ..manifest.openvino import embed as embed_openvino


def outputs(stem: str, precision: str) -> list[str]:
    return [f"{stem}-{precision}.xml"]


def export(job: ExportJob) -> list[Built]:
    import openvino as ov

    from ..models.fuse import fuse_for_deploy
    from ..native import crash_point, stage
    from ..quiet import quiet_nncf
    quiet_nncf()
    crash_point("openvino-convert")
    x = torch.zeros(1, 3, job.input_size, job.input_size)
    net = job.model if job.precision == "int8" else fuse_for_deploy(job.model.cpu().float()).eval()
    names = ["logits"]
    if job.cfg.embedding:  # (logits, L2-normalised embedding); INT8 is refused before this (export/embedding.py)
        from .embedding import OUTPUT_NAMES, WithEmbedding
        net, names = WithEmbedding(net).eval(), list(OUTPUT_NAMES)
    with torch.no_grad():
        ov_model = ov.convert_model(net, example_input=x, input=[ov.PartialShape(
            [-1 if job.cfg.dynamic_batch else 1, 3, job.input_size, job.input_size])])
    ov_model.inputs[0].get_tensor().set_names({"input"})
    for port, name in zip(ov_model.outputs, names):
        port.get_tensor().set_names({name})
    xml = job.tmp / outputs(job.stem, job.precision)[0]
    # FP16 = weights stored in half precision (OpenVINO's own FP16 IR); the CPU plugin computes in
    # FP32 or BF16 as the hardware allows, a GPU/NPU plugin in FP16
    ov.save_model(ov_model, str(xml), compress_to_fp16=job.precision == "fp16")
    if in_watched_child():
        stage("CPU plugin compile check")
        compile_check(job, xml)
    quant = None
    if job.precision == "int8":
        q = job.ckpt.quantization or {}
        quant = Quantization.from_checkpoint(q, "NNCF FakeQuantize -> OpenVINO integer kernels")
    return [Built(artifact=xml, runtime="openvino", files=[xml.with_suffix(".bin")],
                  batch=None if job.cfg.dynamic_batch else 1,
                  converters={"openvino": ov.get_version().split("-")[0], **converter_versions("nncf")},
                  quantization=quant, options={"compress_to_fp16": job.precision == "fp16",
                                               "dynamic_batch": job.cfg.dynamic_batch},
                  embed=embed_openvino)]


def compile_check(job: ExportJob, xml: Path) -> None:
    """Compile ``xml`` for the CPU as the round trip will (same settings, same code) and run one image."""
    import numpy as np

    from ..errors import UserError, exc_line
    from ..runtime.base import default_threads
    from ..runtime.openvino_runner import compile_cpu, requested_settings
    threads = int(job.cfg.threads) if job.cfg.threads else default_threads()
    try:
        _, compiled = compile_cpu(xml, requested_settings("f32", threads))
        compiled.create_infer_request().infer({0: np.zeros((1, 3, job.input_size, job.input_size), np.float32)})
    except Exception as exc:  # noqa: BLE001 - OpenVINO's own exception, reported in one line
        first = exc_line(exc)
        raise UserError(f"{job.cfg.model}: OpenVINO's CPU plugin cannot compile and run the {job.precision} IR "
                        f"converted from it ({first}); nothing was written; try another openvino release") from None


