"""INT8: NNCF PTQ and QAT, the quantized checkpoint round trip, resume, refusals, and the
ONNX Q/DQ tools (weight folding, exact uint8 rewrite, TensorRT rule checker)."""

from __future__ import annotations


import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from edge_fgic.cli import app
from edge_fgic.errors import UserError
from edge_fgic.models import load_checkpoint, load_model
from edge_fgic.models.fuse import fuse_for_deploy
from edge_fgic.models.quantized import quantizers
from edge_fgic.quant.nncf_quant import calibration_subset
from edge_fgic.quant.onnx_qdq import activations_to_uint8, check_tensorrt_qdq, export_qdq

runner = CliRunner()


def _val_images(tiny_synth, ck, n=12):
    from edge_fgic.data.datasets import open_split, parse_data_spec
    from edge_fgic.data.transforms import eval_transform
    ds = open_split(parse_data_spec(f"synthetic={tiny_synth}"), "train", eval_transform(ck.preprocess), progress=False)
    return torch.stack([ds[i][0] for i in range(n)])


def test_ptq_checkpoint_round_trips_and_stays_close_to_fp32(tiny_bnrelu_run, ptq_signed, tiny_synth):
    q, qck = load_model(ptq_signed / "best.pt")  # rebuilt from the saved NNCF config, weights_only
    rec = qck.quantization
    assert rec["mode"] == "ptq" and rec["calibration"]["images"] == 20 and len(rec["calibration"]["sha256"]) == 64
    assert rec["source_sha256"] == load_checkpoint(tiny_bnrelu_run).sha256
    assert rec["tensorrt_legal"] and rec["quantizers"]["unsigned_activations"] == 0
    assert rec["quantizers"]["weights"] > 0 and rec["quantizers"]["activations"] > 0
    assert {"fp32_top1", "int8_top1", "agreement"} <= set(rec["val"])  # recorded in the checkpoint
    assert all(m.signed for _, m in quantizers(q))
    ref, fck = load_model(tiny_bnrelu_run)
    x = _val_images(tiny_synth, fck)
    with torch.no_grad():
        a, b = fuse_for_deploy(ref)(x), q(x)
    # INT8 stays close to FP32 on calibration-distribution images: small relative error, same ranking mostly
    assert ((a - b).abs().max() / a.abs().max()).item() < 0.25
    assert (a.argmax(1) == b.argmax(1)).float().mean().item() >= 0.75
    assert (ptq_signed / "quantize.json").is_file() and (ptq_signed / "eval-val" / "metrics.json").is_file()


def test_unsigned_ptq_keeps_nncf_uint8_after_relu(ptq_unsigned):
    rec = load_checkpoint(ptq_unsigned / "best.pt").quantization
    assert rec["quantizers"]["unsigned_activations"] > 0 and not rec["tensorrt_legal"]


