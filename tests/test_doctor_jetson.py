"""`edge-fgic doctor` on a deploy machine: the Jetson probes (L4T -> JetPack, board, nvpmodel, CUDA toolkit, JetPack's
tensorrt/OpenCV seen from this venv, onnxruntime's providers, tegrastats) on a fake root filled with files in the
formats real boards have, and doctor in a torch-free install (heavy imports blocked in a subprocess; the real
slim venv in the slow tier). No Jetson was available: the file formats below are quoted from public dumps."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge_fgic import doctor
from edge_fgic.bench import sysinfo

REPO = Path(__file__).resolve().parents[1]

# /etc/nv_tegra_release. R36.4.3 (JetPack 6.2): github.com/xulei-leon/particleML docs (also in test_bench_system);
# the R36.4.0 file whole (its 2nd-4th lines are what JetPack 6 writes) from a Seeed reComputer firmware note;
# R35.3.1 and R32.7.1 verbatim from the comments of dusty-nv/jetson-containers jetson_containers/l4t_version.py.
R36_4_3 = ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
           "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
           "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n")
R36_4_0 = ("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, "
           "DATE: Fri Sep 13 04:36:44 UTC 2024\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
           "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n")
R35_3_1 = ("# R35 (release), REVISION: 3.1, GCID: 32790763, BOARD: t186ref, EABI: aarch64, "
           "DATE: Wed Mar 15 07:54:12 UTC 2023\n")
R32_7_1 = ("# R32 (release), REVISION: 7.1, GCID: 29689809, BOARD: t186ref, EABI: aarch64, "
           "DATE: Wed Feb  2 21:33:23 UTC 2022\n")
# /proc/device-tree/model is NUL-terminated (what `cat` shows as the board name, plus a trailing \0)
ORIN_NANO_MODEL = b"NVIDIA Jetson Orin Nano Developer Kit\x00"
# /usr/local/cuda/version.json (CUDA 11.1+ layout: one {"name", "version"} entry per component), JetPack 6.2's 12.6
CUDA_VERSION_JSON = textwrap.dedent("""\
    {
       "cuda" : {
          "name" : "CUDA SDK",
          "version" : "12.6.68"
       },
       "cuda_cccl" : {
          "name" : "CUDA C++ Core Compute Libraries",
          "version" : "12.6.37"
       },
       "cuda_cudart" : {
          "name" : "CUDA Runtime (cudart)",
          "version" : "12.6.68"
       },
       "cuda_nvcc" : {
          "name" : "CUDA NVCC",
          "version" : "12.6.68"
       }
    }
    """)
# `nvcc --version` as JetPack 6.1/6.2 prints it; version.txt is what CUDA <= 11.0 (JetPack 4.x: 10.2.300) had
NVCC_OUTPUT = ("nvcc: NVIDIA (R) Cuda compiler driver\nCopyright (c) 2005-2024 NVIDIA Corporation\n"
               "Built on Wed_Aug_14_10:14:07_PDT_2024\nCuda compilation tools, release 12.6, V12.6.68\n"
               "Build cuda_12.6.r12.6/compiler.34714021_0\n")
CUDA_VERSION_TXT = "CUDA Version 10.2.300\n"


def fake_jetson(root: Path, release: str = R36_4_3, model: bytes = ORIN_NANO_MODEL, cuda: str | None = "json",
                python: str = "3.10") -> Path:
    """A filesystem laid out like a JetPack install under ``root`` (only the files doctor reads)."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "nv_tegra_release").write_text(release)
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "device-tree" / "model").write_bytes(model)
    kit = root / "usr" / "local" / "cuda"
    kit.mkdir(parents=True)
    if cuda == "json":
        (kit / "version.json").write_text(CUDA_VERSION_JSON)
    elif cuda == "txt":
        (kit / "version.txt").write_text(CUDA_VERSION_TXT)
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tegrastats").write_text("#!/bin/sh\n")
    site = root / "usr" / "lib" / f"python{python}" / "dist-packages"
    for pkg in ("tensorrt", "cv2"):  # JetPack's python3-libnvinfer / OpenCV install packages here
        (site / pkg).mkdir(parents=True)
        (site / pkg / "__init__.py").write_text("")
    return root


