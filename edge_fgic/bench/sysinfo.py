"""What machine a benchmark ran on: CPU model and SIMD/ISA flags, GPU, Jetson power state, library versions.

Latency numbers are only comparable between runs whose machine description matches (an INT8 model is
fast only where VNNI / dot-product instructions exist; a Jetson in a 15 W nvpmodel mode is not the same
board as in MAXN), so every `edge-fgic bench` report embeds :func:`system_report`. Everything here is
read-only: /proc, /sys, /etc and ``--show``/``-q`` queries; nothing changes clocks or power modes.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

# x86 flags (Linux /proc/cpuinfo names) that decide which GEMM kernels the runtimes can use.
X86_ISA = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
           "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16")
# aarch64 `Features` names: asimddp = SDOT/UDOT ("dotprod"), asimdhp/fphp = FP16 arithmetic.
ARM_ISA = ("asimd", "asimddp", "asimdhp", "fphp", "i8mm", "bf16", "sve", "sve2")
# MIDR part numbers of implementer 0x41 (Arm Ltd), as in Linux arch/arm64/include/asm/cputype.h,
# plus NVIDIA's own cores (implementer 0x4e) found in older Jetsons.
ARM_PARTS = {
    (0x41, 0xD03): "Cortex-A53", (0x41, 0xD05): "Cortex-A55", (0x41, 0xD07): "Cortex-A57",
    (0x41, 0xD08): "Cortex-A72", (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD40): "Neoverse-V1", (0x41, 0xD41): "Cortex-A78", (0x41, 0xD42): "Cortex-A78AE",
    (0x41, 0xD49): "Neoverse-N2", (0x41, 0xD4F): "Neoverse-V2",
    (0x4E, 0x003): "NVIDIA Denver 2", (0x4E, 0x004): "NVIDIA Carmel",
}
_TIMEOUT_S = 10

# L4T (Jetson Linux) release -> the JetPack that ships it, as NVIDIA pairs them on its JetPack / Jetson Linux
# archive pages (developer.nvidia.com/embedded/jetpack-archive, docs.nvidia.com/jetson/archives; e.g. "L4T 32.7.2
# is included as part of JetPack 4.6.2", "JetPack 7.1 with Jetson Linux 38.4"), cross-checked against the tables
# of dusty-nv/jetson-containers (jetson_containers/l4t_version.py) and rbonghi/jetson_stats. Keys are normalised
# (36.4.0 == 36.4). A release not listed (a security respin such as 32.5.2 or 35.6.2, or one newer than this
# table) is reported by its branch only (L4T_BRANCHES), never as a neighbour's JetPack.
L4T_JETPACK = {
    "32.1": "4.2", "32.2": "4.2.1", "32.2.1": "4.2.2", "32.3.1": "4.3", "32.4.3": "4.4", "32.4.4": "4.4.1",
    "32.5": "4.5", "32.5.1": "4.5.1", "32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3",
    "32.7.4": "4.6.4", "32.7.5": "4.6.5", "32.7.6": "4.6.6",
    "34.1": "5.0 DP", "34.1.1": "5.0.1 DP", "35.1": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2",
    "35.5": "5.1.3", "35.6": "5.1.4", "35.6.1": "5.1.5",
    "36.2": "6.0 DP", "36.3": "6.0", "36.4": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1",
    "38.2": "7.0", "38.2.1": "7.0", "38.4": "7.1",
}
L4T_BRANCHES = {32: "4.x", 34: "5.0 (developer preview)", 35: "5.x", 36: "6.x", 38: "7.x"}


def _blocks(text: str) -> list[dict[str, str]]:
    """/proc/cpuinfo as one ``{key: value}`` dict per blank-line-separated block."""
    out: list[dict[str, str]] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        block = {}
        for line in chunk.splitlines():
            if ":" in line:
                key, _, value = line.partition(":")
                block[key.strip().lower()] = value.strip()
        if block:
            out.append(block)
    return out


def _int(value: str | None) -> int | None:
    try:
        return int(value, 0) if value is not None else None
    except ValueError:
        return None


def parse_cpuinfo(text: str, machine: str) -> dict:
    """Model, core counts and ISA flags of interest from /proc/cpuinfo text (pure; ``machine`` as
    :func:`platform.machine`). ``physical_cores`` is None where the text does not say (aarch64)."""
    blocks = _blocks(text)
    procs = [b for b in blocks if "processor" in b]
    first = procs[0] if procs else (blocks[0] if blocks else {})
    is_arm = machine.lower() in ("aarch64", "arm64") or machine.lower().startswith("arm") or "features" in first
    info: dict = {"arch": machine, "logical_cores": len(procs), "physical_cores": None}
    if not is_arm:
        flags = set(first.get("flags", "").split())
        info["model"] = first.get("model name") or first.get("vendor_id") or "unknown"
        cores = {(b.get("physical id"), b.get("core id")) for b in procs if "core id" in b}
        if cores:
            info["physical_cores"] = len(cores)
        elif _int(first.get("cpu cores")):
            info["physical_cores"] = _int(first["cpu cores"]) * max(1, len({b.get("physical id") for b in procs}))
        info["isa"] = sorted(f for f in X86_ISA if f in flags)
        return info
    flags = set()
    parts: list[str] = []
    for b in procs or blocks:
        flags |= set(b.get("features", "").split())
        impl, part = _int(b.get("cpu implementer")), _int(b.get("cpu part"))
        if part is not None:
            name = ARM_PARTS.get((impl, part), f"CPU part {b['cpu part']}")
            if name not in parts:
                parts.append(name)
    hardware = next((b["hardware"] for b in blocks if "hardware" in b), None)
    model_name = first.get("model name")
    info["model"] = " + ".join(parts) or model_name or hardware or "unknown"
    info["cpu_parts"] = parts
    if hardware:
        info["hardware"] = hardware
    info["isa"] = sorted(f for f in ARM_ISA if f in flags)
    return info


def _sysfs_physical_cores() -> int | None:
    """Distinct core siblings lists under /sys (works on aarch64 where /proc/cpuinfo has no topology)."""
    seen = set()
    for path in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/thread_siblings_list"):
        try:
            seen.add(path.read_text().strip())
        except OSError:
            continue
    return len(seen) or None


def cpu_flags() -> set[str]:
    """Every ISA flag this CPU reports (x86 ``flags`` / aarch64 ``Features``); empty where unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def low_precision_note() -> str:
    """The CPU features that make runtimes pick bf16/fp16 arithmetic by default (OpenVINO: AVX-512 BF16
    or AMX on x86, fp16 arithmetic on ARM), for a message about a precision nobody asked for."""
    flags = cpu_flags()
    have = [f for f in ("avx512_bf16", "amx_bf16", "avx512_fp16", "amx_fp16", "fphp", "asimdhp", "bf16") if f in flags]
    return f"this CPU has {', '.join(have)}" if have else "this CPU reports no bf16/fp16 arithmetic"


