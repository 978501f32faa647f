"""The packaging: a torch-free deploy install and a wheel that works outside the checkout (issue 17).

Fast: what the wheel holds, that the extras the tables name exist, the core is the deploy side only, the CLI's
one line for a missing extra, profiles through importlib.resources. Slow (``slim_venv``: the wheel in a fresh
venv without torch, run from a folder outside the repository): the CLI there, a build command's one line, and
predict / bench / camera giving the same answers as the full environment on the same artifacts.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import one_error_line
from slim_env import REPO, slim_run, wheel

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
DEPLOY_CORE = {"numpy", "pillow", "pyyaml", "typer", "rich", "onnxruntime"}
BUILD_COMMANDS = ("train", "eval", "distill", "quantize", "export", "pipeline")
runner = CliRunner()


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].strip().lower()


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    return zipfile.ZipFile(wheel(tmp_path_factory.mktemp("wheel"))).namelist()


# ---------------------------------------------------------------- fast: the wheel and the extras


def test_wheel_holds_the_package_data_and_nothing_else(wheel_names):
    names = set(wheel_names)
    profiles = sorted(p.name for p in (REPO / "export").glob("*.yaml"))
    assert profiles and {f"edge_fgic/profiles/{p}" for p in profiles} <= names, "device profiles missing"
    assert "edge_fgic/reference_defaults.yaml" in names
    tops = {n.split("/")[0] for n in names}
    assert tops == {"edge_fgic", "edge_fgic-0.1.0.dist-info"}, f"unexpected top-level entries: {sorted(tops)}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/." in n]
    # every module of the package (a new subpackage included) is in it: nothing depends on the checkout
    modules = {str(p.relative_to(REPO)) for p in (REPO / "edge_fgic").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)}"


def test_wheel_packages_are_what_setuptools_finds(wheel_names):
    """pyproject uses packages.find (no hand-kept list); the regular packages shipped are exactly find_packages'."""
    from setuptools import find_packages
    shipped = {n.rsplit("/", 1)[0].replace("/", ".") for n in wheel_names if n.endswith("/__init__.py")}
    assert shipped == set(find_packages(str(REPO), include=["edge_fgic*"]))


def test_core_dependencies_are_the_deploy_side():
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert core == DEPLOY_CORE, f"core dependencies {sorted(core)}: the build side belongs in [train]"
    train = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["train"]}
    assert {"torch", "torchvision", "timm", "nncf", "onnx", "onnxscript", "openvino"} <= train


def test_every_extra_the_tables_name_exists_and_all_has_them():
    from edge_fgic.targets import extras_named
    extras = PYPROJECT["project"]["optional-dependencies"]
    missing = sorted(extras_named() - set(extras))
    assert not missing, f"extras named in edge_fgic/targets.py but absent from pyproject.toml: {missing}"
    [all_spec] = extras["all"]
    in_all = set(re.fullmatch(r"edge-fgic\[(.*)\]", all_spec).group(1).split(","))
    assert in_all == set(extras) - {"all", "dev", "tensorrt"}  # tensorrt: CUDA hosts only; JetPack ships its own


def test_every_build_side_import_has_an_extra():
    """Each third-party module the package imports is a core dependency or in the table of extras."""
    from edge_fgic.targets import extra_for_module
    stdlib = set(sys.stdlib_module_names)
    core_modules = {"numpy", "PIL", "yaml", "typer", "rich", "onnxruntime", "click", "edge_fgic", "flatbuffers"}
    unknown = set()
    for path in (REPO / "edge_fgic").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for root in {n.split(".")[0] for n in names}:
                if root not in stdlib and root not in core_modules and extra_for_module(root) is None:
                    unknown.add(f"{root} ({path.relative_to(REPO)})")
    assert not unknown, f"imported but neither core nor in targets.PACKAGES: {sorted(unknown)}"


# ---------------------------------------------------------------- fast: the CLI guard, --version, profiles


def test_missing_build_package_is_one_line_naming_the_extra(monkeypatch):
    from edge_fgic.cli_support import missing_module_message
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "torch" else real(n, *a))
    line = missing_module_message("train", ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert line == 'edge-fgic train: needs torch, which this install does not have: pip install "edge-fgic[train]"'
    line = missing_module_message("export", ModuleNotFoundError(name="litert_torch.x"))
    assert line is None  # litert_torch is installed here: not the install's fault
    assert missing_module_message("train", ModuleNotFoundError(name="edge_fgic.nope")) is None  # our bug


def test_cli_guard_catches_it_centrally(monkeypatch, tmp_path):
    import edge_fgic.training.trainer as trainer
    from edge_fgic.cli import app

    def no_torch(*a, **k):
        raise ModuleNotFoundError("No module named 'nncf'", name="nncf")

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "nncf" else real(n, *a))
    monkeypatch.setattr(trainer, "train", no_torch)
    line = one_error_line(runner.invoke(app, ["train", "--out", str(tmp_path / "run")]))
    assert line == ('error: edge-fgic train: needs nncf, which this install does not have: '
                    'pip install "edge-fgic[train]"')


