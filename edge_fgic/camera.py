"""Live classification: a frame source -> the same Runner that ``bench`` measured -> overlay / JSON lines.

Sources (``--source``):

* ``csi`` or ``csi:N``: a Jetson CSI camera through GStreamer (``nvarguscamerasrc``); needs an OpenCV
  built with GStreamer, i.e. JetPack's system OpenCV, not the pip wheel;
* ``usb``, ``usb:N`` or ``N``: a V4L2 / USB webcam;
* a video file (.mp4, .avi, .mkv ...) or a stream URL (rtsp://, http://);
* a folder of images, or a glob: frames in sorted order (a slideshow; handy without a camera).

Each classified frame can become a JSON line (``--jsonl``), an annotated frame in a video
(``--save``), and a window (``--show``). Probabilities can be smoothed over frames (an exponential
moving average) so a live label does not flicker. Ctrl-C stops cleanly: files are finalised and the
summary printed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import UserError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".h264", ".h265")
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def _cv2():
    try:
        import cv2
    except ImportError:
        raise UserError("camera needs OpenCV: `pip install \"edge-fgic[camera]\"` (on a Jetson use JetPack's system "
                        "OpenCV instead: create the venv with --system-site-packages)") from None
    return cv2


def _build_has(cv2, what: str) -> bool:
    """True if OpenCV's build information says ``what: YES`` (GStreamer) or a GUI other than NONE."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == what:
            value = value.strip()
            return value.startswith("YES") if what != "GUI" else value not in ("", "NONE")
    return False


def csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0) -> str:
    """The GStreamer pipeline for a Jetson CSI camera (Argus), delivering BGR frames to OpenCV's appsink."""
    return (f"nvarguscamerasrc sensor-id={sensor_id} ! video/x-raw(memory:NVMM), width={width}, height={height}, "
            f"framerate={fps}/1, format=NV12 ! nvvidconv flip-method={flip} ! video/x-raw, format=BGRx ! "
            f"videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false")


@dataclass
class Frame:
    index: int          # position in the source (frames skipped by --every count too)
    image: np.ndarray   # HxWx3 uint8, BGR (OpenCV's order)
    t: float            # seconds: the video's timestamp, or since the source opened for live sources


class FrameSource:
    """Iterates :class:`Frame` objects; ``live`` sources drop stale frames instead of queueing them."""

    def __init__(self, spec: str, *, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0):
        self.spec = spec
        self.live = False
        self.fps = 0.0
        self._files: list[Path] | None = None
        self._cap = None
        kind, _, arg = spec.partition(":")
        if kind in ("csi", "usb") or spec.isdigit():
            cv2 = _cv2()
            self.live = True
            if kind == "csi":
                if not _build_has(cv2, "GStreamer"):
                    raise UserError(f"--source {spec}: this OpenCV ({cv2.__version__}) was built without GStreamer; "
                                    f"on a Jetson use JetPack's system OpenCV "
                                    f"(venv with --system-site-packages, no opencv-python wheel)")
                self._cap = cv2.VideoCapture(csi_pipeline(int(arg or 0), width, height, fps, flip), cv2.CAP_GSTREAMER)
            else:
                index = int(arg or 0) if kind == "usb" else int(spec)
                self._cap = cv2.VideoCapture(index, cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY)
                if self._cap.isOpened():
                    self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                    self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
                    self._cap.set(cv2.CAP_PROP_FPS, fps)
                    self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of old ones
            if not self._cap.isOpened():
                raise UserError(f"--source {spec}: cannot open the camera (is it connected, and free? `v4l2-ctl "
                                f"--list-devices` lists them; CSI cameras need nvargus-daemon running)")
        elif "://" in spec:
            cv2 = _cv2()
            self.live = True
            self._cap = cv2.VideoCapture(spec)
            if not self._cap.isOpened():
                raise UserError(f"--source {spec}: cannot open the stream; check the URL and that the camera serves it")
        else:
            p = Path(spec).expanduser()
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
                cv2 = _cv2()
                self._cap = cv2.VideoCapture(str(p))
                if not self._cap.isOpened():
                    raise UserError(f"{p}: cannot decode this video (OpenCV {cv2.__version__} with FFmpeg); "
                                    f"re-encode it, e.g. `ffmpeg -i {p.name} -c:v libx264 out.mp4`")
                self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
            else:
                from .predict import find_images
                self._files = find_images([spec])  # an image, a folder or a glob; anything else: one line
        self._t0 = time.perf_counter()

    def __iter__(self) -> Iterator[Frame]:
        if self._files is not None:
            from .data.images import load_rgb
            for i, f in enumerate(self._files):
                yield Frame(i, np.ascontiguousarray(np.asarray(load_rgb(f))[:, :, ::-1]), float(i))
            return
        cv2 = _cv2()
        i = 0
        failures = 0
        while True:
            ok, img = self._cap.read()
            if not ok or img is None:
                if self.live and failures < 30:  # a live camera can drop a frame; a file has simply ended
                    failures += 1
                    time.sleep(0.01)
                    continue
                return
            failures = 0
            t = (self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0) if not self.live else time.perf_counter() - self._t0
            yield Frame(i, img, t)
            i += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


