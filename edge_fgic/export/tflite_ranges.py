"""Carry NNCF's activation ranges into the TFLite INT8 model instead of recalibrating them.

ai-edge-quantizer derives every activation's int8 scale/zero-point from min/max statistics it
collects on the float model. Recalibrating throws away what QAT learned (its ranges) and moves the
grid at every layer: the demo's TFLite INT8 agreed with its NNCF model on 93.7 % of val (AVX-512
machine; 95.7 % on another), where the runtimes that execute NNCF's own quantizers agree on 99 %.

NNCF quantizes almost every tensor TFLite does (the model input, each convolution's output after its
fused ReLU, each residual add, the pooled features). Names do not line up between the two graphs, so
tensors are paired by value: the input of each NNCF activation quantizer on a few calibration images
against every tensor of the float .tflite on the same images (NCHW -> NHWC), aligned in execution
order (relative error below ``MATCH_MAX``; order settles ties such as a block whose residual branch is
still near zero, whose output then equals its input); the range then replaces the calibrated min/max of
that tensor, so TFLite's int8 grid is NNCF's (a signed 8-bit
quantizer with scale s covers [-128 s/127, s]: TFLite's scale s/127, zero-point 0, exactly). Tensors
NNCF does not quantize (the logits) keep their calibrated range. Anything ambiguous is left
calibrated and named in the record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

MATCH_MAX = 0.15      # max |Δ| / max |a| of an accepted pair (seen: 0.004-0.06; wrong pairs >= 0.2)


def quantizer_range(q) -> tuple[float, float, int]:
    """(low, high, levels) of an NNCF activation quantizer, as NNCF's forward computes them."""
    import torch
    with torch.no_grad():
        levels = int(q.levels)
        if hasattr(q, "input_low"):  # AsymmetricQuantizer
            low = float(q.input_low.reshape(-1)[0])
            rng = float(q.input_range.abs().reshape(-1)[0]) + float(getattr(q, "eps", 0.0))
            return low, low + rng, levels
        scale = float(q.scale.abs().reshape(-1)[0]) + float(getattr(q, "eps", 0.0))
        return scale * q.level_low / q.level_high, scale, levels


def nncf_activations(q_model, images: np.ndarray) -> list[dict[str, Any]]:
    """Each enabled NNCF activation quantizer: its name, range and its input on ``images`` (NCHW)."""
    import torch

    from ..models.quantized import is_weight_quantizer, quantizers
    acts = [(n, q) for n, q in quantizers(q_model)
            if not is_weight_quantizer(n, q) and bool(getattr(q, "enabled", [1])[0])]
    seen: dict[str, np.ndarray] = {}  # filled in execution order (dicts keep insertion order)

    def keep(name: str):
        def hook(module, inputs, output) -> None:  # returns None: the output is left as it is
            seen.setdefault(name, inputs[0].detach().float().numpy())
        return hook
    hooks = [q.register_forward_hook(keep(n)) for n, q in acts]
    try:
        with torch.no_grad():
            q_model.cpu().eval()(torch.from_numpy(images))
    finally:
        for h in hooks:
            h.remove()
    out = []
    by_name = dict(acts)
    for n in seen:  # execution order
        low, high, levels = quantizer_range(by_name[n])
        a = seen[n]
        out.append({"name": n.split("post_hooks.")[-1].split("pre_hooks.")[-1], "low": low, "high": high,
                    "levels": levels, "value": a.transpose(0, 2, 3, 1) if a.ndim == 4 else a})
    return out


