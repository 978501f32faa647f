"""``edge-fgic doctor``: which backends, converters and accelerators this machine has, and which extra
(or system package) adds what is missing. Reads the same target table as ``export``.

It runs in the slim (deploy) install too: nothing here imports torch, NNCF or a converter unless it is
installed, and it says which side this install has: deploy (runs artifacts) and/or build (train, quantize,
export). On a Jetson it reports what JetPack gives this environment: L4T and JetPack release, board,
nvpmodel mode, CUDA toolkit, whether JetPack's ``tensorrt`` and OpenCV are importable from this venv,
onnxruntime's execution providers and tegrastats. Everything is read-only; no clock or power mode changes.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from .manifest import package_version
# the optional packages (what, module, pip distribution, extra, what for): edge_fgic/targets.py, like the targets
from .targets import PACKAGES


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


# the build side (train, distill, quantize, export): the [train] extra's importable modules
BUILD_MODULES = (("torch", "torch"), ("torchvision", "torchvision"), ("timm", "timm"), ("NNCF", "nncf"),
                 ("onnx", "onnx"), ("onnxscript", "onnxscript"))
# the runtimes that run exported artifacts (the deploy side); onnxruntime is the core one
DEPLOY_RUNTIMES = (("onnxruntime", "onnxruntime"), ("OpenVINO", "openvino"), ("LiteRT", "ai_edge_litert"),
                   ("TensorRT", "tensorrt"))
TRAIN_HINT = 'pip install "edge-fgic[train]"'
SYSTEM_SITE_HINT = "create the venv with --system-site-packages to see JetPack's tensorrt and OpenCV"
JETSON_ORT_HINT = ("onnxruntime from PyPI is CPU-only on aarch64: install NVIDIA's onnxruntime-gpu for this JetPack "
                   "(Jetson Zoo / the jetson-ai-lab pip index) for the CUDA and TensorRT execution providers")
JETSON_TORCH_HINT = ("edge-fgic runs .engine files with torch's CUDA tensors and this install has no torch: build "
                     "engines with the export's *.trtexec.sh; to bench/predict/camera an .engine install NVIDIA's "
                     "Jetson PyTorch wheel for this JetPack (not PyPI's torch); the *-trt.onnx runs in onnxruntime")
# apt packages of JetPack that hold the Python modules (python3-libnvinfer: TensorRT; nvidia-opencv: OpenCV)
JETPACK_APT = {"tensorrt": "python3-libnvinfer", "cv2": "nvidia-opencv"}


def _has(module: str) -> bool:
    """Importable here, without importing it (a broken parent package counts as absent)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_side() -> dict[str, Any]:
    """Which side this install has: deploy (runs artifacts: onnxruntime + the other runtimes present) and
    build (train/quantize/export: the [train] extra); ``build_hint`` is the one line that adds the build side."""
    runtimes = [name for name, module in DEPLOY_RUNTIMES if _has(module)]
    missing = [name for name, module in BUILD_MODULES if not _has(module)]
    return {"deploy": "onnxruntime" in runtimes, "runtimes": runtimes, "build": not missing,
            "missing_build": missing, "build_hint": TRAIN_HINT if missing else ""}


def onnxruntime_info() -> dict[str, Any] | None:
    """onnxruntime's version and execution providers (CUDA/TensorRT EPs come from a GPU wheel, e.g. Jetson's)."""
    if not _has("onnxruntime"):
        return None
    try:
        import onnxruntime as ort
        return {"version": ort.__version__, "providers": list(ort.get_available_providers())}
    except Exception as exc:  # noqa: BLE001 - a broken GPU wheel: say what it said
        return {"version": "", "providers": [], "error": f"{type(exc).__name__}: {exc}"[:200]}


def parse_pyvenv_cfg(text: str) -> bool | None:
    """``include-system-site-packages`` of a venv's pyvenv.cfg (pure); None when the file does not say."""
    match = re.search(r"^\s*include-system-site-packages\s*=\s*(\w+)", text, flags=re.M | re.I)
    return match.group(1).lower() == "true" if match else None


def python_env(prefix: str = sys.prefix, base_prefix: str = sys.base_prefix) -> dict[str, Any]:
    """This interpreter: version, whether it is a venv and whether that venv sees the system's site-packages."""
    venv = prefix != base_prefix
    system_site = None
    if venv:
        try:
            system_site = parse_pyvenv_cfg((Path(prefix) / "pyvenv.cfg").read_text(errors="replace"))
        except OSError:
            system_site = None
    return {"version": f"{sys.version_info.major}.{sys.version_info.minor}", "executable": sys.executable,
            "venv": venv, "system_site_packages": system_site if venv else True}