@dataclass
class CameraConfig:
    model: str
    source: str
    topk: int = 3
    threads: int | None = None
    device: str = "cpu"
    every: int = 1                     # classify every Nth frame (the overlay keeps the last result)
    smooth: float | None = None        # EMA weight of the previous probabilities; None = 0.6 live, 0 for files
    show: bool = False
    save: str | None = None            # annotated video (.mp4 / .avi)
    jsonl: str | None = None           # one JSON object per classified frame; "-" = stdout
    max_frames: int = 0                # 0 = until the source ends (or Ctrl-C)
    width: int = 1280
    height: int = 720
    fps: int = 30
    flip: int = 0


@dataclass
class CameraSummary:
    source: str
    model: str
    frames: int = 0
    classified: int = 0
    seconds: float = 0.0
    model_ms: list[float] = field(default_factory=list)
    preprocess_ms: list[float] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    files: dict[str, str] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        def pct(v: list[float], q: float) -> float | None:
            return float(np.percentile(v, q)) if v else None
        return {"source": self.source, "model": self.model, "frames": self.frames, "classified": self.classified,
                "seconds": round(self.seconds, 3),
                "fps": round(self.frames / self.seconds, 2) if self.seconds else None,
                "model_ms_p50": pct(self.model_ms, 50), "model_ms_p90": pct(self.model_ms, 90),
                "preprocess_ms_p50": pct(self.preprocess_ms, 50),
                "labels": dict(sorted(self.labels.items(), key=lambda kv: -kv[1])),
                "interrupted": self.interrupted, "files": self.files}


def draw_overlay(image: np.ndarray, lines: list[str], footer: str) -> np.ndarray:
    """Top-k lines on a dark band at the top left, latency/FPS at the bottom; returns a new BGR image."""
    cv2 = _cv2()
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.35, min(1.0, w / 900.0))
    thick = 1 if scale < 0.7 else 2
    line_h = int(28 * scale) + 4
    band = out[: line_h * len(lines) + 8, : min(w, int(430 * scale) + 20)]
    band[:] = (band * 0.35).astype(np.uint8)
    for i, text in enumerate(lines):
        color = (80, 255, 80) if i == 0 else (235, 235, 235)
        cv2.putText(out, text, (8, line_h * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, color, thick, cv2.LINE_AA)
    cv2.putText(out, footer, (8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 220, 255), thick, cv2.LINE_AA)
    return out


class _VideoSink:
    """An annotated video written under a hidden temp name and renamed when closed (also after Ctrl-C),
    so an existing file is only ever replaced by a finished one."""

    def __init__(self, path: str, fps: float):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _FOURCC:
            raise UserError(f"--save {path}: write .mp4 or .avi")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        self.fps = fps
        self.writer = None

    def write(self, image: np.ndarray) -> None:
        cv2 = _cv2()
        if self.writer is None:
            h, w = image.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()]),
                                          self.fps, (w, h))
            if not self.writer.isOpened():
                raise UserError(f"--save {self.path}: OpenCV cannot write this format here; try .avi")
        self.writer.write(image)

    def close(self, keep: bool) -> None:
        if self.writer is not None:
            self.writer.release()
        if keep and self.tmp.exists():
            os.replace(self.tmp, self.path)
        elif self.tmp.exists():
            self.tmp.unlink()


