"""Same arithmetic on every CPU: every runner asks its runtime for its execution explicitly and reads
back what ran; the OpenVINO round trip holds under every oneDNN instruction-set level this CPU offers.

Runtimes change their defaults with the CPU (OpenVINO: bf16 on AVX-512 BF16 / AMX, fp16 on ARM cores
with fp16; onnxruntime and LiteRT: threads), so these tests check the request and the read-back, not
the machine's luck. See benchmarks/portability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_fgic.bench.harness import ISA_LEVELS, isa_levels_here
from edge_fgic.bench.sysinfo import cpu_flags
from edge_fgic.errors import UserError
from edge_fgic.export.exporter import TOLERANCE, ExportConfig, export
from edge_fgic.runtime import open_runner
from edge_fgic.runtime.base import describe_execution

BF16_CPU = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


@pytest.fixture(scope="module")
def artifacts(tiny_bnrelu_run: Path, ptq_unsigned: Path, tmp_path_factory) -> dict[str, Path]:
    """FP32 ONNX / OpenVINO / TFLite and INT8 ONNX / OpenVINO of the tiny model, each proved by export."""
    out = tmp_path_factory.mktemp("portable")
    found: dict[str, Path] = {}
    for model, precision, targets in ((tiny_bnrelu_run, "fp32", ("onnx", "openvino", "tflite")),
                                      (ptq_unsigned / "best.pt", "int8", ("onnx", "openvino"))):
        for target in targets:
            res = export(ExportConfig(model=str(model), target=target, precision=precision, out=str(out), name="m",
                                      threads=2), progress=False)
            assert res[0].status == "ok", res[0].message
            found[f"{target}-{precision}"] = Path(res[0].artifact)
    return found


def test_every_runner_asks_explicitly_and_reads_back_f32(artifacts, tiny_bnrelu_run):
    """On any CPU: f32 asked for and read back, the thread count asked for and read back."""
    for key, path in [*artifacts.items(), ("torch-fp32", tiny_bnrelu_run)]:
        r = open_runner(path, threads=1)
        ex = r.execution
        assert ex["requested"]["precision"] == "f32" and ex["requested"]["threads"] == 1, (key, ex)
        assert ex["effective"]["precision"] == "f32" and ex["precision_ok"], (key, ex)
        assert ex["effective"]["threads"] == 1, (key, ex)
        assert ex["artifact_precision"] == key.split("-")[1]
        assert describe_execution(ex).endswith("1 thr")


def test_openvino_read_back_names_the_hint_and_every_compute_node(artifacts):
    r = open_runner(artifacts["openvino-fp32"], threads=1)
    eff = r.execution["effective"]
    assert eff["INFERENCE_PRECISION_HINT"] == "f32" and eff["DYNAMIC_QUANTIZATION_GROUP_SIZE"] == 0
    assert eff["compute_ops"] > 0 and eff["compute_precisions"] == {"f32": eff["compute_ops"]}
    assert all(k.endswith("_f32") for k in eff["kernels"]), eff["kernels"]  # the kernel names carry the type
    q = open_runner(artifacts["openvino-int8"], threads=1).execution["effective"]
    # every convolution of NNCF's IR runs in integer; the classifier is kept in float by NNCF's ignored scope
    assert q["integer_ops"] >= q["compute_ops"] - 1 > 0, q


def test_onnxruntime_read_back_counts_integer_kernels(artifacts):
    fp32 = open_runner(artifacts["onnx-fp32"], threads=1).execution["effective"]
    int8 = open_runner(artifacts["onnx-int8"], threads=1).execution["effective"]
    assert fp32["integer_ops"] == 0 and fp32["compute_ops"] > 0 and fp32["float_ops_precision"] == "f32"
    assert int8["integer_ops"] > 0, int8["optimized_ops"]
    assert fp32["providers"] == ["CPUExecutionProvider"]


def test_litert_read_back_counts_delegated_nodes(artifacts):
    eff = open_runner(artifacts["tflite-fp32"], threads=1).execution["effective"]
    d = eff["delegate"]
    assert d["name"] == "XNNPACK" and d["total_nodes"] > 0
    assert d["delegated_nodes"] == d["total_nodes"] and d["undelegated_ops"] == {}, d  # the FP32 student is fully taken


def test_round_trip_records_what_ran(artifacts):
    side = json.loads(Path(str(artifacts["openvino-fp32"]) + ".json").read_text())
    ex = side["round_trip"]["execution"]
    assert ex["requested"]["precision"] == ex["effective"]["precision"] == "f32"
    assert side["round_trip"]["max_rel_diff"] <= TOLERANCE["fp32"]["max_rel_diff"] == 1e-5


@pytest.mark.skipif(not BF16_CPU, reason="this CPU has no AVX-512 BF16 / AMX: OpenVINO's default is f32 here")
def test_openvino_default_would_run_bf16_and_the_round_trip_refuses_it(artifacts, tiny_bnrelu_run, tmp_path,
                                                                       monkeypatch):
    """What the explicit request prevents: without the hint this CPU runs the FP32 IR in bf16, and the
    export's read-back check refuses it by name, whatever the logits say."""
    import openvino as ov
    real = ov.Core.compile_model

    def without_hint(self, model, device, config=None):
        config = {k: v for k, v in (config or {}).items() if k != "INFERENCE_PRECISION_HINT"}
        return real(self, model, device, config)

    monkeypatch.setattr(ov.Core, "compile_model", without_hint)
    assert open_runner(artifacts["openvino-fp32"]).execution["effective"]["precision"] == "bf16"
    with pytest.raises(UserError, match=r"asked openvino for f32 arithmetic, it ran bf16: this CPU has .*bf16"):
        export(ExportConfig(model=str(tiny_bnrelu_run), target="openvino", out=str(tmp_path / "x"), name="m"),
               progress=False)
    assert not (tmp_path / "x" / "m-fp32.xml").exists()