def system_python_modules(root: str | Path = "/", names: tuple[str, ...] = ("tensorrt", "cv2")) -> dict[str, list]:
    """Where the system Python (JetPack's apt packages) has each module: /usr/lib/python3*/dist-packages/<name>
    under ``root``, whether or not this interpreter can import it."""
    lib = Path(root) / "usr" / "lib"
    found: dict[str, list] = {}
    for name in names:
        paths = []
        for d in sorted(lib.glob("python3*/dist-packages")):
            paths += [str(p) for p in sorted(d.glob(name)) + sorted(d.glob(f"{name}.cpython-*.so"))]
        found[name] = paths
    return found


def _python_of(path: str) -> str | None:
    match = re.search(r"/python(3\.\d+)/", path)
    return match.group(1) if match else None


def jetson_python_hints(importable: dict[str, bool], system: dict[str, list], env: dict[str, Any]) -> list[str]:
    """What to do so this environment sees JetPack's tensorrt and OpenCV (pure): the --system-site-packages
    line when a venv hides them, the interpreter to use when they are built for another Python, the apt
    package when JetPack's copy is absent."""
    absent, other_python, hidden, lost = [], {}, False, []
    for name in ("tensorrt", "cv2"):
        if importable.get(name):
            continue
        paths = system.get(name) or []
        pythons = sorted({v for v in map(_python_of, paths) if v})
        if not paths:
            absent.append(name)
        elif pythons and env["version"] not in pythons:
            other_python[name] = (pythons, paths[0])
        elif env["venv"] and not env["system_site_packages"]:
            hidden = True
        else:
            lost.append(f"JetPack's {name} is at {paths[0]} but this Python does not find it")
    hints = [SYSTEM_SITE_HINT] if hidden else []
    if other_python:
        names = " and ".join(other_python)
        pythons = sorted({v for ps, _ in other_python.values() for v in ps})
        hints.append(f"JetPack's {names} {'is' if len(other_python) == 1 else 'are'} built for Python "
                     f"{', '.join(pythons)} ({next(iter(other_python.values()))[1]}) and this is Python "
                     f"{env['version']}: create the venv from JetPack's /usr/bin/python3 with --system-site-packages")
    hints += [f"no {name} module in JetPack's Python either (sudo apt install {JETPACK_APT[name]})" for name in absent]
    return hints + lost