def float_tensors(float_tflite: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every float tensor of the float .tflite on ``images`` (NCHW in, NHWC inside), by name."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=str(float_tflite), experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    got: dict[str, list[np.ndarray]] = {}
    for i in range(len(images)):
        it.set_tensor(inp["index"], np.ascontiguousarray(images[i:i + 1].transpose(0, 2, 3, 1)))
        it.invoke()
        for d in it.get_tensor_details():
            if d["dtype"] != np.float32 or len(d["shape"]) == 0:
                continue
            try:
                got.setdefault(d["name"], []).append(np.array(it.get_tensor(d["index"])))
            except ValueError:  # a constant or freed buffer
                continue
    # execution order: the graph inputs, then each op's outputs in the op order of the plan
    order = [d["name"] for d in it.get_input_details()]
    names = {d["index"]: d["name"] for d in it.get_tensor_details()}
    for op in it._get_ops_details():
        order += [names[int(t)] for t in op["outputs"] if int(t) in names]
    order += [k for k in got if k not in order]
    return {k: np.concatenate(got[k]) for k in dict.fromkeys(order) if k in got and len(got[k]) == len(images)
            and got[k][0].shape[0] == 1}


def _error(v: np.ndarray, t: np.ndarray) -> float:
    if t.size != v.size:
        return float("inf")
    t = t.reshape(v.shape) if t.shape != v.shape else t
    return float(np.abs(t - v).max() / max(1e-6, float(np.abs(v).max())))


def match(acts: list[dict[str, Any]], tensors: dict[str, np.ndarray]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """NNCF quantizer -> the TFLite tensor holding the same values; and the quantizers left unmatched.

    Both lists are in execution order, so the pairing is an order-preserving alignment (most pairs,
    then the least total error): values alone are ambiguous where a residual branch is near zero
    and a block's output equals its input."""
    names = list(tensors)
    n, m = len(acts), len(names)
    err = [[_error(a["value"], tensors[b]) for b in names] for a in acts]
    # best[i][j]: (pairs, -total error) aligning acts[:i] with names[:j]
    best = [[(0, 0.0)] * (m + 1) for _ in range(n + 1)]
    step = [[""] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == j == 0:
                continue
            options = []
            if i:
                options.append((best[i - 1][j], "skip_a"))
            if j:
                options.append((best[i][j - 1], "skip_b"))
            if i and j and err[i - 1][j - 1] <= MATCH_MAX:
                c, e = best[i - 1][j - 1]
                options.append(((c + 1, e - err[i - 1][j - 1]), "pair"))
            best[i][j], step[i][j] = max(options, key=lambda o: o[0])
    pairs: dict[str, dict[str, Any]] = {}
    unmatched: list[str] = []
    i, j = n, m
    while i or j:
        move = step[i][j]
        if move == "pair":
            a = acts[i - 1]
            pairs[names[j - 1]] = {**{k: a[k] for k in ("name", "low", "high", "levels")}, "error": err[i - 1][j - 1]}
            i, j = i - 1, j - 1
        elif move == "skip_a":
            unmatched.append(acts[i - 1]["name"])
            i -= 1
        else:
            j -= 1
    return dict(reversed(list(pairs.items()))), unmatched[::-1]


def carry_ranges(q_model, float_tflite: Path, images: np.ndarray, calib: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Replace the calibrated min/max of every tensor NNCF quantizes with NNCF's range (in place);
    return what was carried, for the manifest."""
    acts = nncf_activations(q_model, images)
    pairs, unmatched = match(acts, float_tensors(float_tflite, images))
    carried = []
    for tensor, p in pairs.items():
        if tensor not in calib or not calib[tensor]:
            unmatched.append(p["name"])
            continue
        ref = calib[tensor]
        shape = np.asarray(ref["min"]).shape
        calib[tensor] = {**ref, "min": np.full(shape, p["low"], np.float32),
                         "max": np.full(shape, p["high"], np.float32)}
        carried.append({"quantizer": p["name"], "tensor": tensor, "range": [p["low"], p["high"]], "levels": p["levels"],
                        "match_error": round(p["error"], 5)})
    return {"method": "NNCF activation ranges carried (tensors paired by value)", "carried": len(carried),
            "nncf_activation_quantizers": len(acts), "unmatched": unmatched, "tensors": carried,
            "calibrated_only": len([k for k in calib if k not in pairs])}