@pytest.mark.skipif(not BF16_CPU, reason="bf16 arithmetic needs AVX-512 BF16 / AMX")
def test_bf16_only_on_request_and_labelled(artifacts):
    r = open_runner(artifacts["openvino-fp32"], precision="bf16")
    assert r.execution["effective"]["precision"] == "bf16" and r.execution["precision_ok"]
    assert describe_execution(r.execution).startswith("bf16")
    with pytest.raises(UserError, match="cannot be asked to compute in bf16"):
        open_runner(artifacts["onnx-fp32"], precision="bf16")


_SWEEP = r"""
import json, sys
import numpy as np
from edge_fgic.runtime import open_runner
spec = json.load(open(sys.argv[1]))
x = np.load(spec["images"])
out = {}
for key, path in spec["artifacts"].items():
    r = open_runner(path, threads=1)
    out[key] = {"logits": r.predict(x).tolist(), "execution": r.execution}
print(json.dumps(out))
"""


def test_openvino_round_trip_holds_under_every_isa_level_this_cpu_offers(artifacts, tiny_bnrelu_run, ptq_unsigned,
                                                                         tmp_path):
    """ONEDNN_MAX_CPU_ISA caps OpenVINO's kernels (read back from the kernel names) to each level this
    CPU offers: AVX2 stands for an AVX2-only machine, AVX512_CORE for one without VNNI, and so on.
    FP32 stays within 1e-5 of PyTorch and f32 everywhere; INT8 keeps its agreement with the NNCF model."""
    import torch

    from edge_fgic.data.datasets import open_split, parse_data_spec
    from edge_fgic.data.transforms import eval_transform
    from edge_fgic.models.checkpoint import load_model
    levels = isa_levels_here()
    assert levels, "no oneDNN ISA level recognised on this CPU"
    fp32, ck = load_model(tiny_bnrelu_run)
    int8, _ = load_model(ptq_unsigned / "best.pt")
    ds = open_split(parse_data_spec(ck.train_config["data"]), "val", eval_transform(ck.preprocess), progress=False)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        ref = {"fp32": fp32.eval()(x).numpy(), "int8": int8.eval()(x).numpy()}
    np.save(tmp_path / "x.npy", x.numpy())
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"images": str(tmp_path / "x.npy"),
                                "artifacts": {"fp32": str(artifacts["openvino-fp32"]),
                                              "int8": str(artifacts["openvino-int8"])}}))
    seen = {}
    for level in levels:
        env = {**os.environ, "ONEDNN_MAX_CPU_ISA": level}
        proc = subprocess.run([sys.executable, "-c", _SWEEP, str(spec)], capture_output=True, text=True, env=env,
                              timeout=300)
        assert proc.returncode == 0, f"{level}: {proc.stderr[-2000:]}"
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        for key in ("fp32", "int8"):
            ex, y = res[key]["execution"], np.asarray(res[key]["logits"], np.float32)
            assert ex["precision_ok"] and ex["effective"]["INFERENCE_PRECISION_HINT"] == "f32", (level, key, ex)
            kernels = " ".join(ex["effective"]["kernels"]).lower()
            if level in ("SSE41", "AVX2"):  # the cap is honoured: no AVX-512 kernel ran
                assert "avx512" not in kernels and "amx" not in kernels, (level, kernels)
            if level != "AVX512_CORE_AMX":
                assert "amx" not in kernels, (level, kernels)
            agree = float((y.argmax(1) == ref[key].argmax(1)).mean() * 100)
            rel = float(np.abs(y - ref[key]).max() / max(1.0, np.abs(ref[key]).max()))
            seen[(level, key)] = (agree, rel, sorted(ex["effective"]["kernels"]))
            if key == "fp32":
                assert rel <= TOLERANCE["fp32"]["max_rel_diff"], (level, rel)
            else:
                assert agree >= TOLERANCE["int8"]["min_agreement"], (level, agree)
    assert set(ISA_LEVELS) >= set(levels)
    print({k: v[:2] for k, v in seen.items()})