def cpu_info() -> dict:
    """This machine's CPU; ``usable_cores`` is the affinity mask (what a container/taskset really gets)."""
    machine = platform.machine()
    try:
        info = parse_cpuinfo(Path("/proc/cpuinfo").read_text(), machine)
        info["flags_source"] = "/proc/cpuinfo"
    except OSError:
        info = {"arch": machine, "model": platform.processor() or "unknown", "physical_cores": None, "isa": [],
                "flags_source": "unavailable (no /proc/cpuinfo)"}
    info["logical_cores"] = os.cpu_count() or info.get("logical_cores") or 0
    if info.get("physical_cores") is None:
        info["physical_cores"] = _sysfs_physical_cores()
    if hasattr(os, "sched_getaffinity"):
        info["usable_cores"] = len(os.sched_getaffinity(0))
    try:  # the SIMD level torch's own CPU kernels dispatched to (e.g. AVX2, AVX512, SVE256)
        import torch

        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001 - optional detail
        pass
    return info


def _run(cmd: list[str]) -> subprocess.CompletedProcess | None:
    """Run a read-only query if the tool exists; None when it is missing or hangs."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def parse_nvpmodel(text: str) -> dict | None:
    """``nvpmodel -q`` output ("NV Power Mode: MAXN" then, on most releases, the mode id line)."""
    match = re.search(r"NV Power Mode\s*:\s*(\S[^\n]*)", text)
    if not match:
        return None
    rest = text[match.end():].split()
    return {"mode": match.group(1).strip(), "id": int(rest[0]) if rest and rest[0].isdigit() else None}


def parse_tegra_release(text: str) -> dict | None:
    """First line of /etc/nv_tegra_release, e.g. "# R36 (release), REVISION: 4.3, ..." -> L4T 36.4.3."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if not match:
        return None
    board = re.search(r"BOARD:\s*([^,\s]+)", text)
    return {"l4t": f"{match.group(1)}.{match.group(2)}", "board": board.group(1) if board else None}


