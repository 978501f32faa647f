"""ONNX: FP32 and FP16 from the deploy-folded model (simplified with onnxslim), INT8 as explicit
Q/DQ from the NNCF model (uint8 activations, onnxruntime's integer fast path on x86)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from .exporter import Built, ExportJob, converter_versions
from ..manifest import Quantization
from ..manifest.onnx import embed as embed_onnx


def outputs(stem: str, precision: str) -> list[str]:
    return [f"{stem}-{precision}.onnx"]


class _Half(nn.Module):
    """float32 in/out, float16 inside: the graph TensorRT builds strongly typed in FP16."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.half()

    def forward(self, x):
        out = self.net(x.half())
        if isinstance(out, tuple):  # --embedding: (logits, raw embedding), normalised in float32 (no fp16 overflow)
            from .embedding import l2_normalize
            return out[0].float(), l2_normalize(out[1].float())
        return out.float()


def export_float(model: nn.Module, path: Path, input_size: int, *, precision: str = "fp32", opset: int = 17,
                 dynamic_batch: bool = False, simplify: bool = True, embedding: bool = False) -> dict[str, Any]:
    """Deploy-fold ``model``, export with the TorchScript exporter, simplify, check. FP16 keeps float32 I/O.
    ``embedding``: a second output ``embedding`` (L2-normalised, :mod:`.embedding`) after ``logits``."""
    import onnx

    from ..models.fuse import fuse_for_deploy
    net = fuse_for_deploy(model.cpu().float()).eval()
    names = ["logits"]
    if embedding:
        from .embedding import OUTPUT_NAMES, WithEmbedding
        net = WithEmbedding(net, normalize=precision != "fp16").eval()
        names = list(OUTPUT_NAMES)
    if precision == "fp16":
        net = _Half(net).eval()
    x = torch.zeros(1, 3, input_size, input_size)
    axes = {n: {0: "batch"} for n in ["input", *names]} if dynamic_batch else None
    raw = path.with_suffix(".raw.onnx")
    with torch.no_grad():
        torch.onnx.export(net, (x,), str(raw), dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=names, dynamic_axes=axes)
    model_proto = onnx.load(str(raw))
    raw.unlink()
    slimmed = False
    if simplify:
        try:
            import onnxslim
            model_proto = onnxslim.slim(model_proto)
            slimmed = True
        except ImportError:
            pass
    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, str(path))
    return {"simplified": "onnxslim" if slimmed else "no", "nodes": len(model_proto.graph.node)}


def qdq_record(ckpt, summary: dict[str, Any], activations: str) -> Quantization:
    return Quantization.from_checkpoint(ckpt.quantization, "explicit QuantizeLinear/DequantizeLinear (from NNCF)",
                                        activations=activations,
                                        graph={k: v for k, v in summary.items() if k != "path"})  # path: a temp folder


def export_int8(job: ExportJob, path: Path, *, signed: bool) -> dict[str, Any]:
    """The NNCF model as Q/DQ ONNX: signed int8 (TensorRT) or uint8 activations (onnxruntime on x86)."""
    from ..quant.onnx_qdq import export_qdq
    if job.cfg.dynamic_batch:
        raise UserError("--dynamic-batch: INT8 Q/DQ exports have a static batch of 1 (NNCF's traced graph); "
                        "drop the flag")
    return export_qdq(job.model, path, job.input_size, opset=job.cfg.opset, fold_weights=True,
                      uint8_activations=not signed, integer_gemm=not signed)


def export(job: ExportJob) -> list[Built]:
    path = job.tmp / outputs(job.stem, job.precision)[0]
    if job.precision == "int8":
        summary = export_int8(job, path, signed=False)
        quant = qdq_record(job.ckpt, summary, "uint8 per tensor, zero-point 128 (exact rewrite of NNCF's int8) "
                           "or NNCF's unsigned after ReLU")
        info: dict[str, Any] = {"qdq_nodes": summary["ops"].get("QuantizeLinear", 0)
                                + summary["ops"].get("DequantizeLinear", 0)}
    else:
        info = export_float(job.model, path, job.input_size, precision=job.precision, opset=job.cfg.opset,
                            dynamic_batch=job.cfg.dynamic_batch, embedding=job.cfg.embedding)
        quant = None
    return [Built(artifact=path, runtime="onnxruntime", batch=None if job.cfg.dynamic_batch else 1,
                  converters={"torch.onnx (TorchScript exporter)": torch.__version__,
                              **converter_versions("onnx", "onnxslim", "nncf")},
                  quantization=quant, options={"opset": job.cfg.opset, "dynamic_batch": job.cfg.dynamic_batch, **info},
                  embed=embed_onnx)]