def test_the_cli_offers_exactly_the_isa_levels_the_harness_knows():
    from edge_fgic import cli
    assert [e.value for e in cli.IsaLevel] == list(ISA_LEVELS)


def test_onnxruntime_runs_every_node_of_our_int8_in_integer_like_quantize_static(artifacts, tmp_path):
    """The INT8 ONNX is laid out so onnxruntime fuses every compute node, the classifier Gemm included (QGemm
    with float logits), and so gets as many integer kernels as its own quantize_static on our FP32 ONNX."""
    import numpy as np
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.items = iter([{"input": rng.random((1, 3, 32, 32), dtype=np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.items, None)

    peer = tmp_path / "peer-int8.onnx"
    quantize_static(str(artifacts["onnx-fp32"]), str(peer), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    ours = open_runner(artifacts["onnx-int8"], threads=1).execution["effective"]
    from edge_fgic.runtime.onnxruntime_runner import optimized_graph_summary
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "peer.opt.onnx")
    ort.InferenceSession(str(peer), so, providers=["CPUExecutionProvider"])
    theirs = optimized_graph_summary(so.optimized_model_filepath)
    assert ours["integer_ops"] == ours["compute_ops"] == theirs["integer_ops"], (ours["optimized_ops"],
                                                                                 theirs["optimized_ops"])
    assert "QGemm" in ours["optimized_ops"] and "Gemm" not in ours["optimized_ops"]
    # the logits stay float (quantize_static quantizes them): the graph ends in the Gemm, not in a DequantizeLinear
    g = onnx.load(str(artifacts["onnx-int8"])).graph
    assert next(n for n in g.node if "logits" in n.output).op_type == "Gemm"
