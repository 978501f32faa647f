"""Bad input never shows a traceback: exit code != 0 and ONE stderr line naming the file at fault.

Plus the image-mode conversions every reader relies on (``load_rgb``).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from edge_fgic.cli import app
from edge_fgic.data.images import load_rgb
from edge_fgic.models import create_model

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def assert_one_line_error(result, *must_name: object, exit_code: int = 2) -> str:
    """Exit ``exit_code`` (2: the user's input; 1: the disk refused a write; never 3, a bug shown as one line),
    exactly one stderr line that names ``must_name``, no traceback anywhere."""
    assert result.exception is None or isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert result.exit_code == exit_code, (result.exit_code, result.stderr)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for name in must_name:
        assert str(name) in lines[0], f"{name} not in {lines[0]!r}"
    return lines[0]


def start_subprocess(*args: str, cwd: Path) -> subprocess.Popen:
    """``python -m edge_fgic ARGS`` (the real entry point), started without waiting."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "edge_fgic", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


# ---------------------------------------------------------------- dataset paths and layouts


def test_missing_dataset_path(tmp_path, tiny_checkpoint):
    missing = tmp_path / "no_such_dataset"
    assert_one_line_error(runner.invoke(app, ["datasets", str(missing)]), missing)
    ckpt = tiny_checkpoint()
    assert_one_line_error(runner.invoke(app, ["eval", "-m", str(ckpt), "--data", f"cub200={missing}"]), missing)


def test_folder_without_split_folders(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    assert_one_line_error(runner.invoke(app, ["datasets", str(root)]), root / "train", "no split folders")
    Image.new("RGB", (8, 8)).save(root / "img.jpg")  # images, but not in ROOT/<split>/<class>/
    assert_one_line_error(runner.invoke(app, ["datasets", str(root)]), root / "train")


def test_split_without_class_folders(tmp_path):
    (tmp_path / "d" / "train").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "d" / "train" / "img.jpg")
    assert_one_line_error(runner.invoke(app, ["datasets", str(tmp_path / "d")]), tmp_path / "d" / "train",
                          "no class folders")


def test_empty_class_folder(imagefolder):
    root = imagefolder()
    (root / "train" / "dog").mkdir()
    (root / "train" / "dog" / "notes.txt").write_text("not an image")
    assert_one_line_error(runner.invoke(app, ["datasets", str(root)]), root / "train" / "dog", "no images")


def test_unknown_dataset_kind(tmp_path, tiny_checkpoint):
    line = assert_one_line_error(runner.invoke(app, ["datasets", f"inaturalist={tmp_path}"]), "inaturalist")
    assert "known kinds" in line and "imagefolder" in line
    ckpt = tiny_checkpoint()
    assert_one_line_error(runner.invoke(app, ["eval", "-m", str(ckpt), "--data", f"inaturalist={tmp_path}"]),
                          "inaturalist")


# ---------------------------------------------------------------- undecodable images


def _plant_bad_images(root: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    good = root / "val" / "ant" / "good.jpg"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good, quality=90)
    data = good.read_bytes()
    good.unlink()
    truncated = root / "val" / "ant" / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = root / "val" / "bee" / "corrupt.jpg"
    corrupt.write_bytes(b"this is not a jpeg at all" * 10)
    return truncated, corrupt


def test_corrupt_and_truncated_images(imagefolder, tiny_checkpoint):
    root = imagefolder()
    truncated, corrupt = _plant_bad_images(root)
    ckpt = tiny_checkpoint()
    args = ["eval", "-m", str(ckpt), "--data", str(root), "--gradcam", "0", "--out", str(root.parent / "report")]

    line = assert_one_line_error(runner.invoke(app, args), root, truncated, corrupt, "2 unreadable image(s)")
    assert "--skip-bad-images" in line

    ok = runner.invoke(app, [*args, "--skip-bad-images"])
    assert ok.exit_code == 0, ok.output
    metrics = json.loads((root.parent / "report" / "metrics.json").read_text())
    assert metrics["n"] == 6  # 2 good images per class; the 2 bad ones are left out


# ---------------------------------------------------------------- class lists


def test_val_classes_differ_from_checkpoint(imagefolder, tiny_checkpoint):
    root = imagefolder(classes=("ant", "bee", "wasp"))
    ckpt = tiny_checkpoint(classes=("ant", "bee", "cat"))
    line = assert_one_line_error(runner.invoke(app, ["eval", "-m", str(ckpt), "--data", str(root)]), root,
                                 "'cat'", "'wasp'")
    assert "differ" in line

    root4 = imagefolder(name="four", classes=("ant", "bee", "cat", "dog"))  # superset: different count too
    assert_one_line_error(runner.invoke(app, ["eval", "-m", str(ckpt), "--data", str(root4)]), root4, "'dog'")


def test_val_classes_differ_from_train(imagefolder):
    root = imagefolder(splits={"train": 2})
    imagefolder(classes=("ant", "bee"), splits={"val": 1})  # same root: val lacks "cat"
    line = assert_one_line_error(runner.invoke(app, ["datasets", str(root)]), root / "val", "'cat'")
    assert "class list differs" in line


# ---------------------------------------------------------------- not-a-checkpoint files


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _plain_state_dict(path: Path) -> None:
    torch.save(create_model("convnext_atto", 3, depths=(1, 1, 1, 1), dims=(8, 16, 32, 64)).state_dict(), path)


def _arbitrary_pickle(path: Path) -> None:
    with open(path, "wb") as fh:
        pickle.dump(argparse.Namespace(lr=0.1, note="not a model"), fh)


def _arbitrary_torch_save(path: Path) -> None:
    torch.save({"config": argparse.Namespace(lr=0.1)}, path)


def _text_file(path: Path) -> None:
    path.write_text("hello, I am a text file\n" * 20)


@pytest.mark.parametrize(
    "make", [_random_bytes, _plain_state_dict, _arbitrary_pickle, _arbitrary_torch_save, _text_file],
    ids=lambda f: f.__name__[1:],
)
def test_non_checkpoint_model_file(tmp_path, imagefolder, make):
    root = imagefolder()
    bad = tmp_path / "model.pt"
    make(bad)
    line = assert_one_line_error(runner.invoke(app, ["eval", "--model", str(bad), "--data", str(root)]), bad)
    if make is _plain_state_dict:
        assert "plain state_dict" in line


@pytest.mark.slow  # fresh interpreters importing torch
def test_errors_through_python_m(tmp_path, imagefolder):
    """Two errors through `python -m edge_fgic` (run side by side): one plain stderr line, exit 2."""
    root = imagefolder()
    _random_bytes(tmp_path / "random.pt")
    missing = start_subprocess("datasets", "--data", "missing_dir", cwd=tmp_path)
    not_ckpt = start_subprocess("eval", "--model", "random.pt", "--data", str(root), cwd=tmp_path)
    results = [(p, *p.communicate(timeout=120)) for p in (missing, not_ckpt)]
    for proc, _out, err in results:
        assert proc.returncode == 2, err
        assert "Traceback" not in err
        assert len(err.splitlines()) == 1, err

    assert results[0][2].splitlines() == [
        "error: missing_dir: dataset path does not exist; check --data (expected imagefolder=PATH)"
    ]
    line = results[1][2].strip()
    assert line.startswith("error: random.pt: ") and "checkpoint" in line


def test_missing_checkpoint(tmp_path, imagefolder):
    assert_one_line_error(runner.invoke(app, ["eval", "-m", str(tmp_path / "nope.pt"), "--data", str(imagefolder())]),
                          "nope.pt")


def test_checkpoint_weights_do_not_match_model(imagefolder, tiny_checkpoint):
    other = create_model("convnext_atto", 3, depths=(1, 1, 1, 1), dims=(16, 32, 64, 128)).state_dict()
    ckpt = tiny_checkpoint(name="mismatch.pt", state_dict=other)
    line = assert_one_line_error(runner.invoke(app, ["eval", "-m", str(ckpt), "--data", str(imagefolder())]), ckpt)
    assert "weights do not match" in line


# ---------------------------------------------------------------- image modes -> RGB uint8


def _rgb(path: Path) -> np.ndarray:
    img = load_rgb(path)
    assert img.mode == "RGB"
    arr = np.asarray(img)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    return arr


def test_grayscale_loads_as_rgb(tmp_path):
    Image.new("L", (6, 4), 200).save(tmp_path / "g.png")
    arr = _rgb(tmp_path / "g.png")
    assert arr.shape == (4, 6, 3) and (arr == 200).all()


def test_cmyk_loads_as_rgb(tmp_path):
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(tmp_path / "white.jpg", quality=95)  # no ink = white
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "red.jpg", quality=95)
    assert _rgb(tmp_path / "white.jpg").min() >= 250
    red = _rgb(tmp_path / "red.jpg").reshape(-1, 3).mean(axis=0)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_rgba_composites_alpha(tmp_path):
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    img.putpixel((0, 0), (0, 0, 255, 255))  # one opaque blue pixel
    img.save(tmp_path / "a.png")
    arr = _rgb(tmp_path / "a.png")
    assert tuple(arr[0, 0]) == (0, 0, 255)
    assert tuple(arr[3, 3]) == (128, 128, 128)  # transparent -> neutral grey, not the hidden red


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (4, 4), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    img.putpixel((1, 1), 1)
    img.save(tmp_path / "p.png", transparency=0)
    assert Image.open(tmp_path / "p.png").mode == "P"
    arr = _rgb(tmp_path / "p.png")
    assert tuple(arr[1, 1]) == (0, 255, 0)
    assert tuple(arr[0, 0]) == (128, 128, 128)  # transparent palette index -> grey


def test_16bit_png_scales_to_8bit(tmp_path):
    arr16 = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(arr16).save(tmp_path / "w16.png")
    assert Image.open(tmp_path / "w16.png").mode.startswith("I")
    arr = _rgb(tmp_path / "w16.png")
    assert tuple(arr[0, :, 0]) == (0, 128, 255)  # 16-bit white -> 255
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
