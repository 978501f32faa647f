"""The pipeline: all stages on a tiny config, skipping what is up to date, redoing what changed,
resuming an interrupted training stage, --from/--until; and `doctor`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import TINY_KW
from edge_fgic.cli import app
from edge_fgic.errors import UserError
from edge_fgic.pipeline import DEMO_PIPELINE, STAGES, PipelineConfig, load_pipeline, run_pipeline

runner = CliRunner()


def tiny_sections(data: str) -> dict:
    return {
        "teacher": {"data": data, "model": "convnext_atto", "variant": "bn-relu", "model_kwargs": TINY_KW,
                    "input_size": 32, "crop_pct": 1.0, "epochs": 1, "batch_size": 8, "workers": 0, "gradcam": 0,
                    "auto_augment": "none",
                    "mean": [0.5] * 3, "std": [0.25] * 3, "lr": 3e-3},
        "student": {"epochs": 2, "gradcam": 0},
        "qat": {"epochs": 1, "calib_size": 20, "workers": 0},
        "export": {"targets": "onnx", "precisions": ["fp32", "int8"], "min_agreement": 80.0, "split": "train",
                   "check_images": 0},
        # 18 val images: one is 5.6 pt; the INT8 ONNX flips 2 of them (QAT agreement 88.9 %), net drop measured 0.0
        "bench": {"split": "val", "runs": 10, "roofline": False, "max_drop": 11.2},
    }


def _records(out: Path) -> dict:
    return {s: json.loads((out / s / "stage.json").read_text()) for s in STAGES if (out / s / "stage.json").exists()}


@pytest.fixture(scope="module")
def done(tiny_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("pipe") / "run"
    sections = tiny_sections(f"synthetic={tiny_synth}")
    res = run_pipeline(PipelineConfig(out=str(out), sections=sections), progress=False)
    return out, sections, res


def test_every_stage_runs_and_records_its_inputs(done):
    out, _, res = done
    recs = _records(out)
    assert list(recs) == list(STAGES) and all(r["status"] == "done" for r in recs.values())
    assert (recs["student"]["inputs"]["teacher"]
            == __import__("edge_fgic.fileio", fromlist=["x"]).sha256_file(out / "teacher" / "best.pt"))
    assert (out / "export" / "student-fp32.onnx").is_file() and (out / "export" / "student-int8.onnx").is_file()
    report = json.loads((out / "bench" / "bench.json").read_text())
    names = [r["name"] for r in report["rows"]]
    assert names[0] == "reference: student/best.pt" and "teacher/best.pt" in names and "student-int8.onnx" in names
    assert (out / "bench" / "bench.md").is_file() and res["stages"]["bench"]["passed"]
    rows = {r["name"]: r for r in report["rows"]}
    # the gate judges exports
    assert rows["teacher/best.pt"]["gated"] is False and rows["student-int8.onnx"]["gated"] is True
    fp32, int8 = rows["student-fp32.onnx"], rows["student-int8.onnx"]
    assert fp32["agreement"] == 100.0 and fp32["drop"] == 0.0, fp32  # FP32 ONNX is the student, image for image
    assert int8["status"] == "ok" and int8["drop"] <= done[1]["bench"]["max_drop"] and int8["passed"], int8


def test_rerun_skips_unchanged_and_redoes_what_changed(done):
    out, sections, _ = done
    before = _records(out)
    run_pipeline(PipelineConfig(out=str(out), sections=sections), progress=False)
    assert _records(out) == before  # nothing ran
    changed = copy.deepcopy(sections)
    changed["bench"]["max_drop"] = -100.0  # only the last stage's options, and a gate no artifact can meet
    res = run_pipeline(PipelineConfig(out=str(out), sections=changed, from_stage="export"), progress=False)
    after = _records(out)
    assert after["export"] == before["export"] and after["bench"]["key"] != before["bench"]["key"]
    rows = res["bench"]["rows"]  # the violated gate fails the exports and the run, not the checkpoints
    assert res["passed"] is False and after["bench"]["passed"] is False
    assert {r["name"] for r in rows if not r["passed"]} == {r["name"] for r in rows if r["gated"]} != set()


@pytest.mark.slow  # teacher + student training, twice
def test_interrupted_training_stage_resumes_from_its_checkpoint(tiny_synth, tmp_path, monkeypatch):
    import edge_fgic.training.trainer as trainer
    out = tmp_path / "run"
    sections = tiny_sections(f"synthetic={tiny_synth}")
    real = trainer._loader
    calls = []

    def interrupting(ds, cfg, shuffle, epoch, *a, **k):
        if cfg.teacher and epoch == 1 and not calls:  # the student's 2nd epoch: Ctrl-C
            calls.append(epoch)
            raise KeyboardInterrupt
        return real(ds, cfg, shuffle, epoch, *a, **k)
    monkeypatch.setattr(trainer, "_loader", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(PipelineConfig(out=str(out), sections=sections, until="student"), progress=False)
    rec = json.loads((out / "student" / "stage.json").read_text())
    assert rec["status"] == "running" and (out / "student" / "last.pt").is_file()
    teacher_before = json.loads((out / "teacher" / "stage.json").read_text())
    run_pipeline(PipelineConfig(out=str(out), sections=sections, until="student"), progress=False)
    assert json.loads((out / "teacher" / "stage.json").read_text()) == teacher_before  # not retrained
    epochs = [json.loads(ln)["epoch"] for ln in (out / "student" / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]  # epoch 1 kept, only epoch 2 redone


def test_interrupted_export_keeps_its_record_and_leaves_no_artifact(done, tmp_path, monkeypatch):
    """Ctrl-C in the export stage (after the first precision): the old artifacts are gone, the record says
    'running', no half set survives; the rerun redoes the export and the bench after it."""
    import shutil

    import edge_fgic.export.exporter as exporter
    src, sections, _ = done
    out = tmp_path / "run"
    shutil.copytree(src, out)
    real, calls = exporter.export, []

    def interrupting(cfg, **kw):
        calls.append(cfg.precision)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cfg, **kw)
    monkeypatch.setattr(exporter, "export", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(PipelineConfig(out=str(out), sections=sections, from_stage="export", force=True), progress=False)
    assert json.loads((out / "export" / "stage.json").read_text())["status"] == "running"
    assert not (out / "export" / "student-int8.onnx").exists() and not [p for p in (out / "export").iterdir()
                                                                        if p.name.startswith(".")]
    monkeypatch.setattr(exporter, "export", real)
    (out / "bench" / ".bench-killed").mkdir()  # what a SIGKILLed bench leaves: the next bench run clears it
    run_pipeline(PipelineConfig(out=str(out), sections=sections), progress=False)
    recs = _records(out)
    assert (recs["export"]["status"] == recs["bench"]["status"] == "done"
            and (out / "export" / "student-int8.onnx").is_file())
    assert recs["teacher"] == _records(src)["teacher"]  # training stages untouched
    assert not [p.name for p in (out / "bench").iterdir() if p.name.startswith(".")]


def test_from_a_stage_that_never_ran_and_bad_configs_are_one_line(tiny_synth, tmp_path):
    with pytest.raises(UserError, match="has not run yet"):
        run_pipeline(PipelineConfig(out=str(tmp_path / "r"), sections=tiny_sections("x"), from_stage="qat"),
                     progress=False)
    bad = tmp_path / "p.yaml"
    bad.write_text("teacher: {}\nstudnet: {}\n")
    r = runner.invoke(app, ["pipeline", "-c", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown section" in r.output.splitlines()[-1]


def test_shipped_pipeline_yaml_is_the_embedded_default_and_a_recipe_means_the_teacher(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    assert load_pipeline(str(root / "train" / "pipeline-synthetic.yaml")) == DEMO_PIPELINE
    assert (load_pipeline(str(root / "train" / "pipeline-oxford17.yaml"))["teacher"]["recipe"]
            == "train/oxford17flowers.yaml")
    monkeypatch.chdir(tmp_path)  # run from elsewhere: the config's recipe paths still resolve
    assert (load_pipeline(str(root / "train" / "pipeline-oxford17.yaml"))["teacher"]["recipe"]
            == str(root / "train" / "oxford17flowers.yaml"))
    monkeypatch.chdir(root)
    plain = load_pipeline(str(root / "train" / "cub200.yaml"))
    assert (plain["teacher"] == {"recipe": str(root / "train" / "cub200.yaml")}
            and "model_kwargs" not in plain["student"])
    assert yaml.safe_load((root / "train" / "pipeline-synthetic.yaml").read_text())["export"]["targets"] == "all"


def test_doctor_lists_targets_and_backends():
    r = runner.invoke(app, ["doctor"])
    assert r.exit_code == 0, r.output
    for word in ["onnxruntime", "OpenVINO", "LiteRT", "TensorRT", "tensorrt", "tflite", "CPU", "CUDA", "camera"]:
        assert word in r.output
    from edge_fgic.doctor import checks
    cam = checks()["camera"]
    import cv2
    assert cam["opencv"] == cv2.__version__ and cam["gstreamer"] is any(
        ln.strip().startswith("GStreamer:") and "YES" in ln for ln in cv2.getBuildInformation().splitlines())