def test_qat_trains_saves_and_resumes(tiny_bnrelu_run, tmp_path):
    out = tmp_path / "qat"
    r = runner.invoke(app, ["quantize", "--mode", "qat", "-m", str(tiny_bnrelu_run), "--out", str(out), "--epochs", "1",
                            "--calib-size", "16", "--signed", "--batch-size", "8", "--seed", "3", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    tc = load_checkpoint(out / "last.pt").train_config
    # flags reach the QAT loop
    assert (tc["seed"], tc["device"], tc["channels_last"], tc["pretrained"]) == (3, "cpu", False, "")
    assert tc["amp"] == "off"  # fake quantization in float32 even on CUDA (bf16 autocast cost 1.1 pt on Oxford 17)
    assert "INT8 top-1" in r.output
    last = load_checkpoint(out / "last.pt")
    assert last.quantization["mode"] == "qat" and last.extra["epoch"] == 0
    assert last.train_config["teacher"] == str(tiny_bnrelu_run)  # QAT distils from the FP32 model by default
    q1, _ = load_model(out / "best.pt")
    # resume with one more epoch continues from last.pt (same quantizer placement, trained scales)
    r = runner.invoke(app, ["quantize", "--mode", "qat", "-m", str(tiny_bnrelu_run), "--out", str(out), "--epochs", "2",
                            "--calib-size", "16", "--signed", "--batch-size", "8", "--seed", "3", "--device", "cpu",
                            "--resume"])
    assert r.exit_code == 0, r.output
    assert "resuming" in r.output and "epoch 2/2" in r.output
    last2 = load_checkpoint(out / "last.pt")
    assert last2.extra["epoch"] == 1 and len(last2.extra["history"]) == 2
    assert last2.quantization["calibration"] == last.quantization["calibration"]
    best = load_checkpoint(out / "best.pt")
    assert best.quantization["tensorrt_legal"]
    # QAT picks best.pt by agreement with its FP32 model (logged every epoch next to top-1)
    assert "val_agreement" in best.metrics and "val_agreement" in (out / "metrics.csv").read_text().splitlines()[0]
    assert best.metrics["val_agreement"] == max(r["val_agreement"] for r in last2.extra["history"])


def test_refusals_are_one_line_and_write_nothing(tiny_bnrelu_run, ptq_signed, tmp_path, imagefolder):
    cases = [
        (["--calib-size", "9999"], "calibration set of 9999 images asked"),
        (["-m", str(ptq_signed / "best.pt")], "already quantized"),
        (["--out", str(tiny_bnrelu_run.parent)], "would overwrite it"),
        (["--data", str(imagefolder(classes=("a", "b"), splits={"train": 2, "val": 1}))], "classes differ"),
    ]
    for extra, msg in cases:
        out = tmp_path / "x"
        args = ["quantize", "--mode", "ptq", "-m", str(tiny_bnrelu_run), "--out", str(out), *extra]
        if "--out" in extra:
            args = ["quantize", "--mode", "ptq", "-m", str(tiny_bnrelu_run), *extra]
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (extra, r.output)
        errors = [line for line in r.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and msg in errors[0], r.output
        assert not out.exists()


def test_calibration_subset_is_stratified_and_deterministic(tiny_synth):
    from edge_fgic.data.datasets import open_split, parse_data_spec
    ds = open_split(parse_data_spec(f"synthetic={tiny_synth}"), "train", progress=False)
    a, ra = calibration_subset(ds, 12, 0, True, "x")
    b, rb = calibration_subset(ds, 12, 0, True, "x")
    c, _ = calibration_subset(ds, 12, 1, True, "x")
    assert a == b and ra["sha256"] == rb["sha256"] and a != c
    assert sorted(np.bincount([ds.targets[i] for i in a])) == [2] * 6  # 12 images, 6 classes
    _, rd = calibration_subset(ds, 0, 0, False, "x")
    assert rd["images"] == len(ds) < 300 and "only" in rd["note"]
    with pytest.raises(UserError, match="only 36"):
        calibration_subset(ds, 37, 0, True, "x")


# ---------------------------------------------------------------- ONNX Q/DQ


def test_signed_export_is_tensorrt_legal_and_uint8_rewrite_is_exact(ptq_signed, tiny_synth, tmp_path):
    q, qck = load_model(ptq_signed / "best.pt")
    path = tmp_path / "int8.onnx"
    info = export_qdq(q, path, 32)
    model = onnx.load(str(path))
    assert info["weights_folded"] > 0 and check_tensorrt_qdq(model) == []
    assert path.stat().st_size < 0.5 * sum(p.numel() * 4 for p in q.parameters())  # int8 weights
    u8, changed = activations_to_uint8(model)
    assert changed > 0 and check_tensorrt_qdq(u8)  # uint8 is not TensorRT's form ...
    x = _val_images(tiny_synth, qck, 4).numpy()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # reference Q/DQ kernels: exact maths
    s8 = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    su = ort.InferenceSession(u8.SerializeToString(), so, providers=["CPUExecutionProvider"])
    a = np.concatenate([s8.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    b = np.concatenate([su.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    np.testing.assert_array_equal(a, b)  # ... but numerically identical
    with torch.no_grad():
        ref = q(torch.from_numpy(x)).numpy()
    assert np.abs(a - ref).max() < 0.05 * np.abs(ref).max() + 1e-3  # ONNX graph == the NNCF model


def _qdq_graph(zp_dtype=TensorProto.INT8, zp_val=0, act_scale_shape=(), w_axis=0, w_scale_n=4, with_zp=True):
    """x -> Q -> DQ -> Conv(W: DQ(int8 weights)) -> y, with knobs to break each TensorRT rule."""
    np_zp = {TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8}[zp_dtype]
    inits = [
        numpy_helper.from_array(np.full(act_scale_shape, 0.1, np.float32), "s"),
        numpy_helper.from_array(np.full(act_scale_shape, zp_val, np_zp), "zp"),
        numpy_helper.from_array(np.ones((4, 3, 1, 1), np.int8), "w"),
        numpy_helper.from_array(np.full((w_scale_n,), 0.02, np.float32), "ws"),
        numpy_helper.from_array(np.zeros((w_scale_n,), np.int8), "wzp"),
    ]
    zp = ["zp"] if with_zp else []
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", *zp], ["xq"], name="q_act"),
        helper.make_node("DequantizeLinear", ["xq", "s", *zp], ["xd"], name="dq_act"),
        helper.make_node("DequantizeLinear", ["w", "ws", "wzp"], ["wd"], name="dq_w", axis=w_axis),
        helper.make_node("Conv", ["xd", "wd"], ["y"], name="conv"),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("kwargs,rule", [
    ({}, None),
    ({"zp_dtype": TensorProto.UINT8}, "only int8"),
    ({"zp_val": 3}, "non-zero zero-point"),
    ({"act_scale_shape": (3,)}, "per-channel scale on an activation"),
    ({"w_axis": 1, "w_scale_n": 3}, "axis 1"),
    ({"with_zp": False}, "no zero-point input"),
])
def test_tensorrt_checker_accepts_legal_graphs_and_names_each_broken_rule(kwargs, rule):
    if kwargs.get("act_scale_shape"):
        kwargs = {**kwargs}
    found = check_tensorrt_qdq(_qdq_graph(**kwargs))
    if rule is None:
        assert found == []
    else:
        assert found and any(rule in str(v) for v in found), [str(v) for v in found]


def test_tensorrt_checker_rejects_a_float_graph():
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    assert "no QuantizeLinear" in str(check_tensorrt_qdq(helper.make_model(g))[0])


def test_a_model_nncf_cannot_trace_is_one_line(tiny_bnrelu_run, tmp_path, monkeypatch):
    import nncf

    def refuse(*args, **kwargs):  # what NNCF raises on graphs it cannot trace
        raise nncf.InternalError("Could not build NNCFGraph: unsupported operator\nmore detail")

    monkeypatch.setattr(nncf, "quantize", refuse)
    out = tmp_path / "q"
    r = runner.invoke(app, ["quantize", "--mode", "ptq", "-m", str(tiny_bnrelu_run), "--out", str(out),
                            "--calib-size", "8"])
    assert r.exit_code == 2
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "NNCF could not trace" in errors[0] and "unsupported operator" in errors[0]
    assert not out.exists()
