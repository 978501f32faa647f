"""TFLite / LiteRT for Android: litert-torch converts the deploy-folded PyTorch model (NHWC input,
builtin ops only); ai-edge-quantizer makes FP16 (float16 weights) and INT8 full-integer models.

INT8 starts from the INT8 checkpoint: its weights *as NNCF quantized them* (each weight quantizer
applied in place, so QAT's fine-tuning carries over) and is calibrated on the same seeded,
class-stratified training images as the checkpoint (>= 300 where the split has them; Ultralytics
users hit 0-accuracy INT8 models with poor calibration). Weights int8 symmetric per output channel,
activations int8 per tensor; inputs/outputs int8 with their scale/zero-point in the manifest.
The round trip then compares the interpreter with the NNCF model itself.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from ..manifest import Quantization
from ..manifest.tflite import embed as embed_tflite
from ..quiet import quiet_native_logs  # noqa: F401 - re-exported for older imports
from .exporter import Built, ExportJob, converter_versions

CARRY_IMAGES = 8   # calibration images on which NNCF's and TFLite's tensors are paired by value

FP16_RECIPE = [{
    "regex": ".*", "operation": "*", "algorithm_key": "float_casting",
    "op_config": {"weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                  "compute_precision": "FLOAT", "explicit_dequantize": True},
}]


def outputs(stem: str, precision: str) -> list[str]:
    return [f"{stem}-{precision}.tflite"]


def weight_quantized_float(q_model: nn.Module, ckpt) -> nn.Module:
    """The deploy-folded FP32 model carrying the NNCF model's quantized weights (activation quantizers dropped)."""
    from nncf.torch.function_hook.hook_storage import decode_hook_name
    from nncf.torch.function_hook.nncf_graph.nncf_graph_builder import build_nncf_graph
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.model_graph_manager import get_const_node, get_module_by_name, split_const_name

    from ..models.factory import FGClassifier
    from ..models.fuse import fuse_for_deploy
    from ..models.quantized import is_weight_quantizer
    q = copy.deepcopy(q_model).cpu().eval()
    size = ckpt.preprocess.input_size
    graph = build_nncf_graph(q, torch.zeros(1, 3, size, size))
    done = 0
    with torch.no_grad():
        for name, hook in list(get_hook_storage(q).named_hooks()):
            kind, op_name, port = decode_hook_name(name)
            if kind != "pre_hooks" or not is_weight_quantizer(name, hook):
                continue
            const = get_const_node(graph.get_node_by_name(op_name), port, graph)
            module_name, attr = split_const_name(const.layer_attributes.name)
            param = getattr(get_module_by_name(module_name, q), attr)
            param.data = hook(param.data)
            done += 1
    state = {k: v for k, v in q.state_dict().items() if not k.startswith("__nncf_hooks")}
    plain = fuse_for_deploy(FGClassifier(ckpt.model)).eval()
    plain.load_state_dict(state, strict=True)
    if not done:
        raise UserError(f"{ckpt.path}: found no NNCF weight quantizers to carry into TFLite; requantize the model")
    return plain


def convert_float(net: nn.Module, path: Path, input_size: int) -> None:
    """PyTorch -> float32 .tflite with an NHWC input (what Android camera code produces)."""
    import litert_torch
    nhwc = litert_torch.to_channel_last_io(net.cpu().eval(), args=[0]).eval()
    edge = litert_torch.convert(nhwc, (torch.zeros(1, input_size, input_size, 3),))
    edge.export(str(path))


def _quantizer(path: Path, recipe):
    from ai_edge_quantizer import quantizer
    return quantizer.Quantizer(str(path), recipe)


