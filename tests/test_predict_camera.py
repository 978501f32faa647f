"""predict and camera: the deployed runner on files, folders, a video and an image sequence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from edge_fgic.cli import app
from edge_fgic.errors import BadImageError, UserError

cv2 = pytest.importorskip("cv2", reason="camera needs OpenCV: pip install 'edge-fgic[camera]'")
runner = CliRunner()


@pytest.fixture(scope="module")
def onnx_model(tiny_bnrelu_run, tmp_path_factory) -> Path:
    from edge_fgic.export.exporter import ExportConfig, export
    out = tmp_path_factory.mktemp("pred") / "export"
    [res] = export(ExportConfig(model=str(tiny_bnrelu_run), target="onnx", out=str(out)), progress=False)
    return Path(res.artifact)


def _torch_top1(ckpt: Path, paths: list[Path]) -> list[str]:
    """An independent path to the answer: the checkpoint's model in eager PyTorch on its own eval transform."""
    from edge_fgic.data.images import load_rgb
    from edge_fgic.data.transforms import eval_transform
    from edge_fgic.models.checkpoint import load_model
    model, ck = load_model(ckpt)
    tf = eval_transform(ck.preprocess)
    with torch.inference_mode():
        logits = model.eval()(torch.stack([tf(load_rgb(p)) for p in paths]))
    return [ck.classes[i] for i in logits.argmax(1).tolist()]


def _split_images(root: Path, split: str) -> list[Path]:
    return sorted((root / split).rglob("*.png"))


# ---------------------------------------------------------------- predict


