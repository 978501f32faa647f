"""INT8 ONNX from an NNCF model: QuantizeLinear/DequantizeLinear graphs, and the rewrites and
checks each runtime needs.

* :func:`export_qdq` — ``nncf.strip(NATIVE)`` + the TorchScript exporter (the dynamo exporter
  fails on NNCF models), then :func:`fold_weight_quantizers`: weights become int8 initializers
  feeding DequantizeLinear (4x smaller file, no runtime weight quantization).
* :func:`activations_to_uint8` — every signed activation Q/DQ pair (int8, zero-point 0) becomes
  uint8 with zero-point 128. Exact: ``q_u8 = q_s8 + 128`` for every input. onnxruntime on x86
  only fuses ``DQ -> Conv -> Q`` into an integer QLinearConv when activations are uint8
  (measured: 5 of 19 convs fused with int8 activations, 14 with uint8, all 19 with NNCF's
  unsigned quantizers after ReLU as well, since the ReLU then folds into the conv).
* :func:`integer_head` — the head's activation pair re-stated after its Flatten and the bias as int32
  behind a DequantizeLinear: onnxruntime then runs the classifier Gemm as an integer QGemm with float
  logits (measured: 19/20 -> 20/20 integer nodes on the Oxford 17 student, as many as ``quantize_static``
  gets, without quantizing the logits as it does).
* :func:`check_tensorrt_qdq` — the rules TensorRT's explicit quantization imposes on Q/DQ
  nodes: int8, zero-point 0, scalar activation scales, weight scales per tensor or per
  output channel (axis 0). Returns every violation; ``[]`` means legal.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

QDQ = ("QuantizeLinear", "DequantizeLinear")


@dataclass
class Violation:
    node: str
    rule: str

    def __str__(self) -> str:
        return f"{self.node}: {self.rule}"


class _Graph:
    """Constant lookup through Identity/Constant nodes (the TorchScript exporter emits both)."""

    def __init__(self, model):
        from onnx import numpy_helper
        self.model, self.g, self.nh = model, model.graph, numpy_helper
        self.refresh()

    def refresh(self) -> None:
        self.inits = {i.name: i for i in self.g.initializer}
        self.prod = {o: n for n in self.g.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in self.g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def const(self, name: str) -> np.ndarray | None:
        seen = 0
        while name in self.prod and self.prod[name].op_type == "Identity" and seen < 100:
            name, seen = self.prod[name].input[0], seen + 1
        if name in self.inits:
            return self.nh.to_array(self.inits[name])
        node = self.prod.get(name)
        if node is not None and node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    return self.nh.to_array(a.t)
        return None


def _axis(node) -> int:
    return next((a.i for a in node.attribute if a.name == "axis"), 1)


def _quantize(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int) -> np.ndarray:
    """ONNX QuantizeLinear: saturate(round_half_to_even(x / scale) + zp)."""
    shape = [1] * x.ndim
    if scale.ndim and scale.size > 1:
        shape[axis] = -1
    info = np.iinfo(zp.dtype)
    q = np.rint(x / scale.reshape(shape)) + zp.reshape(shape).astype(np.int64)
    return np.clip(q, info.min, info.max).astype(zp.dtype)


def fold_weight_quantizers(model):
    """QuantizeLinear on a constant -> its int8 result as an initializer (same numbers)."""
    from onnx import numpy_helper
    model = copy.deepcopy(model)
    g = _Graph(model)
    keep, folded = [], 0
    for node in g.g.node:
        if node.op_type == "QuantizeLinear":
            w = g.const(node.input[0])
            if w is not None and len(node.input) > 2:
                scale, zp = g.const(node.input[1]), g.const(node.input[2])
                if scale is not None and zp is not None:
                    q = _quantize(w.astype(np.float32), scale, zp, _axis(node))
                    g.g.initializer.append(numpy_helper.from_array(q, node.output[0]))
                    folded += 1
                    continue
        keep.append(node)
    del g.g.node[:]
    g.g.node.extend(keep)
    _drop_unused(model)
    return model, folded


def activations_to_uint8(model, relu_zero_point_0: bool = True):
    """Signed activation Q/DQ (int8, zp 0) -> uint8 with zp 128: bit-for-bit the same dequantized values.

    ``relu_zero_point_0``: a pair that quantizes a ReLU's output becomes uint8 with zero-point 0
    instead (same scale). onnxruntime folds a ReLU into the convolution before it only when the Q
    that follows it starts at zero, so with zp 128 every ``Conv -> ReLU -> Q`` (the MLP's fc1 of each
    block) stayed a float FusedConv: 12 of 17 compute nodes ran integer on the demo student, 16 of 17
    with this. Exact for every value NNCF's grid holds ([0, 127 s]); values above NNCF's clip at s
    are kept up to 255 s instead of clipped (demo: agreement with the NNCF model unchanged, 100 %)."""
    from onnx import numpy_helper
    model = copy.deepcopy(model)
    g = _Graph(model)
    producer = {o: n for n in g.g.node for o in n.output}
    changed = 0
    relu_pairs: dict[str, str] = {}  # Q output -> its new zero-point initializer
    for node in g.g.node:
        if not relu_zero_point_0 or node.op_type != "QuantizeLinear" or len(node.input) < 3:
            continue
        src = producer.get(node.input[0])
        zp = g.const(node.input[2])
        if src is not None and src.op_type == "Relu" and zp is not None and zp.dtype == np.int8 and not zp.any():
            new = numpy_helper.from_array(np.zeros_like(zp, dtype=np.uint8),
                                          f"{node.name or node.output[0]}__zp_u8_relu")
            g.g.initializer.append(new)
            relu_pairs[node.output[0]] = new.name
    for node in g.g.node:
        if node.op_type == "QuantizeLinear" and node.output[0] in relu_pairs:
            node.input[2] = relu_pairs[node.output[0]]
            changed += 1
            continue
        if node.op_type == "DequantizeLinear" and node.input[0] in relu_pairs:
            node.input[2] = relu_pairs[node.input[0]]
            changed += 1
            continue
        if node.op_type not in QDQ or len(node.input) < 3:
            continue
        if node.op_type == "DequantizeLinear" and g.const(node.input[0]) is not None:
            continue  # a weight
        if node.op_type == "QuantizeLinear" and g.const(node.input[0]) is not None:
            continue
        zp = g.const(node.input[2])
        if zp is None or zp.dtype != np.int8:
            continue
        new = numpy_helper.from_array((zp.astype(np.int16) + 128).astype(np.uint8),
                                      f"{node.name or node.output[0]}__zp_u8")
        g.g.initializer.append(new)
        node.input[2] = new.name
        changed += 1
    _drop_unused(model)
    return model, changed


def _qdq_pair(g, tensor: str, scale: float, zero_point: int, zp_type: int, out: str) -> list:
    from onnx import helper
    sc = helper.make_tensor(f"{tensor}__rq_scale", 1, [], [float(scale)])  # 1 = FLOAT
    zp = helper.make_tensor(f"{tensor}__rq_zp", zp_type, [], [int(zero_point)])
    g.initializer.extend([sc, zp])
    return [helper.make_node("QuantizeLinear", [tensor, sc.name, zp.name], [f"{tensor}__rq_q"]),
            helper.make_node("DequantizeLinear", [f"{tensor}__rq_q", sc.name, zp.name], [out])]


def integer_head(model, output: str = "logits"):
    """Lay the classifier Gemm out so onnxruntime runs it as an integer QGemm with float logits, as it does
    in ``quantize_static``'s graphs (which quantize the logits too; this keeps them float):

    * the activation's Q/DQ pair is repeated after the head's Flatten/Reshape, so a DequantizeLinear feeds
      the Gemm directly (exact: a reshape does not change values);
    * the float bias becomes int32 with scale = activation scale x weight scale per output channel, zero-point
      0, behind a DequantizeLinear (onnxruntime's Gemm selector takes a bias only in that form; the rounding
      is below 1e-4 of the bias).

    Returns (model, record or None where the graph does not end in DQ -> [Flatten] -> Gemm)."""
    from onnx import TensorProto, helper, numpy_helper
    model = copy.deepcopy(model)
    gr = _Graph(model)
    g = gr.g
    last = gr.prod.get(output)
    if last is None or last.op_type != "Gemm" or len(last.input) < 2:
        return model, None
    attrs = {a.name: helper.get_attribute_value(a) for a in last.attribute}
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
        return model, None
    nodes = list(g.node)
    a_name = last.input[0]
    a_dq = gr.prod.get(a_name)
    moved = False
    if a_dq is not None and a_dq.op_type in ("Flatten", "Reshape"):
        mover, a_dq = a_dq, gr.prod.get(a_dq.input[0])
        if a_dq is None or a_dq.op_type != "DequantizeLinear":
            return model, None
        sc, zp = gr.const(a_dq.input[1]), gr.const(a_dq.input[2])
        if sc is None or zp is None or sc.size != 1:
            return model, None
        zt = TensorProto.UINT8 if zp.dtype == np.uint8 else TensorProto.INT8
        pair = _qdq_pair(g, a_name, float(sc.reshape(-1)[0]), int(zp.reshape(-1)[0]), zt, f"{a_name}__rq")
        last.input[0] = f"{a_name}__rq"
        i = nodes.index(mover)
        nodes[i + 1:i + 1] = pair
        moved = True
    elif a_dq is None or a_dq.op_type != "DequantizeLinear":
        return model, None
    w_dq = gr.prod.get(last.input[1])
    if w_dq is None or w_dq.op_type != "DequantizeLinear":
        return model, None
    sa = gr.const(a_dq.input[1])
    sw = gr.const(w_dq.input[1])
    if sa is None or sw is None or sa.size != 1:
        return model, None
    record = {"flatten_requantized": moved, "bias": None}
    if len(last.input) > 2 and last.input[2]:
        bias = gr.const(last.input[2])
        if bias is None:
            return model, None
        n_out = bias.size
        bscale = (float(sa.reshape(-1)[0]) * (sw.astype(np.float64).reshape(-1) if sw.size > 1 else
                                               np.full(n_out, float(sw.reshape(-1)[0])))).astype(np.float32)
        bq = np.round(bias.astype(np.float64).reshape(-1) / bscale.astype(np.float64))
        if np.abs(bq).max(initial=0) >= 2**31 - 1:
            return model, None
        stem = f"{last.name or output}__bias"
        g.initializer.extend([numpy_helper.from_array(bq.astype(np.int32), f"{stem}_int32"),
                              numpy_helper.from_array(bscale, f"{stem}_scale"),
                              numpy_helper.from_array(np.zeros(n_out, np.int32), f"{stem}_zp")])
        dq_b = helper.make_node("DequantizeLinear", [f"{stem}_int32", f"{stem}_scale", f"{stem}_zp"], [f"{stem}_dq"],
                                axis=0)
        last.input[2] = f"{stem}_dq"
        nodes.insert(nodes.index(last), dq_b)
        err = float(np.abs(bq * bscale - bias.reshape(-1)).max(initial=0))
        record["bias"] = {"dtype": "int32", "max_abs_rounding": err}
    del g.node[:]
    g.node.extend(nodes)
    _drop_unused(model)
    return model, record


def _drop_unused(model) -> None:
    """Remove initializers and Identity/Constant nodes nothing reads any more."""
    g = model.graph
    while True:
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if n.op_type in ("Identity", "Constant") and not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    used = {i for n in g.node for i in n.input}
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)


def check_tensorrt_qdq(model) -> list[Violation]:
    """Every way ``model``'s Q/DQ nodes break TensorRT's explicit-quantization rules."""
    g = _Graph(model)
    out: list[Violation] = []
    n_qdq = 0
    for node in g.g.node:
        if node.op_type not in QDQ:
            continue
        n_qdq += 1
        name = node.name or node.output[0]
        if len(node.input) < 3:
            out.append(Violation(name, "no zero-point input: its type defaults to uint8; "
                                       "TensorRT needs an int8 zero-point of 0"))
            continue
        scale, zp = g.const(node.input[1]), g.const(node.input[2])
        if scale is None or zp is None:
            out.append(Violation(name, "scale and zero-point must be constants"))
            continue
        if zp.dtype != np.int8:
            out.append(Violation(name, f"zero-point type {zp.dtype}: TensorRT accepts only int8 Q/DQ"))
        if np.any(zp != 0):
            out.append(Violation(name, "non-zero zero-point: TensorRT quantization is symmetric (zero-point 0)"))
        if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
            out.append(Violation(name, "scale must be positive and finite"))
        is_weight = g.const(node.input[0]) is not None
        if scale.size > 1:
            if not is_weight:
                out.append(Violation(name, "per-channel scale on an activation: "
                                           "TensorRT wants one scale per activation tensor"))
            elif _axis(node) != 0:
                out.append(Violation(name, f"per-channel weight scale on axis {_axis(node)}: "
                                           "TensorRT wants axis 0 (output channels)"))
    if n_qdq == 0:
        out.append(Violation("graph", "no QuantizeLinear/DequantizeLinear nodes: "
                                      "not an explicitly quantized INT8 graph"))
    return out


def qdq_summary(model) -> dict[str, Any]:
    g = _Graph(model)
    counts: dict[str, int] = {}
    for node in g.g.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    zps: dict[str, int] = {}
    for node in g.g.node:
        if node.op_type in QDQ and len(node.input) > 2:
            zp = g.const(node.input[2])
            key = "?" if zp is None else str(zp.dtype)
            zps[key] = zps.get(key, 0) + 1
    return {"ops": counts, "qdq_zero_point_types": zps}


def export_qdq(q_model, path: str | Path, input_size: int, *, opset: int = 17, fold_weights: bool = True,
               uint8_activations: bool = False, integer_gemm: bool = False) -> dict[str, Any]:
    """NNCF model -> Q/DQ ONNX at ``path`` (written atomically); returns a small summary. ``integer_gemm``:
    the classifier laid out for onnxruntime's QGemm (:func:`integer_head`)."""
    import onnx
    import torch
    from nncf import StripFormat, strip

    from ..fileio import atomic_path

    x = torch.zeros(1, 3, input_size, input_size)
    stripped = strip(q_model.cpu().eval(), strip_format=StripFormat.NATIVE, example_input=x)
    path = Path(path)
    with atomic_path(path) as tmp:
        raw = Path(str(tmp) + ".raw.onnx")
        try:
            with torch.no_grad():
                torch.onnx.export(stripped, (x,), str(raw), dynamo=False, opset_version=opset,
                                  input_names=["input"], output_names=["logits"])
            model = onnx.load(str(raw))
        finally:
            raw.unlink(missing_ok=True)
        folded = changed = 0
        if fold_weights:
            model, folded = fold_weight_quantizers(model)
        if uint8_activations:
            model, changed = activations_to_uint8(model)
        head = None
        if integer_gemm:
            model, head = integer_head(model)
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
    return {"path": str(path), "weights_folded": folded, "activations_to_uint8": changed, "integer_head": head,
            **qdq_summary(model)}
