"""The README cannot rot: every command in its ```bash blocks is checked.

* Every ``edge-fgic`` command (also as ``torchrun ... -m edge_fgic``) must parse: the subcommand exists and
  every flag, choice and value is accepted by the real CLI.
* Every command that works on the demo's outputs (``runs/demo/...``, ``datasets/synthetic_fg``) is then
  **run**, verbatim, in a folder laid out like the demo's (a tiny pipeline run into ``runs/demo``), and must
  succeed. The rest need a real dataset, a GPU, a Jetson or a camera; the test says which and why.
* ``make demo`` / ``make test`` are Makefile targets (CI runs ``make test`` itself), ``cp`` into the Android
  demo targets a folder the repository has.
"""

from __future__ import annotations

import re
import shlex
import shutil
import time
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from edge_fgic.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
# what a command line that does not parse raises: newer typer vendors its own click, older typer uses click's
USAGE_ERRORS = tuple({click.UsageError, *(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")})


def readme_commands(path: Path = ROOT / "README.md") -> list[str]:
    """Each command line of the README's ```bash blocks (continuations joined, comments kept out)."""
    text = path.read_text(encoding="utf-8")
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                cmds.append(shlex.join(tokens))
    return cmds


def cli_args(cmd: str) -> list[str] | None:
    """The arguments edge-fgic receives (up to a shell operator), or None for a non-edge-fgic command."""
    tokens = shlex.split(cmd)
    for op in ("&&", "||", "|", ";"):
        if op in tokens:
            tokens = tokens[:tokens.index(op)]
    if tokens[0] == "edge-fgic":
        return tokens[1:]
    if "edge_fgic" in tokens and tokens[tokens.index("edge_fgic") - 1] == "-m":  # torchrun/python -m edge_fgic
        return tokens[tokens.index("edge_fgic") + 1:]
    return None


def _cp_pairs(cmd: str) -> list[tuple[str, str]]:
    """(source, destination) of each `cp A B` in a `cp A B && cp C D` line."""
    tokens, pairs, part = shlex.split(cmd), [], []
    for t in [*tokens, "&&"]:
        if t == "&&":
            if part and part[0] == "cp":
                pairs.append((part[-2], part[-1]))
            part = []
        else:
            part.append(t)
    return pairs


# why a command is only parsed, not run here (first match wins)
NOT_HERE = [
    (r"--remote ", "needs a device over SSH (tests/test_remote.py runs bench --remote against a localhost sshd)"),
    (r"torchrun|--device cuda", "needs CUDA GPUs"),
    (r"\.engine|--target jetson|csi:", "needs a Jetson (TensorRT engine, CSI camera, tegrastats)"),
    (r"usb:", "needs a webcam"),
    (r"/data|~/|\.\./shared|runs/(cub|o17|teacher|cub-atto)|train/(cub200|stanford|flowers102)\.yaml",
     "needs a real dataset or its runs"),
    (r"^edge-fgic (train|distill)|pipeline -c|^edge-fgic pipeline$",
     "trains for minutes (the demo and the tests cover it)"),
    (r"^edge-fgic predict -m student|^edge-fgic camera -m student", "names a file on the user's device"),
]


def why_not_here(cmd: str) -> str | None:
    for pattern, why in NOT_HERE:
        if re.search(pattern, cmd):
            return why
    return None


def test_readme_has_the_commands_a_user_needs():
    cmds = readme_commands()
    subs = {(cli_args(c) or [None])[0] for c in cmds}
    assert {"datasets", "train", "eval", "distill", "quantize", "export", "bench", "predict", "camera", "pipeline",
            "doctor"} <= subs
    assert "make demo" in cmds and "make test" in cmds


def test_every_edge_fgic_command_in_the_readme_parses():
    group = typer.main.get_command(app)
    checked = 0
    for cmd in readme_commands():
        args = cli_args(cmd)
        if args is None:
            continue
        sub = group.get_command(click.Context(group), args[0]) if args else None
        assert sub is not None, f"README: `{cmd}`: no such command"
        if not args[1:]:
            continue
        try:
            sub.make_context(args[0], list(args[1:]), parent=click.Context(group, info_name="edge-fgic"))
        except USAGE_ERRORS as exc:
            pytest.fail(f"README: `{cmd}` does not parse: {exc.format_message()}")
        checked += 1
    assert checked >= 30
    export = group.get_command(click.Context(group), "export")  # and a line that does not parse is caught
    for bad in (["-m", "x.pt", "--target", "coreml"], ["-m", "x.pt", "--no-such-flag"]):
        with pytest.raises(USAGE_ERRORS):
            export.make_context("export", bad, parent=click.Context(group, info_name="edge-fgic"))


def test_make_targets_and_android_assets_exist():
    makefile = (ROOT / "Makefile").read_text()
    for cmd in readme_commands():
        tokens = shlex.split(cmd)
        if tokens[0] == "make":
            assert re.search(rf"^{tokens[1]}:", makefile, flags=re.M), f"README: `{cmd}`: no such Makefile target"
        if tokens[0] == "cp":
            for _, dst in _cp_pairs(cmd):
                assert (ROOT / dst).parent.is_dir(), f"README: `{cmd}`: {Path(dst).parent} is not in the repository"
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def readme_sections() -> dict:
    """The demo's pipeline config at test size: the same stages and targets, tiny models, 32 px images."""
    from test_pipeline import tiny_sections
    sections = tiny_sections("synthetic=datasets/synthetic_fg")
    sections["teacher"]["epochs"] = 4
    sections["student"]["epochs"] = 4
    sections["qat"].update(signed=True, overflow_fix="enable")  # TensorRT-legal INT8, as the demo's
    sections["export"].update(targets="all", precisions=["fp32", "int8"])
    return sections


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A folder laid out like the demo's after `make demo`: datasets/synthetic_fg and runs/demo/<stage>/,
    made by the real pipeline on a tiny dataset and tiny models; plus a user's video clip.mp4."""
    import cv2
    import numpy as np
    from PIL import Image

    from edge_fgic.data.synthetic import SyntheticConfig, generate
    from edge_fgic.pipeline import PipelineConfig, run_pipeline

    root = tmp_path_factory.mktemp("readme")
    generate(root / "datasets" / "synthetic_fg", SyntheticConfig(image_size=32, train_per_class=6, val_per_class=3,
                                                                 test_per_class=1), progress=False)
    sections = readme_sections()
    import os
    cwd = os.getcwd()
    os.chdir(root)
    try:
        run_pipeline(PipelineConfig(out="runs/demo", sections=sections), progress=False)
    finally:
        os.chdir(cwd)
    w = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (64, 48))
    for p in sorted((root / "datasets" / "synthetic_fg" / "test").rglob("*.png")):
        w.write(np.ascontiguousarray(np.asarray(Image.open(p).convert("RGB").resize((64, 48)))[:, :, ::-1]))
    w.release()
    (root / "android_demo" / "app" / "src" / "main" / "assets").mkdir(parents=True)  # as in the repository
    return root


# A tiny model on 18 val images can miss a gate a real model meets (one image is 5.6 pt): a gate's "no" is the
# exit code the command must give then, but only as a near miss; a broken artifact misses by far more.
NEAR_MISS_AGREEMENT = 80.0  # export round trip: at most 3 of the 18 images disagree with the source model


def _bench_reports(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.glob("runs/**/bench.json")}


def _expected_exit(cmd: str, output: str, root: Path, before: dict[Path, int]) -> int:
    """The exit code ``cmd`` must have given, from its own verdict: 1 where a gate said no (export: a round trip
    below its agreement gate, nothing written; bench/pipeline: every row ran and a gated one dropped more than
    --max-drop, as its new bench.json says), else 0. A verdict that is not a near miss fails here."""
    import json
    if cmd.startswith("edge-fgic export"):
        failed = [ln for ln in output.splitlines() if ln.startswith("failed")]
        for ln in failed:
            m = re.search(r"round trip .*\(agreement ([\d.]+)% < [\d.]+%\); nothing was written", ln)
            assert m and float(m[1]) >= NEAR_MISS_AGREEMENT, f"README: `{cmd}`: not a near miss of the gate: {ln}"
        return 1 if failed else 0
    if not re.search(r"^edge-fgic (bench|pipeline)", cmd):
        return 0
    assert "✗ export" not in output, f"README: `{cmd}`: an export failed:\n{output[-3000:]}"
    reports = [p for p, t in _bench_reports(root).items() if before.get(p) != t]
    if not reports and cmd.startswith("edge-fgic pipeline"):  # its bench stage was up to date: that report
        tokens = shlex.split(cmd)
        reports = [root / tokens[tokens.index("--out") + 1] / "bench" / "bench.json"]
    assert len(reports) == 1, f"README: `{cmd}`: wrote {len(reports)} bench.json"
    rows = json.loads(reports[0].read_text())["rows"]
    assert all(r["status"] == "ok" for r in rows), rows
    near_miss = readme_sections()["bench"]["max_drop"]  # two of the 18 images
    failed = [r for r in rows if not r["passed"]]
    assert all(r["gated"] and r["drop"] <= near_miss for r in failed), f"README: `{cmd}`: not a near miss: {failed}"
    return 1 if failed else 0


def test_readme_commands_run_on_the_demo_outputs(demo_dir, monkeypatch, capsys):
    from edge_fgic import pipeline
    monkeypatch.chdir(demo_dir)
    monkeypatch.setattr(pipeline, "DEMO_PIPELINE", readme_sections())  # the embedded default, at test size
    ran, skipped, seconds, exits = [], [], {}, {}
    for cmd in readme_commands():
        why = why_not_here(cmd)
        args = cli_args(cmd)
        if why or (args is None and not cmd.startswith("cp ")):
            skipped.append((cmd, why or "not an edge-fgic command"))
            continue
        if args is None:  # cp into the Android demo's assets (the model and its sidecar: `cp A B && cp C D`)
            for src, dst in _cp_pairs(cmd):
                shutil.copyfile(src, dst)
            ran.append(cmd)
            continue
        t0, before = time.perf_counter(), _bench_reports(demo_dir)
        r = runner.invoke(app, args)
        seconds[cmd] = time.perf_counter() - t0
        assert "Traceback" not in r.output, f"README: `{cmd}`:\n{r.output[-3000:]}"
        expected = _expected_exit(cmd, r.output, demo_dir, before)
        assert r.exit_code == expected, \
            f"README: `{cmd}`: exit {r.exit_code}, its verdict says {expected}:\n{r.output[-3000:]}\n{r.exception!r}"
        exits[cmd] = r.exit_code
        ran.append(cmd)
    with capsys.disabled():
        print(f"\nREADME: ran {len(ran)} commands, parsed only {len(skipped)}:")
        for cmd in ran:
            print(f"  ran ({seconds.get(cmd, 0):5.1f} s, exit {exits.get(cmd, 0)}): {cmd}")
        for cmd, why in skipped:
            print(f"  parsed only ({why}): {cmd}")
    assert len(ran) >= 15, ran
    for expect in ["edge-fgic bench runs/demo/export", "edge-fgic export -m runs/demo/qat/best.pt --target all -p int8",
                   "edge-fgic pipeline --out runs/demo --from export --until bench"]:
        assert expect in ran
    assert (demo_dir / "android_demo" / "app" / "src" / "main" / "assets" / "model.tflite").stat().st_size > 0