def _version_key(version: str) -> tuple[int, ...]:
    """(36, 4) for "36.4.0" and "36.4": trailing zero revisions dropped, so both spellings of a release meet."""
    parts = [int(p) for p in re.findall(r"\d+", version)]
    while len(parts) > 2 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


_JETPACK_BY_KEY = {_version_key(k): v for k, v in L4T_JETPACK.items()}


def l4t_to_jetpack(l4t: str | None) -> tuple[str | None, str]:
    """(JetPack version, how it was found) for an L4T release (pure): ("6.2", "table") when NVIDIA pairs them,
    ("6.x", "branch") for an unlisted release of a known branch, (None, "unknown") otherwise."""
    if not l4t or not re.match(r"\d+\.\d+", l4t):
        return None, "unknown"
    key = _version_key(l4t)
    if key in _JETPACK_BY_KEY:
        return _JETPACK_BY_KEY[key], "table"
    branch = L4T_BRANCHES.get(key[0])
    return (branch, "branch") if branch else (None, "unknown")


def parse_device_tree_model(raw: bytes | str) -> str | None:
    """/proc/device-tree/model: a NUL-terminated string ("NVIDIA Jetson Orin Nano Developer Kit\\0")."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = text.split("\x00")[0].strip()
    return text or None


def parse_cuda_version_json(text: str) -> str | None:
    """The CUDA toolkit version from /usr/local/cuda/version.json (CUDA 11.1+): its "cuda" entry
    ({"cuda": {"name": "CUDA SDK", "version": "12.6.68"}, ...}), else the runtime's or nvcc's."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    for key in ("cuda", "cuda_cudart", "cuda_nvcc"):
        entry = data.get(key) if isinstance(data, dict) else None
        if isinstance(entry, dict) and entry.get("version"):
            return str(entry["version"])
    return None


def parse_cuda_version_txt(text: str) -> str | None:
    """/usr/local/cuda/version.txt of CUDA <= 11.0 (JetPack 4: "CUDA Version 10.2.300")."""
    match = re.search(r"CUDA Version\s+(\d+(?:\.\d+)+)", text)
    return match.group(1) if match else None


def parse_nvcc_version(text: str) -> str | None:
    """``nvcc --version``'s last lines: "Cuda compilation tools, release 12.6, V12.6.68" -> 12.6.68."""
    match = re.search(r"release\s+(\d+\.\d+),\s*V(\d+(?:\.\d+)+)", text)
    if match:
        return match.group(2)
    match = re.search(r"release\s+(\d+\.\d+)", text)
    return match.group(1) if match else None