def check_builtin_only(model: bytes, name: str) -> list[str]:
    """Op names; refuses Flex (Select-TF) or custom ops, which the standalone interpreter lacks."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=model)
    ops = sorted({o["op_name"] for o in interp._get_ops_details()} - {"DELEGATE"})
    bad = [o for o in ops if o.startswith("Flex") or o == "CUSTOM"]
    if bad:
        raise UserError(f"{name}: the converted model needs {', '.join(bad)}, which Android's LiteRT runtime "
                        "lacks (Select-TF ops); this model's ops are not convertible to builtins")
    return ops


def export(job: ExportJob) -> list[Built]:
    from ..quiet import quiet_nncf
    quiet_nncf()
    with quiet_native_logs():
        return _export(job)


def _export(job: ExportJob) -> list[Built]:
    from ..models.fuse import fuse_for_deploy
    path = job.tmp / outputs(job.stem, job.precision)[0]
    float_path = job.tmp / f"{job.stem}-float.tflite.part"
    size = job.input_size
    quant: dict[str, Any] | None = None
    input_dtype = "float32"
    if job.precision == "int8":
        net = weight_quantized_float(job.model, job.ckpt)
    else:
        net = fuse_for_deploy(job.model.cpu().float()).eval()
    if job.cfg.embedding:  # (logits, L2-normalised embedding): signature outputs output_0, output_1; INT8 refused
        from .embedding import WithEmbedding
        net = WithEmbedding(net).eval()
    convert_float(net, float_path, size)
    if job.precision == "fp32":
        model = float_path.read_bytes()
    elif job.precision == "fp16":
        qt = _quantizer(float_path, FP16_RECIPE)
        model = bytes(qt.quantize(enable_progress_report=False).quantized_model)
    else:
        from ai_edge_quantizer import recipe
        qt = _quantizer(float_path, recipe.static_wi8_ai8())
        images, record = job.calibration()
        signature = _signature(float_path)
        key, input_name = signature
        feed = [{input_name: np.ascontiguousarray(x.transpose(0, 2, 3, 1))} for x in images]
        calib = qt.calibrate({key: feed}, num_threads=1)
        # QAT's activation ranges, not recalibrated ones (edge_fgic.export.tflite_ranges)
        from .tflite_ranges import carry_ranges
        carried = carry_ranges(job.model, float_path, np.concatenate(images[:CARRY_IMAGES]), calib)
        model = bytes(qt.quantize(calib, enable_progress_report=False).quantized_model)
        io = _io_quantization(model)
        input_dtype = io["input"]["dtype"]
        q = job.ckpt.quantization or {}
        quant = Quantization.from_checkpoint(
            q, "TFLite full-integer on the NNCF-quantized weights, NNCF's activation ranges carried "
               "(ai-edge-quantizer min/max only where NNCF has no quantizer)",
            weights="int8 symmetric per output channel", activations="int8 per tensor (NNCF's grids)",
            io=io, calibration=record, activation_ranges=carried,
            source_quantization={"framework": q.get("framework"), "mode": q.get("mode"),
                                 "calibration": q.get("calibration")})
    float_path.unlink(missing_ok=True)
    ops = check_builtin_only(model, path.name)
    path.write_bytes(model)
    if job.precision == "fp16":
        quant = Quantization(scheme="float16 weights (dequantized to float32 on CPU; the GPU delegate runs FP16)")
    return [Built(artifact=path, runtime="litert", layout="NHWC", input_dtype=input_dtype, batch=1,
                  converters={**converter_versions("litert-torch", "ai-edge-quantizer", "ai-edge-litert")},
                  quantization=quant, options={"ops": ops, "builtin_ops_only": True}, embed=embed_tflite)]


def _signature(path: Path) -> tuple[str, str]:
    from ai_edge_litert.interpreter import Interpreter
    sig = Interpreter(model_path=str(path)).get_signature_list()
    key = next(iter(sig))
    return key, sig[key]["inputs"][0]


def _io_quantization(model: bytes) -> dict[str, Any]:
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_content=model)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

    def d(t):
        scale, zp = t["quantization"]
        return {"dtype": np.dtype(t["dtype"]).name, "scale": float(scale), "zero_point": int(zp)}
    return {"input": d(inp), "output": d(out)}