def test_version_is_the_installed_distribution():
    from importlib.metadata import version

    from edge_fgic.cli import app
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"edge-fgic {version('edge-fgic')}"


def test_profiles_come_through_importlib_resources(tmp_path, monkeypatch):
    from edge_fgic.export.profiles import list_profiles, load_profile, profiles_dir
    monkeypatch.chdir(tmp_path)  # not the checkout: names and the README's export/NAME.yaml still resolve
    assert list_profiles() == sorted(p.stem for p in (REPO / "export").glob("*.yaml"))
    assert load_profile("x86-cpu")["device"] == load_profile("export/x86-cpu.yaml")["device"] == "x86-cpu"
    assert profiles_dir().resolve() == (REPO / "export").resolve()  # editable install: the one copy, export/


def test_onnxruntime_read_back_without_onnx_is_a_note(monkeypatch, tmp_path):
    """A slim install has no `onnx`: the runner still runs and its record says what is not read back."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from edge_fgic.runtime.onnxruntime_runner import OnnxRuntimeRunner
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    path = tmp_path / "id.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    r = OnnxRuntimeRunner.__new__(OnnxRuntimeRunner)
    r.path, r.threads = path, 1
    r.session = ort.InferenceSession(str(path), r._options(), providers=["CPUExecutionProvider"])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnx" else real(n, *a))
    out = r._read_back()
    assert "pip install onnx" in out["read_back_error"] and out["precision"] is None and out["threads"] == 1


# ---------------------------------------------------------------- slow: the wheel in a venv without torch


def test_slim_cli_runs_outside_the_repo(slim_venv):
    assert slim_run(slim_venv, "python", "-c", "import torch", check=False).returncode != 0
    assert "Usage" in slim_run(slim_venv, "edge-fgic", "--help").stdout
    assert slim_run(slim_venv, "edge-fgic", "--version").stdout.strip() == "edge-fgic 0.1.0"
    for cmd in (*BUILD_COMMANDS, "predict", "bench", "camera", "doctor"):
        assert "Usage" in slim_run(slim_venv, "edge-fgic", cmd, "--help").stdout, cmd
    doctor = slim_run(slim_venv, "edge-fgic", "doctor").stdout
    assert "onnxruntime" in doctor and "Traceback" not in doctor
    files = slim_run(slim_venv, "python", "-c", "from edge_fgic.export.profiles import list_profiles, profiles_dir; "
                     "print(list_profiles(), profiles_dir())").stdout
    assert "jetson-orin-nano" in files and str(REPO) not in files  # the wheel's own copy, not the checkout's


@pytest.mark.parametrize("args", [["train"], ["export", "-m", "{pt}"], ["eval", "-m", "{pt}"],
                                  ["quantize", "-m", "{pt}"], ["distill", "-t", "{pt}"],
                                  ["pipeline", "--until", "teacher"]])
def test_slim_build_command_says_which_extra(slim_venv, tmp_path, args):
    pt = tmp_path / "run" / "best.pt"
    pt.parent.mkdir()
    pt.write_bytes(b"not a checkpoint")
    out = ["--out", str(tmp_path / "out")] if args[0] in ("train", "pipeline") else []
    args = [a.format(pt=pt) for a in args] + out
    r = slim_run(slim_venv, "edge-fgic", *args, check=False)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr and len(lines) == 1, r.stdout + r.stderr
    assert re.fullmatch(rf'error: edge-fgic {args[0]}: needs \S+, which this install does not have: '
                        r'pip install "edge-fgic\[(train|tflite)\]"', lines[0]), lines[0]


@pytest.fixture(scope="module")
def artifacts(tiny_fp32_exports, ptq_unsigned, tmp_path_factory) -> dict[str, Path]:
    """FP32 ONNX (bench's reference) and FP32 .tflite of the tiny model (conftest's, shared with the other
    torch-free tests), and its INT8 ONNX, exported in this (full) venv."""
    from edge_fgic.export.exporter import ExportConfig, export
    out = tmp_path_factory.mktemp("slim-artifacts")
    [res] = export(ExportConfig(model=str(ptq_unsigned / "best.pt"), target="onnx", precision="int8",
                                out=str(out / "int8"), name="m", split="train", check_images=0, min_agreement=80.0),
                   progress=False)
    return {"onnx": tiny_fp32_exports / "m-fp32.onnx", "tflite": tiny_fp32_exports / "m-fp32.tflite",
            "int8": Path(res.artifact)}


def _full(*args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "edge_fgic", *args], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def _labels(jsonl: Path) -> list[tuple[str, str]]:
    return [(Path(r["file"]).name, r["label"]) for r in map(json.loads, jsonl.read_text().splitlines())]


@pytest.mark.parametrize("which", ["onnx", "tflite", "int8"])
def test_slim_predict_matches_the_full_environment(slim_venv, artifacts, tiny_synth, tmp_path, which):
    model, images = str(artifacts[which]), str(tiny_synth / "val")
    _full("predict", "-m", model, images, "--threads", "1", "--out", str(tmp_path / "full.jsonl"))
    slim_run(slim_venv, "edge-fgic", "predict", "-m", model, images, "--threads", "1",
             "--out", str(tmp_path / "slim.jsonl"))
    full, slim = _labels(tmp_path / "full.jsonl"), _labels(tmp_path / "slim.jsonl")
    assert len(full) == len(list((tiny_synth / "val").rglob("*.png"))) and slim == full


def test_slim_bench_matches_the_full_environment(slim_venv, artifacts, tiny_synth, tmp_path):
    args = [str(artifacts["onnx"]), str(artifacts["tflite"]), str(artifacts["int8"]), "--reference",
            str(artifacts["onnx"]), "--data", f"imagefolder={tiny_synth}", "--runs", "10", "--threads", "1",
            "--max-drop", "100"]
    _full("bench", *args, "--out", str(tmp_path / "full"))
    slim_run(slim_venv, "edge-fgic", "bench", *args, "--out", str(tmp_path / "slim"))

    def top1(folder: Path) -> dict[str, float]:
        rows = json.loads((folder / "bench.json").read_text())["rows"]
        return {r["name"]: (r.get("top1"), r.get("agreement")) for r in rows}

    full, slim = top1(tmp_path / "full"), top1(tmp_path / "slim")
    assert len(full) >= 3 and any(k.startswith("reference: ") for k in full) and slim == full
    assert all(top is not None for top, _ in full.values()), full
    # what the torch-free install cannot do is said, not crashed on
    report = json.loads((tmp_path / "slim" / "bench.json").read_text())
    assert report["reference"]["kind"] == "artifact" and report["reference"]["runtime"] == "onnxruntime"
    assert report["roofline"] is None and any("roofline skipped" in n for n in report["notes"])
    assert any("pareto.png skipped" in n for n in report["notes"]) and not (tmp_path / "slim" / "pareto.png").exists()
    assert (tmp_path / "full" / "pareto.png").exists()
    md = (tmp_path / "slim" / "bench.md").read_text()
    assert "(the FP32 artifact in onnxruntime; --reference)" in md and "Note: roofline skipped" in md
    # no --reference, no --data: the source checkpoint cannot run without torch, so the FP32 ONNX is the
    # reference and the dataset is the one its manifest records
    slim_run(slim_venv, "edge-fgic", "bench", str(artifacts["tflite"]), str(artifacts["onnx"]), "--runs", "10",
             "--threads", "1", "--out", str(tmp_path / "auto"))
    auto = json.loads((tmp_path / "auto" / "bench.json").read_text())
    assert [r["name"] for r in auto["rows"]] == ["reference: m-fp32.onnx", "m-fp32.tflite"]
    assert "torch is not installed" in auto["reference"]["why"]
    assert [r["top1"] for r in auto["rows"]] == [full["reference: m-fp32.onnx"][0], full["m-fp32.tflite"][0]]


def test_slim_camera_on_a_video_matches_the_full_environment(slim_venv, artifacts, tiny_synth, tmp_path):
    cv2 = pytest.importorskip("cv2")
    import numpy as np
    from PIL import Image
    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (48, 40))
    for p in sorted((tiny_synth / "val").rglob("*.png")):
        w.write(cv2.cvtColor(np.asarray(Image.open(p).convert("RGB").resize((48, 40))), cv2.COLOR_RGB2BGR))
    w.release()
    args = ["camera", "-m", str(artifacts["onnx"]), "--source", str(video), "--threads", "1", "--jsonl", "-"]
    full = [json.loads(ln)["label"] for ln in _full(*args).stdout.splitlines() if ln.startswith("{")]
    res = slim_run(slim_venv, "edge-fgic", *args)
    slim = [json.loads(ln)["label"] for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert full and slim == full


# 3.11-only standard-library names (the deploy side runs on JetPack 6's Python 3.10)
PY311_ONLY = re.compile(r"\b(tomllib|datetime\.UTC|StrEnum|ExceptionGroup|TaskGroup|file_digest|LiteralString|"
                        r"NotRequired|add_note|typing\.Self|from typing import [^\n]*\bSelf\b)")


def test_the_package_runs_on_python_3_10():
    """requires-python says 3.10: every module must parse with 3.10's grammar and use no 3.11-only stdlib name."""
    bad = []
    for f in sorted((REPO / "edge_fgic").rglob("*.py")):
        src = f.read_text(encoding="utf-8")
        try:
            ast.parse(src, filename=str(f), feature_version=(3, 10))
        except SyntaxError as exc:
            bad.append(f"{f.relative_to(REPO)}:{exc.lineno}: not Python 3.10 syntax ({exc.msg})")
        for n, line in enumerate(src.splitlines(), 1):
            m = PY311_ONLY.search(line)
            if m and not line.lstrip().startswith("#"):
                bad.append(f"{f.relative_to(REPO)}:{n}: {m.group(0)} is Python 3.11+")
    assert not bad, "\n".join(bad)
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["requires-python"] == ">=3.10"