def cuda_info(root: str | Path = "/") -> dict | None:
    """The CUDA toolkit under ``root``/usr/local/cuda (version.json, version.txt, then its nvcc); None without one.
    Torch-free: what a slim install on a Jetson has instead of ``torch.version.cuda``."""
    cuda = Path(root) / "usr" / "local" / "cuda"
    for name, parse in (("version.json", parse_cuda_version_json), ("version.txt", parse_cuda_version_txt)):
        try:
            version = parse((cuda / name).read_text(errors="replace"))
        except OSError:
            continue
        if version:
            return {"version": version, "release": ".".join(version.split(".")[:2]), "source": str(cuda / name)}
    nvcc = cuda / "bin" / "nvcc"
    exe = str(nvcc) if nvcc.exists() else (shutil.which("nvcc") if Path(root) == Path("/") else None)
    out = _run([exe, "--version"]) if exe else None
    version = parse_nvcc_version(out.stdout) if out and out.returncode == 0 else None
    if version:
        return {"version": version, "release": ".".join(version.split(".")[:2]), "source": f"{exe} --version"}
    return None


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def jetson_info(root: str | Path = "/") -> dict | None:
    """L4T release and its JetPack, board model, nvpmodel mode, ``jetson_clocks --show`` text, the CUDA toolkit
    and tegrastats; None off-Jetson. ``root`` is where /etc and /proc are (tests point it at a fake tree).

    Read-only and without root: files, ``dpkg-query``, ``nvpmodel -q`` and ``jetson_clocks --show`` (which needs
    root to print clocks; without it its error text is kept). Nothing here sets a power mode or a clock."""
    root = Path(root)
    raw_model = _read_bytes(root / "proc" / "device-tree" / "model")
    model = parse_device_tree_model(raw_model) if raw_model is not None else None
    raw_release = _read_bytes(root / "etc" / "nv_tegra_release")
    if raw_release is None and not (model and ("jetson" in model.lower() or "nvidia" in model.lower())):
        return None
    info: dict = {"model": model, "l4t": None, "board": None}
    if raw_release is not None:
        text = raw_release.decode("utf-8", "replace")
        info.update(parse_tegra_release(text) or {})
        info["nv_tegra_release"] = text.splitlines()[0] if text else ""
    dpkg = _run(["dpkg-query", "--admindir", str(root / "var" / "lib" / "dpkg"), "-W", "-f=${Version}",
                 "nvidia-jetpack"])
    package = (dpkg.stdout.strip() or None) if dpkg and dpkg.returncode == 0 else None
    if package:  # the nvidia-jetpack meta-package says it outright ("6.2+b77", "5.1.2-b104")
        info["jetpack"], info["jetpack_source"] = re.split(r"[+-]", package)[0], f"nvidia-jetpack {package} (dpkg)"
    else:  # flashed without the SDK meta-package: NVIDIA's L4T -> JetPack pairing
        jetpack, how = l4t_to_jetpack(info["l4t"])
        info["jetpack"] = jetpack
        info["jetpack_source"] = {"table": "NVIDIA's L4T/JetPack pairs",
                                  "branch": f"its branch: L4T {info['l4t']} is not in edge-fgic's table",
                                  }.get(how, "no L4T release read")
    q = _run(["nvpmodel", "-q"])
    info["nvpmodel"] = parse_nvpmodel(q.stdout + q.stderr) if q else None
    clocks = _run(["jetson_clocks", "--show"])
    info["jetson_clocks_show"] = (clocks.stdout or clocks.stderr).strip() if clocks else None
    info["cuda"] = cuda_info(root)
    tegrastats = root / "usr" / "bin" / "tegrastats"
    info["tegrastats"] = str(tegrastats) if tegrastats.exists() else (
        shutil.which("tegrastats") if root == Path("/") else None)
    return info


def gpu_info() -> dict | None:
    """CUDA devices as torch sees them; None without a usable CUDA device."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    devices = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        devices.append({"name": p.name, "capability": f"{p.major}.{p.minor}",
                        "memory_mb": round(p.total_memory / 2**20), "multiprocessors": p.multi_processor_count})
    smi = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    driver = smi.stdout.splitlines()[0].strip() if smi and smi.returncode == 0 and smi.stdout.strip() else None
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"devices": devices, "cuda_runtime": torch.version.cuda, "driver": driver, "cudnn": cudnn}


def library_versions(names: tuple[str, ...] = ("torch", "onnxruntime", "openvino", "ai-edge-litert", "tensorrt",
                                               "numpy", "nncf", "timm")) -> dict[str, str]:
    """Installed distribution versions; names that are not installed are left out."""
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def system_report() -> dict:
    """Everything above in one JSON-able dict for the bench report header."""
    return {"cpu": cpu_info(), "gpu": gpu_info(), "jetson": jetson_info(), "os": platform.platform(),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "libraries": library_versions()}