def jetson_report(root: str | Path = "/", jetson: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """sysinfo's Jetson record plus what this environment gets of JetPack: tensorrt/OpenCV importable (and where
    the system has them), onnxruntime's providers, and the hints that follow. None off-Jetson."""
    from .bench.sysinfo import jetson_info
    info = jetson if jetson is not None else jetson_info(root)
    if info is None:
        return None
    env = python_env()
    importable = {name: _has(name) for name in ("tensorrt", "cv2")}
    system = system_python_modules(root)
    versions = {name: (_module_version(name) if ok else "") for name, ok in importable.items()}
    hints = jetson_python_hints(importable, system, env)
    ort = onnxruntime_info()
    providers = (ort or {}).get("providers", [])
    if ort is not None and not {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(providers):
        hints.append(JETSON_ORT_HINT)
    if importable["tensorrt"] and not _has("torch"):
        hints.append(JETSON_TORCH_HINT)
    return {**info, "python": env, "modules": {name: {"importable": importable[name], "version": versions[name],
                                                      "system": system[name]} for name in importable},
            "onnxruntime": ort, "hints": hints}


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
    accel: dict[str, Any] = {"cuda": None, "torch": _has("torch")}
    if accel["torch"]:  # lazily: the slim install has no torch, and a broken CUDA wheel must not stop doctor
        try:
            import torch
            accel["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        except Exception as exc:  # noqa: BLE001
            accel["cuda_error"] = f"{type(exc).__name__}: {exc}"[:200]
    accel["tegrastats"] = shutil.which("tegrastats")
    accel["trtexec"] = shutil.which("trtexec") or next(
        (p for p in ("/usr/src/tensorrt/bin/trtexec",) if Path(p).exists()), None)
    accel["g++"] = shutil.which("g++") or shutil.which("c++")
    from .bench.sysinfo import cpu_info, cuda_info
    accel["cuda_toolkit"] = cuda_info()
    cpu = cpu_info()
    return {"packages": pkgs, "targets": targets, "accelerators": accel, "cpu": cpu, "camera": camera_info(),
            "install": install_side(), "onnxruntime": onnxruntime_info(), "python": python_env(),
            "jetson": jetson_report()}


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
    lines = [
        *_install_lines(report.get("install")),
        f"CPU       {cpu.get('model')} ({cpu.get('logical_cores')} logical cores; {isa})",
        f"CUDA      {_cuda_line(a, toolkit=not report.get('jetson'))}",
        f"ORT EPs   {_ort_line(report.get('onnxruntime'))}",
        *_jetson_lines(report.get("jetson"), a),
        f"trtexec   {a['trtexec'] or 'not on PATH (JetPack: /usr/src/tensorrt/bin)'}",
        f"C++       {a['g++'] or 'no C++ compiler: NNCF cannot build its CPU extension (apt install g++)'}",
        f"camera    {_camera_line(report['camera'])}",
    ]
    return Group(pk, tg, *[Text(ln) for ln in lines])


def _install_lines(side: dict[str, Any] | None) -> list[str]:
    """Which side this install has, and the one line that adds the build side."""
    if not side:
        return []
    runtimes = ", ".join(side["runtimes"]) or "none"
    have = [f"deploy (runs artifacts: {runtimes})" if side["deploy"]
            else f"no deploy runtime (onnxruntime missing: reinstall edge-fgic; runtimes here: {runtimes})"]
    if side["build"]:
        have.append("build (train/quantize/export)")
    lines = [f"install   {' + '.join(have)}"]
    if not side["build"]:
        lines.append(f"build     not installed (train/quantize/export; missing {', '.join(side['missing_build'])}): "
                     f"{side['build_hint']}")
    return lines


def _cuda_line(a: dict[str, Any], toolkit: bool = True) -> str:
    kit = a.get("cuda_toolkit") if toolkit else None  # (a Jetson's toolkit has its own line)
    kit = f"toolkit {kit['version']} ({kit['source']})" if kit else ""
    if a.get("cuda"):
        return a["cuda"] + (f"; {kit}" if kit else "")
    if a.get("torch", True):
        gpu = f"no GPU visible to torch ({a['cuda_error']})" if a.get("cuda_error") else "no GPU visible to torch"
    else:
        gpu = "no torch here (deploy install): GPUs run through onnxruntime's CUDA/TensorRT EPs or TensorRT"
    return f"{gpu}; {kit}" if kit else gpu


def _ort_line(ort: dict[str, Any] | None) -> str:
    if ort is None:
        return "onnxruntime not installed (reinstall edge-fgic)"
    if ort.get("error"):
        return f"onnxruntime {ort['version']} does not load: {ort['error']}"
    return f"onnxruntime {ort['version']}: {', '.join(ort['providers'])}"


def _jetson_lines(j: dict[str, Any] | None, a: dict[str, Any]) -> list[str]:
    """The Jetson block: board, L4T/JetPack, power mode, CUDA, JetPack's modules here, energy, what to do."""
    if not j:
        return ["Jetson    " + ("tegrastats at " + a["tegrastats"] if a.get("tegrastats")
                               else "no tegrastats (not a Jetson): --target jetson unavailable")]
    release = f"L4T {j['l4t']}" if j.get("l4t") else "no /etc/nv_tegra_release"
    jetpack = f"JetPack {j['jetpack']} (from {j.get('jetpack_source')})" if j.get("jetpack") else "JetPack unknown"
    nv = j.get("nvpmodel")
    power = (f"nvpmodel {nv['mode']}" + (f" (mode {nv['id']})" if nv.get("id") is not None else "") if nv
             else "nvpmodel -q gave no mode")
    cuda = j.get("cuda")
    lines = [f"Jetson    {j.get('model') or 'unknown board'}; {release}; {jetpack}",
             f"power     {power} (read only: doctor never changes it)",
             "CUDA kit  " + (f"{cuda['version']} ({cuda['source']})" if cuda else "no CUDA toolkit in /usr/local/cuda")]
    for name, label in (("tensorrt", "TensorRT"), ("cv2", "OpenCV")):
        m = j["modules"][name]
        where = f"; JetPack's at {m['system'][0]}" if m["system"] else ""
        lines.append(f"{label:<9} " + (f"python module {m['version']} importable here" if m["importable"]
                                        else f"python module not importable here{where}"))
    lines.append("energy    " + (f"tegrastats at {j['tegrastats']}: bench --target jetson adds energy per inference"
                                 if j.get("tegrastats") else "no tegrastats: --target jetson unavailable"))
    lines += [f"  → {h}" for h in j.get("hints", [])]
    return lines


def _camera_line(c: dict[str, Any]) -> str:
    devices = ", ".join(c["devices"]) or "no /dev/video* device"
    if not c.get("opencv"):
        return f"no OpenCV: pip install \"edge-fgic[camera]\" ({devices})"
    csi = "CSI cameras (GStreamer) yes" if c["gstreamer"] else "no GStreamer: no CSI cameras (use JetPack's OpenCV)"
    gui = "--show yes" if c["gui"] else "no GUI: --save/--jsonl instead of --show"
    return f"OpenCV {c['opencv']}; {csi}; {gui}; {devices}"