class _JsonLines:
    """``-`` streams to stdout; a file is written as ``.<name>.partial`` and renamed when the run ends."""

    def __init__(self, target: str):
        self.stdout = target == "-"
        if self.stdout:
            self.fh = sys.stdout
            return
        self.path = Path(target)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self.fh = open(self.tmp, "w", encoding="utf-8")

    def write(self, obj: dict) -> None:
        self.fh.write(json.dumps(obj) + "\n")
        self.fh.flush()

    def close(self, keep: bool) -> None:
        if self.stdout:
            return
        self.fh.close()
        if keep:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def run_camera(cfg: CameraConfig, *, on_frame=None) -> CameraSummary:
    """Classify frames from ``cfg.source`` until it ends, ``max_frames`` or Ctrl-C. ``on_frame(summary)`` is
    called after each frame (the CLI uses it for a live status line)."""
    from .predict import Classifier
    if cfg.every < 1:
        raise UserError(f"--every {cfg.every}: must be at least 1")
    if cfg.smooth is not None and not 0.0 <= cfg.smooth < 1.0:
        raise UserError(f"--smooth {cfg.smooth}: must be in [0, 1) (0 = no smoothing)")
    if cfg.show:
        cv2 = _cv2()
        if not _build_has(cv2, "GUI") or (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
                                          and not os.environ.get("WAYLAND_DISPLAY")):
            raise UserError("--show needs a display and an OpenCV with a GUI (JetPack's system OpenCV, or "
                            "`pip install opencv-python`); use --save out.mp4 or --jsonl - instead")
    if cfg.save:
        _VideoSink(cfg.save, 1.0)  # validates the suffix before the model loads
    clf = Classifier(cfg.model, threads=cfg.threads, device=cfg.device)
    source = FrameSource(cfg.source, width=cfg.width, height=cfg.height, fps=cfg.fps, flip=cfg.flip)
    smooth = cfg.smooth if cfg.smooth is not None else (0.6 if source.live else 0.0)
    k = min(cfg.topk, len(clf.classes))
    summary = CameraSummary(source=cfg.source, model=clf.describe)
    sink = _VideoSink(cfg.save, source.fps or (cfg.fps if source.live else 10.0)) if cfg.save else None
    jsonl = _JsonLines(cfg.jsonl) if cfg.jsonl else None
    from PIL import Image
    ema: np.ndarray | None = None
    lines: list[str] = []
    recent: list[float] = []   # frame times for the live FPS figure
    t_start = time.perf_counter()
    ok = False
    try:
        for frame in source:
            if cfg.max_frames and summary.frames >= cfg.max_frames:
                break
            summary.frames += 1
            now = time.perf_counter()
            recent = [t for t in recent if now - t < 2.0] + [now]
            if (frame.index % cfg.every) == 0:
                pil = Image.fromarray(np.ascontiguousarray(frame.image[:, :, ::-1]))
                probs, pre_ms, model_ms = clf.probabilities([pil])
                p = probs[0]
                ema = p if (ema is None or smooth == 0.0) else smooth * ema + (1.0 - smooth) * p
                top = clf.top(ema, k)
                summary.classified += 1
                summary.model_ms.append(model_ms)
                summary.preprocess_ms.append(pre_ms)
                summary.labels[top[0][0]] = summary.labels.get(top[0][0], 0) + 1
                lines = [f"{label}  {100 * prob:5.1f}%" for label, prob in top]
                if jsonl:
                    raw = int(np.argmax(p))
                    jsonl.write({"frame": frame.index, "t": round(frame.t, 4), "label": top[0][0],
                                 "prob": round(top[0][1], 6),
                                 "topk": [{"label": c, "prob": round(v, 6)} for c, v in top],
                                 "raw_label": clf.classes[raw], "raw_prob": round(float(p[raw]), 6),
                                 "model_ms": round(model_ms, 3), "preprocess_ms": round(pre_ms, 3)})
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
            if sink or cfg.show:
                ms = summary.model_ms[-1] if summary.model_ms else 0.0
                shown = draw_overlay(frame.image, lines,
                                     f"{clf.path.name} {clf.precision} | {ms:.1f} ms | {fps:.1f} fps")
                if sink:
                    sink.write(shown)
                if cfg.show:
                    cv2 = _cv2()
                    cv2.imshow("edge-fgic", shown)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
            if on_frame:
                on_frame(summary, lines, fps)
        ok = True
    except KeyboardInterrupt:
        summary.interrupted = True
        ok = True  # what was recorded up to Ctrl-C is complete and worth keeping
    finally:
        summary.seconds = time.perf_counter() - t_start
        source.close()
        if sink:
            sink.close(keep=ok and summary.frames > 0)
            if ok and summary.frames > 0:
                summary.files["video"] = str(sink.path)
        if jsonl:
            jsonl.close(keep=ok and summary.frames > 0)  # no empty file beside a "no frames" error
            if ok and summary.frames > 0 and not jsonl.stdout:
                summary.files["jsonl"] = str(jsonl.path)
        if cfg.show:
            try:
                _cv2().destroyAllWindows()
            except Exception:  # noqa: BLE001 - closing a window must not hide the real outcome
                pass
    if summary.frames == 0:
        raise UserError(f"--source {cfg.source}: no frames could be read")
    return summary
