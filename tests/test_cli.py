"""CLI wiring: each command runs through typer's CliRunner on tiny in-tmp data."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from typer.testing import CliRunner

from edge_fgic import cli
from edge_fgic.cli import app
from edge_fgic.errors import UserError
from edge_fgic.utils import resolve_device

runner = CliRunner()


def _ok(result):
    assert result.exit_code == 0, (f"exit {result.exit_code}\nstdout:\n{result.stdout}"
                                   f"\nstderr:\n{result.stderr}\n{result.exception!r}")
    return result


# ---------------------------------------------------------------- datasets


def test_datasets_lists_reader_kinds():
    out = _ok(runner.invoke(app, ["datasets"])).stdout
    for kind in ("imagefolder", "cub200", "stanford_dogs", "flowers102", "synthetic"):
        assert kind in out
    assert "ROOT/{train,val,test}/<class" in out  # the layout column, not eaten as markup

    rows = json.loads(_ok(runner.invoke(app, ["datasets", "--json"])).stdout)
    by_kind = {r["kind"]: r for r in rows}
    assert "folder" in by_kind["imagefolder"]["aliases"]
    assert "cub" in by_kind["cub200"]["aliases"]
    assert all(r["layout"] for r in rows)


def test_datasets_inspects_imagefolder(imagefolder):
    from PIL import Image

    root = imagefolder(splits={"train": 4, "val": 2}, size=(48, 40))  # no test/ folder
    Image.new("L", (30, 20), 7).save(root / "train" / "ant" / "gray.png")

    out = _ok(runner.invoke(app, ["datasets", str(root)])).stdout
    assert "3 (ant, bee, cat)" in out
    assert "—" in out  # the missing test split is a dash, not an error
    assert "13" in out and "4 / 4 / 5" in out  # train images, per-class min/med/max

    s = json.loads(_ok(runner.invoke(app, ["datasets", "--data", f"imagefolder={root}", "--json"])).stdout)
    assert s["kind"] == "imagefolder" and s["num_classes"] == 3 and s["classes"] == ["ant", "bee", "cat"]
    train, val, test = s["splits"]["train"], s["splits"]["val"], s["splits"]["test"]
    assert test is None
    assert (train["images"], val["images"]) == (13, 6)
    assert train["images_per_class"] == {"min": 4, "median": 4, "max": 5}
    assert train["width"] == {"min": 30, "median": 48, "max": 48}
    assert train["height"]["min"] == 20 and train["height"]["max"] == 40
    assert train["modes"] == {"RGB": 12, "L": 1}
    assert train["sampled"] == 13 and train["unreadable_headers"] == 0


def test_datasets_argument_and_option_must_agree(imagefolder):
    root = imagefolder()
    r = runner.invoke(app, ["datasets", str(root), "--data", str(root / "other")])
    assert r.exit_code == 2 and "two datasets" in r.stderr


# ---------------------------------------------------------------- eval


def test_eval_writes_report(imagefolder, tiny_checkpoint):
    root = imagefolder()
    ckpt = tiny_checkpoint(train_config={"data": f"imagefolder={root}"})

    # --data defaults to the dataset recorded in the checkpoint; --out to <ckpt dir>/eval-<split>
    out = _ok(runner.invoke(app, ["eval", "--model", str(ckpt), "--gradcam", "2", "--batch-size", "4",
                                  "--device", "cpu"])).stdout
    report = ckpt.parent / "eval-val"
    for name in ("metrics.json", "per_class.csv", "confused_pairs.csv", "confusion_matrix.png", "gradcam.png"):
        assert (report / name).is_file(), name
        assert name in out
    assert "top-1 accuracy" in out
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["split"] == "val" and metrics["n"] == 6

    # explicit --data / --split / --out
    dest = root.parent / "elsewhere"
    _ok(runner.invoke(app, ["eval", "-m", str(ckpt), "--data", str(root), "--split", "train", "--out", str(dest),
                            "--gradcam", "0"]))
    metrics = json.loads((dest / "metrics.json").read_text())
    assert metrics["split"] == "train" and metrics["n"] == 12
    assert not (dest / "gradcam.png").exists()


def test_eval_without_recorded_dataset_asks_for_data(tiny_checkpoint):
    ckpt = tiny_checkpoint()  # train_config has no "data"
    r = runner.invoke(app, ["eval", "--model", str(ckpt)])
    assert r.exit_code == 2
    assert r.stderr.strip().count("\n") == 0 and "pass --data" in r.stderr and str(ckpt) in r.stderr


# ---------------------------------------------------------------- help, entry point, helpers


@pytest.mark.parametrize("args", [[], ["datasets"], ["eval"], ["distill"], ["quantize"]])
def test_help(args):
    out = _ok(runner.invoke(app, [*args, "--help"])).stdout
    assert "Usage" in out
    if not args:
        for stage in ("datasets", "train", "eval", "distill", "quantize", "export"):
            assert stage in out
    if args == ["distill"]:
        for opt in ("--teacher", "--student", "--variant", "--kd-weight", "--temperature", "--feature-kd", "--resume"):
            assert opt in out
    if args == ["quantize"]:
        for opt in ("--mode", "--calib-size", "--signed", "--epochs", "--distill", "--resume"):
            assert opt in out
    if args == ["eval"]:
        for opt in ("--model", "--data", "--split", "--out", "--batch-size", "--device", "--gradcam",
                    "--skip-bad-images"):
            assert opt in out


def test_no_args_shows_help():
    r = runner.invoke(app, [])
    assert "Usage" in r.output and "datasets" in r.output


def test_main_prints_one_line_and_exit_code(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["datasets", str(tmp_path / "missing")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "missing" in err


def test_ctrl_c_is_one_line_exit_130(imagefolder, monkeypatch):
    import edge_fgic.data.summary as summary

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(summary, "summarize_dataset", interrupted)
    r = runner.invoke(app, ["datasets", str(imagefolder())])
    assert r.exit_code == 130
    assert r.stderr.strip() == "interrupted" and "Traceback" not in r.output
    assert cli._interrupted_message("train") == "interrupted; rerun with --resume to continue"


def test_resolve_device():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("CPU") == "cpu"
    with pytest.raises(UserError, match="--device tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda")
    else:
        with pytest.raises(UserError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_unexpected_exception_is_one_line_unless_debug(imagefolder, monkeypatch, capsys):
    """A bug is one line naming the command and the error (exit 3) for a user; --debug (anywhere on the
    line) or EDGE_FGIC_DEBUG=1 lets it propagate with its full traceback."""
    import edge_fgic.data.summary as summary

    def bug(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(summary, "summarize_dataset", bug)
    monkeypatch.setenv("EDGE_FGIC_DEBUG", "0")  # off, and restored after the test (main() sets it for --debug)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["datasets", str(imagefolder())])
    assert exit_info.value.code == 3
    assert "datasets: unexpected ZeroDivisionError: a bug" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):
        cli.main(["datasets", str(imagefolder("d2")), "--debug"])


def test_a_closed_pipe_exits_quietly(monkeypatch, capsys):
    """`edge-fgic predict ... | head`: the reader leaves; click's quiet exit 1, not a 'bug in edge-fgic' line."""
    import typer

    from edge_fgic import cli_support as cs
    app = typer.Typer(cls=cs.ErrorPolicyGroup)

    @app.command()
    def spew() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    @app.command()
    def other() -> None:
        pass

    monkeypatch.setattr(sys, "stdout", sys.stdout)  # click swaps in a wrapper that swallows the flush
    with pytest.raises(SystemExit) as ei:
        cs.run(app, ["spew"])
    assert ei.value.code == 1
    assert "bug" not in capsys.readouterr().err