@pytest.fixture
def no_tools(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """sysinfo's command queries, answered like an Orin Nano at 25 W without root (jetson_clocks refuses)."""
    calls: list[list[str]] = []

    def run(cmd: list[str]):
        calls.append(cmd)
        answers = {"nvpmodel": ("NV Power Mode: 25W\n1\n", "", 0),
                   "jetson_clocks": ("", "Error: Run jetson_clocks as root\n", 1)}  # hypothetical wording
        if cmd[0] not in answers:
            return None
        out, err, rc = answers[cmd[0]]
        return subprocess.CompletedProcess(cmd, rc, out, err)

    monkeypatch.setattr(sysinfo, "_run", run)
    return calls


# --------------------------------------------------------------------------------------------- pure parsers

@pytest.mark.parametrize("l4t, jetpack, how", [
    ("36.4.3", "6.2", "table"), ("36.4.4", "6.2.1", "table"), ("36.4.0", "6.1", "table"), ("36.4", "6.1", "table"),
    ("36.3.0", "6.0", "table"), ("36.2.0", "6.0 DP", "table"), ("35.6.1", "5.1.5", "table"),
    ("35.6.0", "5.1.4", "table"), ("35.5.0", "5.1.3", "table"), ("35.4.1", "5.1.2", "table"),
    ("35.3.1", "5.1.1", "table"), ("35.2.1", "5.1", "table"), ("35.1.0", "5.0.2", "table"),
    ("32.7.1", "4.6.1", "table"), ("32.7.6", "4.6.6", "table"), ("32.6.1", "4.6", "table"),
    ("32.5.0", "4.5", "table"), ("38.2.0", "7.0", "table"), ("38.4.0", "7.1", "table"),
    ("36.4.7", "6.x", "branch"), ("35.6.2", "5.x", "branch"), ("32.5.2", "4.x", "branch"),
    ("31.1.0", None, "unknown"), (None, None, "unknown"), ("garbage", None, "unknown"),
])
def test_l4t_to_jetpack(l4t, jetpack, how):
    assert sysinfo.l4t_to_jetpack(l4t) == (jetpack, how)


def test_parse_tegra_release_of_each_branch():
    assert sysinfo.parse_tegra_release(R36_4_0) == {"l4t": "36.4.0", "board": "generic"}
    assert sysinfo.parse_tegra_release(R35_3_1) == {"l4t": "35.3.1", "board": "t186ref"}
    assert sysinfo.parse_tegra_release(R32_7_1) == {"l4t": "32.7.1", "board": "t186ref"}
    assert sysinfo.parse_tegra_release("TARGET_USERSPACE_LIB_DIR=nvidia\n") is None


def test_parse_device_tree_model_drops_the_nul():
    assert sysinfo.parse_device_tree_model(ORIN_NANO_MODEL) == "NVIDIA Jetson Orin Nano Developer Kit"
    assert sysinfo.parse_device_tree_model("Raspberry Pi 5 Model B Rev 1.0\x00") == "Raspberry Pi 5 Model B Rev 1.0"
    assert sysinfo.parse_device_tree_model(b"\x00") is None


def test_parse_cuda_versions():
    assert sysinfo.parse_cuda_version_json(CUDA_VERSION_JSON) == "12.6.68"
    assert sysinfo.parse_cuda_version_json('{"cuda_cudart": {"version": "11.4.298"}}') == "11.4.298"
    assert sysinfo.parse_cuda_version_json("not json") is None
    assert sysinfo.parse_cuda_version_txt(CUDA_VERSION_TXT) == "10.2.300"
    assert sysinfo.parse_nvcc_version(NVCC_OUTPUT) == "12.6.68"
    assert sysinfo.parse_nvcc_version("bash: nvcc: command not found") is None


def test_parse_pyvenv_cfg():
    cfg = ("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.10.12\n"
           "executable = /usr/bin/python3.10\ncommand = /usr/bin/python3 -m venv /home/nvidia/edge-fgic-venv\n")
    assert doctor.parse_pyvenv_cfg(cfg) is False
    assert doctor.parse_pyvenv_cfg(cfg.replace("= false", "= true")) is True
    assert doctor.parse_pyvenv_cfg("home = /usr/bin\n") is None


# ------------------------------------------------------------------------------------ the fake Jetson root

def test_jetson_info_on_a_fake_orin_nano(tmp_path: Path, no_tools):
    info = sysinfo.jetson_info(fake_jetson(tmp_path))
    assert info["model"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert (info["l4t"], info["board"], info["jetpack"]) == ("36.4.3", "generic", "6.2")
    assert "NVIDIA's L4T/JetPack pairs" in info["jetpack_source"]
    assert info["nvpmodel"] == {"mode": "25W", "id": 1}
    assert info["jetson_clocks_show"] == "Error: Run jetson_clocks as root"
    assert info["cuda"] == {"version": "12.6.68", "release": "12.6",
                            "source": str(tmp_path / "usr/local/cuda/version.json")}
    assert info["tegrastats"] == str(tmp_path / "usr/bin/tegrastats")
    # read-only: only queries ran (no nvpmodel -m, no jetson_clocks without --show)
    assert [c[0] for c in no_tools] == ["dpkg-query", "nvpmodel", "jetson_clocks"]
    assert ["nvpmodel", "-q"] in no_tools and ["jetson_clocks", "--show"] in no_tools
    json.dumps(info)


def test_jetson_info_branch_only_release_old_cuda_and_off_jetson(tmp_path: Path, no_tools):
    old = sysinfo.jetson_info(fake_jetson(tmp_path / "nano", release=R32_7_1.replace("7.1", "7.9"), cuda="txt",
                                          model=b"NVIDIA Jetson Nano Developer Kit\x00"))
    assert (old["l4t"], old["jetpack"]) == ("32.7.9", "4.x")
    assert "not in edge-fgic's table" in old["jetpack_source"]
    assert old["cuda"]["version"] == "10.2.300"
    # a board with the device-tree model but no release file (a custom image): still a Jetson, L4T unknown
    model_only = tmp_path / "custom"
    (model_only / "proc" / "device-tree").mkdir(parents=True)
    (model_only / "proc" / "device-tree" / "model").write_bytes(ORIN_NANO_MODEL)
    bare = sysinfo.jetson_info(model_only)
    assert bare["l4t"] is None and bare["jetpack"] is None and bare["cuda"] is None
    # not a Jetson: a Raspberry Pi's model and no release file, or nothing at all
    pi = tmp_path / "pi"
    (pi / "proc" / "device-tree").mkdir(parents=True)
    (pi / "proc" / "device-tree" / "model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    assert sysinfo.jetson_info(pi) is None
    assert sysinfo.jetson_info(tmp_path / "empty") is None


def test_nvidia_jetpack_package_wins_over_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def run(cmd):
        if cmd[0] == "dpkg-query":  # `dpkg-query -W -f='${Version}' nvidia-jetpack` on JetPack 6.2
            return subprocess.CompletedProcess(cmd, 0, "6.2+b77", "")
        return None
    monkeypatch.setattr(sysinfo, "_run", run)
    info = sysinfo.jetson_info(fake_jetson(tmp_path))
    assert info["jetpack"] == "6.2" and info["jetpack_source"] == "nvidia-jetpack 6.2+b77 (dpkg)"
    assert info["nvpmodel"] is None and info["jetson_clocks_show"] is None


def test_system_python_modules(tmp_path: Path):
    root = fake_jetson(tmp_path)
    found = doctor.system_python_modules(root)
    assert found == {"tensorrt": [str(root / "usr/lib/python3.10/dist-packages/tensorrt")],
                     "cv2": [str(root / "usr/lib/python3.10/dist-packages/cv2")]}
    assert doctor.system_python_modules(tmp_path / "nothing") == {"tensorrt": [], "cv2": []}


SYSTEM = {"tensorrt": ["/usr/lib/python3.10/dist-packages/tensorrt"], "cv2": ["/usr/lib/python3.10/dist-packages/cv2"]}


@pytest.mark.parametrize("importable, system, env, expected", [
    # a plain venv on JetPack's Python 3.10 hides both: the one line, once
    ({"tensorrt": False, "cv2": False}, SYSTEM, {"version": "3.10", "venv": True, "system_site_packages": False},
     [doctor.SYSTEM_SITE_HINT]),
    # --system-site-packages: both importable, nothing to say
    ({"tensorrt": True, "cv2": True}, SYSTEM, {"version": "3.10", "venv": True, "system_site_packages": True}, []),
    # a venv of another Python (uv's 3.12, pyenv's 3.11) cannot load JetPack's 3.10 modules
    ({"tensorrt": False, "cv2": False}, SYSTEM, {"version": "3.12", "venv": True, "system_site_packages": False},
     ["JetPack's tensorrt and cv2 are built for Python 3.10 (/usr/lib/python3.10/dist-packages/tensorrt) and this "
      "is Python 3.12: create the venv from JetPack's /usr/bin/python3 with --system-site-packages"]),
    ({"tensorrt": False, "cv2": True}, SYSTEM, {"version": "3.12", "venv": True, "system_site_packages": True},
     ["JetPack's tensorrt is built for Python 3.10 (/usr/lib/python3.10/dist-packages/tensorrt) and this is "
      "Python 3.12: create the venv from JetPack's /usr/bin/python3 with --system-site-packages"]),
    # JetPack without its Python modules installed
    ({"tensorrt": False, "cv2": True}, {"tensorrt": [], "cv2": []},
     {"version": "3.10", "venv": False, "system_site_packages": True},
     ["no tensorrt module in JetPack's Python either (sudo apt install python3-libnvinfer)"]),
])
def test_jetson_python_hints(importable, system, env, expected):
    assert doctor.jetson_python_hints(importable, system, env) == expected


def _render_text(report) -> str:
    from rich.console import Console
    console = Console(record=True, width=200, color_system=None)
    console.print(doctor.render(report))
    return console.export_text()


def test_doctor_on_a_fake_jetson_says_what_it_found(tmp_path: Path, no_tools, monkeypatch: pytest.MonkeyPatch):
    """The slim install in a plain venv on a Jetson: JetPack's tensorrt/OpenCV hidden, PyPI's CPU onnxruntime."""
    root = fake_jetson(tmp_path)
    real_has = doctor._has
    hidden = {"tensorrt", "cv2", "torch", "torchvision", "timm", "nncf", "onnx", "onnxscript"}
    monkeypatch.setattr(doctor, "_has", lambda m: False if m.split(".")[0] in hidden else real_has(m))
    monkeypatch.setattr(doctor, "python_env", lambda: {"version": "3.10", "executable": "/home/nvidia/v/bin/python",
                                                      "venv": True, "system_site_packages": False})
    cpu_ort = {"version": "1.20.1", "providers": ["CPUExecutionProvider"]}  # PyPI's aarch64 wheel
    monkeypatch.setattr(doctor, "onnxruntime_info", lambda: cpu_ort)
    j = doctor.jetson_report(root)
    assert j["jetpack"] == "6.2" and j["modules"]["tensorrt"] == {
        "importable": False, "version": "", "system": [str(root / "usr/lib/python3.10/dist-packages/tensorrt")]}
    assert j["hints"] == [doctor.SYSTEM_SITE_HINT, doctor.JETSON_ORT_HINT]
    report = doctor.checks()
    report["jetson"], report["install"] = j, doctor.install_side()
    report["onnxruntime"] = j["onnxruntime"]
    json.dumps(report)  # what a --json / the remote machine record would carry
    text = _render_text(report)
    for line in ["Jetson    NVIDIA Jetson Orin Nano Developer Kit; L4T 36.4.3; JetPack 6.2 (from NVIDIA's L4T/JetPack",
                 "power     nvpmodel 25W (mode 1)", f"CUDA kit  12.6.68 ({root}/usr/local/cuda/version.json)",
                 f"TensorRT  python module not importable here; JetPack's at {root}/usr/lib/python3.10/dist-packages",
                 f"energy    tegrastats at {root}/usr/bin/tegrastats: bench --target jetson",
                 "create the venv with --system-site-packages to see JetPack's tensorrt and OpenCV",
                 "ORT EPs   onnxruntime 1.20.1: CPUExecutionProvider", "jetson-ai-lab pip index",
                 "install   deploy (runs artifacts: onnxruntime", 'pip install "edge-fgic[train]"']:
        assert line in text, f"{line!r} not in:\n{text}"


def test_doctor_with_jetpacks_tensorrt_but_no_torch_says_how_engines_run(tmp_path: Path, no_tools,
                                                                         monkeypatch: pytest.MonkeyPatch):
    root = fake_jetson(tmp_path)
    real_has = doctor._has
    monkeypatch.setattr(doctor, "_has", lambda m: True if m in ("tensorrt", "cv2") else (
        False if m == "torch" else real_has(m)))
    monkeypatch.setattr(doctor, "_module_version", lambda m: {"tensorrt": "10.3.0", "cv2": "4.8.0"}[m])
    monkeypatch.setattr(doctor, "onnxruntime_info", lambda: {"version": "1.20.0", "providers": [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]})  # the Jetson Zoo wheel's
    j = doctor.jetson_report(root)
    assert j["hints"] == [doctor.JETSON_TORCH_HINT]
    assert j["modules"]["tensorrt"]["version"] == "10.3.0"


def test_doctor_off_jetson_has_no_jetson_block():
    report = doctor.checks()
    if not Path("/etc/nv_tegra_release").exists():
        assert report["jetson"] is None
    side = report["install"]
    assert side["deploy"] and "onnxruntime" in side["runtimes"]
    assert set(report["onnxruntime"]["providers"]) >= {"CPUExecutionProvider"}
    json.dumps(report)


# --------------------------------------------------------------------------------------- the slim install

BLOCKED = ("torch", "torchvision", "timm", "nncf", "torchao", "onnx", "onnxscript", "onnxslim", "openvino",
           "litert_torch", "ai_edge_quantizer", "scipy", "matplotlib", "safetensors", "tensorflow", "tensorrt")
# A deploy machine's interpreter: the build side's packages are absent. Python answers find_spec() with None for a
# name whose sys.modules entry is None, and `import` raises ModuleNotFoundError; the meta_path finder catches any
# import that would get past that (a reload, a `del sys.modules[...]`) and records it.
SLIM_PRELUDE = f"""
import importlib.abc, json, sys
BLOCKED = {BLOCKED!r}
attempts = []
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: a deploy install)", name=name)
        return None
sys.meta_path.insert(0, Blocker())
for name in BLOCKED:
    sys.modules[name] = None
"""


def test_doctor_runs_without_torch_nncf_or_converters():
    script = SLIM_PRELUDE + textwrap.dedent("""
        from edge_fgic.cli import main
        from edge_fgic.doctor import checks
        try:
            main(["doctor"])
        except SystemExit as exc:
            assert not exc.code, exc.code
        report = checks()
        loaded = [n for n in BLOCKED if sys.modules.get(n) is not None]
        print("JSON" + json.dumps({"install": report["install"], "loaded": loaded, "attempts": attempts,
                                   "accelerators": report["accelerators"]}))
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "Traceback" not in out + proc.stderr
    assert "install   deploy (runs artifacts: onnxruntime" in out
    assert 'build     not installed (train/quantize/export; missing torch, torchvision, timm, NNCF, onnx, ' \
           'onnxscript): pip install "edge-fgic[train]"' in out
    assert "no torch here (deploy install)" in out
    data = json.loads(out[out.rindex("JSON") + 4:])
    assert data["loaded"] == [] and data["attempts"] == []
    assert data["install"] == {"deploy": True, "runtimes": data["install"]["runtimes"], "build": False,
                               "missing_build": ["torch", "torchvision", "timm", "NNCF", "onnx", "onnxscript"],
                               "build_hint": 'pip install "edge-fgic[train]"'}
    assert data["install"]["runtimes"][0] == "onnxruntime" and "OpenVINO" not in data["install"]["runtimes"]
    assert data["accelerators"]["torch"] is False and data["accelerators"]["cuda"] is None


def test_doctor_in_the_real_slim_venv(slim_venv: Path):
    from slim_env import slim_run
    res = slim_run(slim_venv, "edge-fgic", "doctor", env={"COLUMNS": "200"})
    assert "install   deploy (runs artifacts: onnxruntime" in res.stdout, res.stdout
    assert 'pip install "edge-fgic[train]"' in res.stdout
    assert "Traceback" not in res.stdout + res.stderr