@pytest.mark.parametrize("which", ["pt", "onnx"])
def test_predict_folder_matches_eager_pytorch_and_scores_by_folder(which, tiny_bnrelu_run, onnx_model, tiny_synth,
                                                                   tmp_path):
    from edge_fgic.predict import PredictConfig, predict
    model = tiny_bnrelu_run if which == "pt" else onnx_model
    res = predict(PredictConfig(model=str(model), sources=[str(tiny_synth / "val")], topk=3, batch=4,
                              out=str(tmp_path / "p.jsonl")), progress=False)
    paths = _split_images(tiny_synth, "val")
    assert [r["file"] for r in res.rows] == [str(p) for p in paths]
    assert [r["label"] for r in res.rows] == _torch_top1(tiny_bnrelu_run, paths)
    for r in res.rows:
        probs = [t["prob"] for t in r["topk"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-5
        assert r["true"] == Path(r["file"]).parent.name
    acc = res.accuracy
    assert acc["images"] == len(paths)
    assert acc["top1"] == pytest.approx(100 * np.mean([r["label"] == r["true"] for r in res.rows]))
    lines = [json.loads(ln) for ln in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert lines == json.loads(json.dumps(res.rows))


def test_predict_files_globs_csv_and_bad_inputs(onnx_model, tiny_synth, tmp_path):
    from edge_fgic.predict import PredictConfig, predict
    one = _split_images(tiny_synth, "test")[0]
    res = predict(PredictConfig(model=str(onnx_model), sources=[str(one), str(tiny_synth / "test" / "*" / "*.png")],
                                topk=50, out=str(tmp_path / "p.csv")), progress=False)
    assert len(res.rows) == 6  # the file named twice counts once; top-k capped at the class count
    assert len(res.rows[0]["topk"]) == 6
    header, *rows = (tmp_path / "p.csv").read_text().splitlines()
    assert header.startswith("file,label,prob,true,correct,top1") and len(rows) == 6

    # outside a class-named folder there is no label and no accuracy
    loose = tmp_path / "loose"
    loose.mkdir()
    Image.open(one).save(loose / "x.png")
    assert predict(PredictConfig(model=str(onnx_model), sources=[str(loose)]), progress=False).accuracy is None

    (loose / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(BadImageError, match="broken.png"):
        predict(PredictConfig(model=str(onnx_model), sources=[str(loose)]), progress=False)
    res = predict(PredictConfig(model=str(onnx_model), sources=[str(loose)], skip_bad_images=True), progress=False)
    assert len(res.rows) == 1 and "broken.png" in res.skipped[0]

    (tmp_path / "notes.txt").write_text("x")
    for sources, match in [([str(tmp_path / "nope.png")], "no such file"),
                           ([str(tmp_path / "notes.txt")], "not an image"),
                           ([str(tmp_path / "*.jpg")], "matches no images"), ([str(tmp_path / "empty")], "no such")]:
        with pytest.raises(UserError, match=match):
            predict(PredictConfig(model=str(onnx_model), sources=sources), progress=False)
    with pytest.raises(UserError, match="jsonl"):
        predict(PredictConfig(model=str(onnx_model), sources=[str(one)], out=str(tmp_path / "p.txt")), progress=False)


def test_predict_refuses_an_artifact_without_manifest(onnx_model, tiny_synth, tmp_path):
    import onnx
    from edge_fgic.predict import PredictConfig, predict
    m = onnx.load(str(onnx_model))
    del m.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(m, str(bare))
    with pytest.raises(UserError, match="no edge-fgic manifest.*edge-fgic export"):
        predict(PredictConfig(model=str(bare), sources=[str(tiny_synth / "test")]), progress=False)


def test_predict_cli(onnx_model, tiny_synth, tmp_path):
    r = runner.invoke(app, ["predict", "-m", str(onnx_model), str(tiny_synth / "test"), "-k", "2",
                            "-o", str(tmp_path / "p.jsonl")])
    assert r.exit_code == 0, r.output
    assert "6 images" in r.output and "labelled by folder: 6 images, top-1" in r.output
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 6
    r = runner.invoke(app, ["predict", "-m", str(tmp_path / "missing.onnx"), str(tiny_synth / "test")])
    assert r.exit_code == 2 and "missing.onnx" in r.output and "Traceback" not in r.output


# ---------------------------------------------------------------- camera


@pytest.fixture(scope="module")
def video(tiny_synth, tmp_path_factory) -> tuple[Path, list[str]]:
    """An .avi (MJPG) of the val images at 48x40 px, each shown for 2 frames; and the class of each frame."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (48, 40))
    truth = []
    for p in _split_images(tiny_synth, "val"):
        frame = np.asarray(Image.open(p).convert("RGB").resize((48, 40)))[:, :, ::-1]
        for _ in range(2):
            w.write(np.ascontiguousarray(frame))
            truth.append(p.parent.name)
    w.release()
    return path, truth


def _decoded_frames(path: Path) -> list[Image.Image]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            return frames
        frames.append(Image.fromarray(np.ascontiguousarray(f[:, :, ::-1])))


def test_camera_on_a_video_file_matches_predict_frame_by_frame(onnx_model, video, tmp_path):
    from edge_fgic.camera import CameraConfig, run_camera
    from edge_fgic.predict import Classifier
    path, truth = video
    s = run_camera(CameraConfig(model=str(onnx_model), source=str(path), save=str(tmp_path / "o" / "annotated.mp4"),
                                jsonl=str(tmp_path / "o" / "frames.jsonl")))
    assert s.frames == s.classified == len(truth) and not s.interrupted
    lines = [json.loads(ln) for ln in (tmp_path / "o" / "frames.jsonl").read_text().splitlines()]
    assert [ln["frame"] for ln in lines] == list(range(len(truth)))
    assert lines[2]["t"] == pytest.approx(0.2, abs=1e-3)  # the video's own timestamps at 10 fps
    clf = Classifier(onnx_model)
    probs, _, _ = clf.probabilities(_decoded_frames(path))
    assert [ln["label"] for ln in lines] == [clf.classes[i] for i in probs.argmax(1)]
    assert [ln["prob"] for ln in lines] == pytest.approx(probs.max(1), abs=1e-5)
    out = _decoded_frames(tmp_path / "o" / "annotated.mp4")
    assert len(out) == len(truth) and out[0].size == (48, 40)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["annotated.mp4", "frames.jsonl"]  # no partial files
    assert sum(s.labels.values()) == s.classified and len(s.model_ms) == s.classified


def test_camera_every_smoothing_and_max_frames(onnx_model, video, tmp_path):
    from edge_fgic.camera import CameraConfig, run_camera
    path, truth = video
    s = run_camera(CameraConfig(model=str(onnx_model), source=str(path), every=3, max_frames=10,
                                jsonl=str(tmp_path / "a.jsonl")))
    assert s.frames == 10 and s.classified == 4  # frames 0, 3, 6, 9
    assert [json.loads(ln)["frame"] for ln in (tmp_path / "a.jsonl").read_text().splitlines()] == [0, 3, 6, 9]

    run_camera(CameraConfig(model=str(onnx_model), source=str(path), smooth=0.7, topk=6,
                            jsonl=str(tmp_path / "s.jsonl")))
    lines = [json.loads(ln) for ln in (tmp_path / "s.jsonl").read_text().splitlines()]
    run_camera(CameraConfig(model=str(onnx_model), source=str(path), smooth=0.0, topk=6,
                            jsonl=str(tmp_path / "r.jsonl")))
    raw = [json.loads(ln) for ln in (tmp_path / "r.jsonl").read_text().splitlines()]
    as_vec = lambda ln: {t["label"]: t["prob"] for t in ln["topk"]}  # noqa: E731
    classes = sorted(as_vec(raw[0]))
    ema = np.array([as_vec(raw[0])[c] for c in classes])
    for s_line, r_line in zip(lines[1:], raw[1:]):
        ema = 0.7 * ema + 0.3 * np.array([as_vec(r_line)[c] for c in classes])
        assert [as_vec(s_line)[c] for c in classes] == pytest.approx(ema, abs=1e-5)
        assert s_line["raw_label"] == r_line["label"]


def test_camera_ctrl_c_keeps_what_was_recorded(onnx_model, video, tmp_path):
    from edge_fgic.camera import CameraConfig, run_camera
    path, _ = video

    def stop_after_three(summary, lines, fps):
        if summary.frames == 3:
            raise KeyboardInterrupt

    s = run_camera(CameraConfig(model=str(onnx_model), source=str(path), save=str(tmp_path / "v.avi"),
                                jsonl=str(tmp_path / "f.jsonl")), on_frame=stop_after_three)
    assert s.interrupted and s.frames == 3
    assert len(_decoded_frames(tmp_path / "v.avi")) == 3
    assert len((tmp_path / "f.jsonl").read_text().splitlines()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.jsonl", "v.avi"]


def test_camera_image_sequence_equals_predict(onnx_model, tiny_synth):
    from edge_fgic.camera import CameraConfig, run_camera
    from edge_fgic.predict import PredictConfig, predict
    labels = []
    run_camera(CameraConfig(model=str(onnx_model), source=str(tiny_synth / "val")),
               on_frame=lambda s, lines, fps: labels.append(lines[0].split()[0]))
    expected = predict(PredictConfig(model=str(onnx_model), sources=[str(tiny_synth / "val")]), progress=False)
    assert labels == [r["label"] for r in expected.rows]


def test_camera_bad_inputs_are_one_line(onnx_model, video, tmp_path, monkeypatch):
    from edge_fgic import camera
    from edge_fgic.camera import CameraConfig, run_camera
    path, _ = video
    cases = [(dict(source=str(tmp_path / "none.mp4")), "no such file"),
             (dict(source=str(path), save=str(tmp_path / "x.gif")), "mp4 or .avi"),
             (dict(source=str(path), smooth=1.5), "smooth"),
             (dict(source="csi:0"), "GStreamer"),  # pip's OpenCV is built without it
             (dict(source="usb:57"), "cannot open the camera")]
    if camera._build_has(cv2, "GStreamer"):  # an OpenCV with GStreamer (a Jetson) would try to open the camera instead
        cases = [c for c in cases if c[0].get("source") != "csi:0"]
    for kw, match in cases:
        with pytest.raises(UserError, match=match):
            run_camera(CameraConfig(model=str(onnx_model), **kw))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match="--show needs a display"):
        run_camera(CameraConfig(model=str(onnx_model), source=str(path), show=True))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="broken.mp4"):
        run_camera(CameraConfig(model=str(onnx_model), source=str(broken)))
    assert not list(tmp_path.glob(".*partial*"))


def test_camera_cli_streams_json_lines_to_stdout(onnx_model, video):
    path, truth = video
    r = runner.invoke(app, ["camera", "-m", str(onnx_model), "-s", str(path), "--jsonl", "-", "--max-frames", "4"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    classes = json.loads(Path(str(onnx_model) + ".json").read_text())["classes"]
    assert len(lines) == 4 and all(ln["label"] in classes and ln["frame"] == i for i, ln in enumerate(lines))
    assert "4 frames in" in r.stderr


def test_csi_pipeline_is_argus_to_bgr_appsink():
    from edge_fgic.camera import csi_pipeline
    p = csi_pipeline(1, 1920, 1080, 30, flip=2)
    assert p.startswith("nvarguscamerasrc sensor-id=1 ") and "width=1920, height=1080" in p and "framerate=30/1" in p
    assert "flip-method=2" in p and p.endswith("appsink drop=true max-buffers=1 sync=false") and "format=BGR " in p
