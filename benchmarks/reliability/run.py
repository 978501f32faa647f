#!/usr/bin/env python3
"""Reliability suite (issue 15): build a corpus of broken inputs, run every edge-fgic command on it, classify each run.

    .venv/bin/python benchmarks/reliability/run.py [--out DIR] [--jobs N] [--only SUBSTRING]

Writes benchmarks/reliability/results.json and benchmarks/reliability.md.

Every case declares what it expects of each run:
  succeed    exit 0
  skip-warn  exit 0 and a "warning" / "skipped" line naming what was left out (--skip-bad-images)
  refuse     exit != 0 with a clean error
  either     exit 0, or a clean error (the input is odd but legitimate either way)
and every run is classified as
  ok             the expectation held (succeed / skip-warn / either with exit 0)
  clean error    exit != 0, stderr's only line starts with "error:" (or, for reports such as
                 `datasets --verify`, the bad file is named and no traceback), as expected
  traceback      "Traceback" in stderr
  unclean error  exit != 0, no traceback, but stderr is not one "error:" line
  wrong outcome  exit 0 where it should have refused, refused a valid input, a failed extra check
                 (wrong image count, a pickle payload that ran, ...), or a hang (timeout)
and, independently, flagged with leftovers: new hidden files/folders (.*.tmp, .export-*, .edge-fgic.lock, ...),
*.part / *.tmp files, or an output folder that a failed command created.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import io
import json
import os
import pickle
import platform
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PY = sys.executable
TINY = "model_kwargs={depths: [1,1,1,1], dims: [8,16,32,64]}"
TINY_B = "model_kwargs={depths: [1,1,1,1], dims: [16,16,32,32]}"
TRAIN_COMMON = ["--input-size", "32", "--epochs", "1", "--batch-size", "8", "--workers", "0",
                "--set", "gradcam=0", "--device", "cpu"]
ENV = dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1", COLUMNS="200", TERM="dumb")
ENV.pop("EDGE_FGIC_DEBUG", None)


# --------------------------------------------------------------------------------------------------- data model
@dataclass
class Run:
    args: list[str]                      # after `python -m edge_fgic`
    expect: str                          # succeed | skip-warn | refuse | either
    # output folder/file the command would create (leftover if a failure creates it)
    out: Path | None = None
    watch: list[Path] = field(default_factory=list)  # folders scanned for leftovers (the case folder is always scanned)
    check: Callable[[subprocess.CompletedProcess], str | None] | None = None  # extra check -> problem or None
    # for refuse: a non-zero exit with this text in the output and no traceback is clean
    report_ok: str | None = None
    timeout: float = 90
    kill_after: str | float | None = None  # SIGKILL: seconds, or a text to wait for on stdout/stderr, then kill
    note: str = ""


@dataclass
class Case:
    name: str
    group: str
    build: Callable[[Path], list[Run]]
    what: str = ""


# --------------------------------------------------------------------------------------------------- helpers
def rng(seed=0):
    return np.random.default_rng(seed)


def make_dataset(root: Path, classes=6, per=(4, 2, 2), seed=0) -> Path:
    r = rng(seed)
    for split, n in zip(("train", "val", "test"), per):
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = (r.random((32, 32, 3)) * 60 + c * 30).astype("uint8")
                Image.fromarray(a).save(d / (f"{i}.png" if i % 2 else f"{i}.jpg"))
    return root


def jpeg_bytes(mode="RGB", size=(32, 32), **kw) -> bytes:
    b = io.BytesIO()
    img = Image.fromarray((rng(1).random((size[1], size[0], 3)) * 255).astype("uint8")).convert(mode)
    img.save(b, format="JPEG", **kw)
    return b.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(w=60000, h=60000) -> bytes:
    """A valid PNG header claiming 3.6 G pixels (PIL's DecompressionBombError threshold is 2 x 89 M)
    with a tiny body."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit grayscale
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def image_bytes(kind: str) -> tuple[bytes, str]:
    """(bytes, file name) of one image of the corpus."""
    r = rng(2)
    good_png = io.BytesIO()
    Image.fromarray((r.random((32, 32, 3)) * 255).astype("uint8")).save(good_png, format="PNG")
    gp = good_png.getvalue()
    b = io.BytesIO()
    if kind == "truncated-jpeg":
        j = jpeg_bytes(size=(64, 64))
        return j[: len(j) // 3], "bad.jpg"
    if kind == "truncated-png":
        return gp[: len(gp) // 2], "bad.png"
    if kind == "zero-bytes":
        return b"", "bad.jpg"
    if kind == "random-bytes":
        return r.bytes(2048), "bad.png"
    if kind == "text-as-jpg":
        return b"this is not an image, it is a text file\n" * 20, "bad.jpg"
    if kind == "html-as-png":
        return b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n", "bad.png"
    if kind == "decompression-bomb":
        return bomb_png(), "bad.png"
    if kind == "png-named-jpg":
        return gp, "odd.jpg"
    if kind == "jpeg-named-png":
        return jpeg_bytes(), "odd.png"
    if kind == "cmyk-jpeg":
        return jpeg_bytes("CMYK"), "odd.jpg"
    if kind == "16-bit-png":
        Image.fromarray((r.random((32, 32)) * 65535).astype("uint16")).save(b, format="PNG")  # mode I;16
        return b.getvalue(), "odd.png"
    if kind == "palette-png":
        Image.open(io.BytesIO(gp)).convert("P", palette=Image.Palette.ADAPTIVE).save(b, format="PNG", transparency=0)
        return b.getvalue(), "odd.png"
    if kind == "rgba-png":
        Image.fromarray((r.random((32, 32, 4)) * 255).astype("uint8"), "RGBA").save(b, format="PNG")
        return b.getvalue(), "odd.png"
    if kind == "grayscale-jpeg":
        return jpeg_bytes("L"), "odd.jpg"
    if kind == "1x1":
        Image.new("RGB", (1, 1), (200, 10, 10)).save(b, format="PNG")
        return b.getvalue(), "odd.png"
    if kind == "exif-rotated":
        img = Image.fromarray((r.random((32, 64, 3)) * 255).astype("uint8"))
        ex = Image.Exif()
        ex[0x0112] = 6  # Orientation: rotate 90 CW
        img.save(b, format="JPEG", exif=ex.tobytes())
        return b.getvalue(), "odd.jpg"
    if kind == "extreme-aspect":
        Image.fromarray((r.random((2, 4000, 3)) * 255).astype("uint8")).save(b, format="PNG")
        return b.getvalue(), "odd.png"
    if kind == "animated-gif":
        frames = [Image.fromarray((r.random((32, 32, 3)) * 255).astype("uint8")).convert("P") for _ in range(3)]
        frames[0].save(b, format="GIF", save_all=True, append_images=frames[1:])
        return b.getvalue(), "odd.gif"
    if kind == "16-bit-rgb-tiff":
        Image.fromarray((r.random((32, 32)) * 65535).astype("uint16")).save(b, format="TIFF")
        return b.getvalue(), "odd.tif"
    raise KeyError(kind)


BAD_IMAGES = ["truncated-jpeg", "truncated-png", "zero-bytes", "random-bytes", "text-as-jpg", "html-as-png",
              "decompression-bomb"]
ODD_IMAGES = ["png-named-jpg", "jpeg-named-png", "cmyk-jpeg", "16-bit-png", "palette-png", "rgba-png",
              "grayscale-jpeg", "1x1", "exif-rotated", "extreme-aspect", "animated-gif", "16-bit-rgb-tiff"]


def jsonl_count(path: Path, want: int) -> Callable[[subprocess.CompletedProcess], str | None]:
    def check(_p):
        if not path.is_file():
            return f"{path.name} not written"
        n = sum(1 for line in path.read_text().splitlines() if line.strip())
        return None if n == want else f"{path.name} has {n} predictions, expected {want}"
    return check


def not_exists(path: Path, what: str) -> Callable[[subprocess.CompletedProcess], str | None]:
    return lambda _p: f"{what} ({path} exists)" if path.exists() else None


def fs_snapshot(dirs: list[Path]) -> set[str]:
    seen: set[str] = set()
    for d in dirs:
        if not d.exists():
            continue
        for dp, dns, fns in os.walk(d, followlinks=False):
            for n in dns + fns:
                seen.add(os.path.join(dp, n))
    return seen


def is_leftover(p: str) -> bool:
    name = os.path.basename(p)
    return (name.startswith(".") or name.endswith((".part", ".tmp", ".partial", ".lock")) or ".export-" in name)


# --------------------------------------------------------------------------------------------------- setup
class S:  # shared artifacts, filled by setup()
    data: Path
    run_a: Path
    run_b: Path
    onnx: Path
    onnx_b: Path
    tflite: Path | None


def sh(args: list[str], timeout=300) -> subprocess.CompletedProcess:
    p = subprocess.run([PY, "-m", "edge_fgic", *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise SystemExit(f"setup failed: edge-fgic {' '.join(args)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p


def setup(root: Path, with_tflite=True) -> None:
    S.data = make_dataset(root / "setup" / "data")
    S.data_b = make_dataset(root / "setup" / "data_b", classes=4, seed=5)
    S.run_a, S.run_b = root / "setup" / "run_a", root / "setup" / "run_b"
    with cf.ThreadPoolExecutor(2) as ex:
        fa = ex.submit(sh, ["train", "--data", str(S.data), "--set", TINY, *TRAIN_COMMON, "--no-eval",
                            "--out", str(S.run_a)])
        fb = ex.submit(sh, ["train", "--data", str(S.data_b), "--set", TINY_B, *TRAIN_COMMON, "--no-eval",
                            "--out", str(S.run_b)])
        fa.result(), fb.result()
        e = [ex.submit(sh, ["export", "-m", str(S.run_a / "best.pt"), "--out", str(root / "setup" / "exp_a"),
                            "--threads", "1"]),
             ex.submit(sh, ["export", "-m", str(S.run_b / "best.pt"), "--out", str(root / "setup" / "exp_b"),
                            "--threads", "1"])]
        if with_tflite:
            e.append(ex.submit(sh, ["export", "-m", str(S.run_a / "best.pt"), "--target", "tflite",
                                    "--out", str(root / "setup" / "exp_tfl"), "--threads", "1"]))
        for f in e:
            f.result()
    S.onnx = next((root / "setup" / "exp_a").glob("*.onnx"))
    S.onnx_b = next((root / "setup" / "exp_b").glob("*.onnx"))
    S.tflite = next((root / "setup" / "exp_tfl").glob("*.tflite"), None) if with_tflite else None


def copy_artifact(src: Path, dst_dir: Path, sidecar=True) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / src.name
    shutil.copy2(src, dst)
    if sidecar and Path(str(src) + ".json").exists():
        shutil.copy2(str(src) + ".json", str(dst) + ".json")
    return dst


def predict(model: Path, *images, out: Path | None = None, extra=()) -> list[str]:
    a = ["predict", "-m", str(model), *map(str, images), "--show", "0", "--threads", "1", *extra]
    if out is not None:
        a += ["--out", str(out)]
    return a


def train(data: Path, out: Path, extra=(), tiny=TINY) -> list[str]:
    common = list(TRAIN_COMMON)
    if "--epochs" in extra:
        i = common.index("--epochs")
        del common[i:i + 2]
    return ["train", "--data", str(data), "--set", tiny, *common, "--no-eval", "--out", str(out), *extra]


# --------------------------------------------------------------------------------------------------- cases
def image_case(kind: str, bad: bool) -> Case:
    def build(d: Path) -> list[Run]:
        data = d / "data"
        shutil.copytree(S.data, data)
        blob, name = image_bytes(kind)
        target = data / "val" / "class0" / name
        target.write_bytes(blob)
        loose = d / name
        loose.write_bytes(blob)
        n_val = 12 + (0 if bad else 1)
        runs = [Run(["datasets", str(data), "--verify"], "refuse" if bad else "succeed",
                    report_ok=name if bad else None)]
        if bad:
            runs.append(Run(predict(S.onnx, loose), "refuse"))
            runs.append(Run(predict(S.onnx, data / "val", out=d / "pred.jsonl", extra=["--skip-bad-images"]),
                            "skip-warn", check=jsonl_count(d / "pred.jsonl", 12)))
            runs.append(Run(["eval", "-m", str(S.run_a / "best.pt"), "--data", str(data), "--gradcam", "0",
                             "--out", str(d / "eval")], "refuse", out=d / "eval"))
        else:
            runs.append(Run(predict(S.onnx, data / "val", out=d / "pred.jsonl"), "succeed",
                            check=jsonl_count(d / "pred.jsonl", n_val)))
        return runs
    return Case(f"image/{kind}", "images", build, ("undecodable" if bad else "odd but valid") + f" image {kind}")


def ds_case(name: str, what: str, mutate: Callable[[Path], None], ds_expect: str, train_expect: str,
            ds_report: str | None = None, extra_runs: Callable[[Path, Path], list[Run]] | None = None) -> Case:
    def build(d: Path) -> list[Run]:
        data = d / "data"
        shutil.copytree(S.data, data, symlinks=True)
        mutate(data)
        runs = [Run(["datasets", str(data), "--verify"], ds_expect, report_ok=ds_report, timeout=60),
                Run(train(data, d / "run"), train_expect, out=d / "run", timeout=120)]
        if extra_runs:
            runs += extra_runs(d, data)
        return runs
    return Case(f"dataset/{name}", "datasets", build, what)


def _rm_files(p: Path):
    for f in p.iterdir():
        f.unlink()


def dataset_cases() -> list[Case]:
    def empty_class(data):
        _rm_files(data / "train" / "class5")

    def split_mismatch(data):
        shutil.rmtree(data / "val" / "class5")
        shutil.copytree(data / "val" / "class4", data / "val" / "class9")

    def no_images(data):
        for split in ("train", "val", "test"):
            for c in (data / split).iterdir():
                _rm_files(c)

    def file_for_split(data):
        shutil.rmtree(data / "train")
        (data / "train").write_text("not a folder\n")

    def file_for_class(data):
        shutil.rmtree(data / "train" / "class3")
        (data / "train" / "class3").write_bytes(b"\x89PNG not a folder")

    def symlink_loop(data):
        for split in ("train", "val"):
            os.symlink("..", data / split / "class0" / "loop")
            os.symlink(data / split, data / split / "class1" / "up")

    def hidden(data):
        for split in ("train", "val"):
            c = data / split / "class0"
            (c / ".DS_Store").write_bytes(os.urandom(512))
            (c / "._0.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble" + os.urandom(100))
            (data / split / ".hidden").mkdir()
            (data / split / ".hidden" / "x.jpg").write_bytes(b"junk")
            (c / "Thumbs.db").write_bytes(os.urandom(64))

    def no_splits(data):
        for c in (data / "train").iterdir():
            shutil.move(str(c), str(data / c.name))
        for s in ("train", "val", "test"):
            shutil.rmtree(data / s)

    def dangling(data):
        os.symlink("/nonexistent/image.jpg", data / "train" / "class0" / "gone.jpg")
        os.symlink("/nonexistent/image.jpg", data / "val" / "class0" / "gone.jpg")

    def unicode_names(data):
        os.rename(data / "train" / "class0", data / "train" / "clàss 0 ✓")
        os.rename(data / "val" / "class0", data / "val" / "clàss 0 ✓")
        os.rename(data / "test" / "class0", data / "test" / "clàss 0 ✓")
        (data / "train" / "class1" / "0.jpg").rename(data / "train" / "class1" / "ímage (1) ü.jpg")

    def only_train(data):
        shutil.rmtree(data / "val")
        shutil.rmtree(data / "test")

    def nonimage_ext(data):
        (data / "train" / "class0" / "notes.txt").write_text("labels are hard\n")
        (data / "train" / "class0" / "meta.json").write_text("{}")

    def loop_predict(d: Path, data: Path) -> list[Run]:
        return [Run(predict(S.onnx, data / "val", out=d / "pred.jsonl"), "succeed",
                    check=jsonl_count(d / "pred.jsonl", 12), timeout=60)]

    def hidden_predict(d: Path, data: Path) -> list[Run]:
        return [Run(predict(S.onnx, data / "val", out=d / "pred.jsonl"), "succeed",
                    check=jsonl_count(d / "pred.jsonl", 12))]

    def empty_predict(d: Path, data: Path) -> list[Run]:
        return [Run(predict(S.onnx, data / "val", out=d / "pred.jsonl"), "refuse", out=d / "pred.jsonl")]

    return [
        ds_case("empty-class", "train/class5 has no images", empty_class, "either", "refuse"),
        ds_case("split-class-mismatch", "val lacks class5 and has an extra class9", split_mismatch, "either", "refuse"),
        ds_case("no-images", "every class folder empty", no_images, "refuse", "refuse", extra_runs=empty_predict),
        ds_case("file-for-split", "train is a file, not a folder", file_for_split, "refuse", "refuse"),
        ds_case("file-for-class", "train/class3 is a file, not a folder", file_for_class, "either", "refuse"),
        ds_case("symlink-loops", "class0/loop -> .. and class1/up -> the split", symlink_loop, "either", "either",
                extra_runs=loop_predict),
        ds_case("hidden-files", ".DS_Store, ._0.jpg AppleDouble, .hidden/, Thumbs.db", hidden, "succeed", "succeed",
                extra_runs=hidden_predict),
        ds_case("no-splits", "class folders directly under the root (no train/val/test)", no_splits,
                "refuse", "refuse"),
        ds_case("dangling-symlink", "class0/gone.jpg -> /nonexistent", dangling, "refuse", "refuse",
                ds_report="gone.jpg"),
        ds_case("unicode-names", "class and file names with accents, spaces, emoji", unicode_names,
                "succeed", "succeed"),
        ds_case("only-train", "no val and no test split", only_train, "either", "either"),
        ds_case("non-image-files", "notes.txt and meta.json inside a class folder", nonimage_ext, "succeed", "succeed"),
        Case("dataset/missing-path", "datasets", lambda d: [
            Run(["datasets", str(d / "nope"), "--verify"], "refuse"),
            Run(train(d / "nope", d / "run"), "refuse", out=d / "run")], "the dataset path does not exist"),
        Case("dataset/unknown-kind", "datasets", lambda d: [
            Run(["datasets", f"nosuchkind={S.data}"], "refuse"),
            Run(train(Path(f"nosuchkind={S.data}"), d / "run"), "refuse", out=d / "run")], "--data nosuchkind=PATH"),
    ]


def artifact_cases() -> list[Case]:
    def mk(name, what, prep: Callable[[Path], Path], expect="refuse", bench=False, check_more=None) -> Case:
        def build(d: Path) -> list[Run]:
            art = prep(d)
            runs = [Run(predict(art, S.data / "val" / "class0", out=d / "pred.jsonl"), expect, out=d / "pred.jsonl",
                        check=check_more(d) if check_more else None)]
            if bench:
                runs.append(Run(["bench", str(art), "--data", str(S.data), "--runs", "10", "--max-images", "6",
                                 "--threads", "1", "--reference", str(S.run_a / "best.pt"), "--out", str(d / "bench")],
                                expect, timeout=120, report_ok="\u2717 ",
                                note="bench reports a failed artifact in its table, exit 1"))
            return runs
        return Case(f"artifact/{name}", "artifacts", build, what)

    def random_onnx(d, sidecar):
        a = copy_artifact(S.onnx, d / "a", sidecar=sidecar)
        a.write_bytes(os.urandom(a.stat().st_size))
        return a

    def truncated(src):
        def p(d):
            a = copy_artifact(src, d / "a")
            a.write_bytes(a.read_bytes()[: a.stat().st_size // 2])
            return a
        return p

    def zero(d):
        a = copy_artifact(S.onnx, d / "a")
        a.write_bytes(b"")
        return a

    def edited_sidecar(field_edit):
        def p(d):
            a = copy_artifact(S.onnx, d / "a")
            side = Path(str(a) + ".json")
            m = json.loads(side.read_text())
            field_edit(m)
            side.write_text(json.dumps(m, indent=2))
            return a
        return p

    def swap_classes(m):
        m["classes"] = list(reversed(m["classes"]))

    def edit_mean(m):
        m["input"]["mean"] = [0.0, 0.0, 0.0]

    def bad_json(d):
        a = copy_artifact(S.onnx, d / "a")
        Path(str(a) + ".json").write_text('{"schema": "edge-fgic/manifest", "classes": [')
        return a

    def no_sidecar(d):
        return copy_artifact(S.onnx, d / "a", sidecar=False)

    def edited_bytes(d):
        a = copy_artifact(S.onnx, d / "a")
        b = bytearray(a.read_bytes())
        for off in range(len(b) // 2, len(b) // 2 + 64):  # inside the weights
            b[off] ^= 0xFF
        a.write_bytes(bytes(b))
        return a

    def swap_sidecars(a, b):
        sa, sb = Path(str(a) + ".json"), Path(str(b) + ".json")
        ta, tb = sa.read_bytes(), sb.read_bytes()
        sa.write_bytes(tb)
        sb.write_bytes(ta)

    def swapped(d):
        a = copy_artifact(S.onnx, d / "a")
        swap_sidecars(a, copy_artifact(S.onnx_b, d / "b"))
        return a

    def swapped_b(d):
        swapped(d)
        return d / "b" / S.onnx_b.name

    def swapped_tfl(d):
        t = copy_artifact(S.tflite, d / "a")
        swap_sidecars(copy_artifact(S.onnx, d / "a"), t)
        return t

    def renamed_ext(d):
        a = copy_artifact(S.onnx, d / "a", sidecar=False)
        b = a.with_suffix(".bin")
        a.rename(b)
        return b

    def onnx_named_tflite(d):
        d.joinpath("a").mkdir(parents=True, exist_ok=True)
        t = d / "a" / "model.tflite"
        shutil.copy2(S.onnx, t)
        return t

    def missing(d):
        return d / "a" / "nothing.onnx"

    def folder_as_model(d):
        (d / "a" / "m.onnx").mkdir(parents=True)
        return d / "a" / "m.onnx"

    cases = [
        mk("random-bytes-no-sidecar", "random bytes in a .onnx, no manifest", lambda d: random_onnx(d, False)),
        mk("random-bytes-with-sidecar", "random bytes in a .onnx beside its real manifest",
           lambda d: random_onnx(d, True), bench=True),
        mk("truncated-onnx", "half of the .onnx", truncated(S.onnx)),
        mk("zero-bytes-onnx", "empty .onnx with its manifest", zero),
        mk("edited-sidecar-classes", "manifest's class list reversed", edited_sidecar(swap_classes)),
        mk("edited-sidecar-mean", "manifest's mean set to 0", edited_sidecar(edit_mean)),
        mk("sidecar-bad-json", "manifest is truncated JSON", bad_json),
        mk("sidecar-missing", "no <artifact>.json (the manifest is embedded in the ONNX)", no_sidecar, "succeed"),
        mk("edited-bytes", "64 bytes of weights flipped", edited_bytes, bench=True),
        mk("swapped-sidecars-a", "sidecars of two models' ONNX swapped; run model A", swapped),
        mk("swapped-sidecars-b", "sidecars of two models' ONNX swapped; run model B", swapped_b),
        mk("wrong-extension", "a .onnx renamed .bin", renamed_ext),
        mk("onnx-named-tflite", "ONNX bytes named .tflite", onnx_named_tflite),
        mk("missing-file", "the artifact does not exist", missing),
        mk("folder-named-onnx", "a folder named m.onnx", folder_as_model),
    ]
    if S.tflite is not None:
        cases += [
            mk("truncated-tflite", "half of the .tflite", truncated(S.tflite)),
            mk("swapped-sidecars-onnx-tflite", "the .onnx and .tflite manifests swapped; run the tflite", swapped_tfl),
        ]
    return cases


class Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def checkpoint_cases() -> list[Case]:
    def ck(name, what, prep: Callable[[Path], Path], extra: Callable[[Path], list[Run]] | None = None,
           check: Callable[[Path], Callable] | None = None) -> Case:
        def build(d: Path) -> list[Run]:
            pt = prep(d)
            c = check(d) if check else None
            runs = [Run(["eval", "-m", str(pt), "--data", str(S.data), "--gradcam", "0", "--out", str(d / "eval")],
                        "refuse", out=d / "eval", check=c),
                    Run(["export", "-m", str(pt), "--out", str(d / "export"), "--threads", "1"], "refuse",
                        out=d / "export", check=c),
                    Run(predict(pt, S.data / "val" / "class0"), "refuse", check=c)]
            if extra:
                runs += extra(d)
            return runs
        return Case(f"checkpoint/{name}", "checkpoints", build, what)

    def truncated(d):
        d.mkdir(parents=True, exist_ok=True)
        p = d / "best.pt"
        b = (S.run_a / "best.pt").read_bytes()
        p.write_bytes(b[: len(b) // 2])
        return p

    def zero(d):
        d.mkdir(parents=True, exist_ok=True)
        (d / "best.pt").write_bytes(b"")
        return d / "best.pt"

    def rand(d):
        d.mkdir(parents=True, exist_ok=True)
        (d / "best.pt").write_bytes(os.urandom(100_000))
        return d / "best.pt"

    def evil(d):
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "best.pt", "wb") as f:
            pickle.dump({"format": "edge-fgic/checkpoint", "x": Evil(str(d / "PWNED"))}, f)
        return d / "best.pt"

    def evil_zip(d):
        import torch
        d.mkdir(parents=True, exist_ok=True)
        torch.save({"format": "edge-fgic/checkpoint", "x": Evil(str(d / "PWNED"))}, d / "best.pt")
        return d / "best.pt"

    def state_dict(d):
        import torch
        d.mkdir(parents=True, exist_ok=True)
        torch.save({"w": torch.zeros(3)}, d / "best.pt")
        return d / "best.pt"

    def onnx_as_pt(d):
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy2(S.onnx, d / "best.pt")
        return d / "best.pt"

    def resume_truncated(d: Path) -> list[Run]:
        run = d / "resume"
        shutil.copytree(S.run_a, run)
        b = (run / "last.pt").read_bytes()
        (run / "last.pt").write_bytes(b[: len(b) // 2])
        return [Run(train(S.data, run, ["--resume"]), "refuse", timeout=120)]

    def pwned(d):
        return not_exists(d / "PWNED", "the pickle's payload ran")

    def other_model(d: Path) -> list[Run]:
        run = d / "resume"
        shutil.copytree(S.run_a, run)
        shutil.copy2(S.run_b / "last.pt", run / "last.pt")  # another model's last.pt (4 classes, other dims)
        return [
            Run(train(S.data, run, ["--resume"]), "refuse", timeout=120, note="last.pt of another model"),
            Run(["eval", "-m", str(S.run_b / "best.pt"), "--data", str(S.data), "--gradcam", "0",
                 "--out", str(d / "eval")],
                "refuse", out=d / "eval", note="4-class checkpoint on the 6-class dataset"),
            Run(["export", "-m", str(S.run_b / "best.pt"), "--data", str(S.data), "--out", str(d / "export"),
                 "--threads", "1"], "refuse", out=d / "export",
                note="4-class checkpoint proved on the 6-class dataset"),
            Run(["bench", str(S.onnx), "--reference", str(S.run_b / "best.pt"), "--data", str(S.data), "--runs", "10",
                 "--max-images", "6", "--threads", "1", "--out", str(d / "bench")], "refuse", timeout=120,
                note="reference checkpoint of another model"),
        ]

    return [
        ck("truncated", "best.pt cut in half", truncated, extra=resume_truncated),
        ck("zero-bytes", "empty best.pt", zero),
        ck("random-bytes", "100 kB of random bytes as best.pt", rand),
        ck("malicious-pickle", "a plain pickle whose __reduce__ runs `touch PWNED`", evil, check=pwned),
        ck("malicious-torch-save", "torch.save of an object whose __reduce__ runs `touch PWNED`", evil_zip,
           check=pwned),
        ck("plain-state-dict", "torch.save({'w': tensor})", state_dict),
        ck("onnx-named-pt", "an ONNX file named best.pt", onnx_as_pt),
        Case("checkpoint/another-model", "checkpoints", other_model,
             "last.pt / best.pt of a 4-class model with other dims"),
    ]


# ------------------------------------------------------------------------------ full disk (tmpfs)
MOUNTS: list[Path] = []


def tmpfs(d: Path, size="12k") -> Path | None:
    d.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True, text=True)
    if p.returncode != 0:
        return None
    MOUNTS.append(d)
    return d


class Skip(Exception):
    pass


def disk_cases() -> list[Case]:
    def need(d):
        m = tmpfs(d / "disk")
        if m is None:
            raise Skip("mount -t tmpfs failed (not root / no CAP_SYS_ADMIN)")
        return m

    def export_full(d):
        m = need(d)
        return [Run(["export", "-m", str(S.run_a / "best.pt"), "--out", str(m / "export"), "--threads", "1"], "refuse",
                    out=m / "export", watch=[m])]

    def export_full_root(d):
        m = need(d)
        return [Run(["export", "-m", str(S.run_a / "best.pt"), "--out", str(m), "--threads", "1"], "refuse", watch=[m])]

    def tflite_full(d):
        m = need(d)
        return [Run(["export", "-m", str(S.run_a / "best.pt"), "--target", "tflite", "--out", str(m / "export"),
                     "--threads", "1"], "refuse", out=m / "export", watch=[m])]

    def train_full(d):
        m = need(d)
        return [Run(train(S.data, m / "run"), "refuse", out=m / "run", watch=[m], timeout=120)]

    def train_full_resume(d):
        m = tmpfs(d / "disk", size="1200k")  # room for config + last.pt once, not for best.pt/last.pt of epoch 2
        if m is None:
            raise Skip("mount failed")
        return [Run(train(S.data, m / "run", ["--epochs", "3"]), "refuse", watch=[m], timeout=120,
                    note="tmpfs 1200k: fills up mid-training")]

    def predict_full(d):
        m = need(d)
        fd = os.open(m / "filler", os.O_WRONLY | os.O_CREAT)  # fill the tmpfs to the last byte
        try:
            while True:
                os.write(fd, b"\0" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)
        return [Run(predict(S.onnx, S.data / "val", out=m / "pred.jsonl"), "refuse", watch=[m])]

    def eval_full(d):
        m = need(d)
        return [Run(["eval", "-m", str(S.run_a / "best.pt"), "--gradcam", "0", "--out", str(m / "eval")], "refuse",
                    out=m / "eval", watch=[m])]

    def bench_full(d):
        m = need(d)
        return [Run(["bench", str(S.onnx), "--data", str(S.data), "--runs", "10", "--max-images", "6", "--threads", "1",
                     "--out", str(m / "bench")], "refuse", out=m / "bench", watch=[m], timeout=120)]

    return [
        Case("disk/export-full", "full disk", export_full, "export --out on a 12 kB tmpfs"),
        Case("disk/export-full-root", "full disk", export_full_root, "export --out = the 12 kB tmpfs itself"),
        Case("disk/export-tflite-full", "full disk", tflite_full, "TFLite export onto a 12 kB tmpfs"),
        Case("disk/train-full", "full disk", train_full, "train --out on a 12 kB tmpfs"),
        Case("disk/train-fills-midway", "full disk", train_full_resume, "train 3 epochs on a 1.2 MB tmpfs"),
        Case("disk/predict-out-full", "full disk", predict_full, "predict --out x.jsonl on a full tmpfs"),
        Case("disk/eval-full", "full disk", eval_full, "eval --out on a 12 kB tmpfs"),
        Case("disk/bench-full", "full disk", bench_full, "bench --out on a 12 kB tmpfs"),
    ]


# ------------------------------------------------------------------------------ SIGKILL, then rerun
def kill_cases() -> list[Case]:
    def k(name, what, make: Callable[[Path], tuple[list[str], list[str], Path]], kill_after, timeout=120) -> Case:
        def build(d: Path) -> list[Run]:
            first, again, out = make(d)
            return [Run(first, "killed", kill_after=kill_after, timeout=timeout, watch=[out]),
                    Run(again, "succeed", timeout=timeout, watch=[out], note="rerun after SIGKILL")]
        return Case(f"sigkill/{name}", "SIGKILL", build, what)

    def tr(d):
        a = train(S.data, d / "run", ["--epochs", "3"])
        return a, a + ["--resume"], d / "run"

    def tr_early(d):
        a = train(S.data, d / "run", ["--epochs", "2"])
        return a, a, d / "run"

    def ex(d):
        a = ["export", "-m", str(S.run_a / "best.pt"), "--out", str(d / "export"), "--threads", "1"]
        return a, a, d / "export"

    def ex_tfl(d):
        a = ["export", "-m", str(S.run_a / "best.pt"), "--target", "tflite", "--out", str(d / "export"),
             "--threads", "1"]
        return a, a, d / "export"

    def be(d):
        a = ["bench", str(S.onnx), "--data", str(S.data), "--runs", "10", "--max-images", "6", "--threads", "1",
             "--out", str(d / "bench")]
        return a, a, d / "bench"

    def ev(d):
        a = ["eval", "-m", str(S.run_a / "best.pt"), "--gradcam", "0", "--out", str(d / "eval")]
        return a, a, d / "eval"

    def pr(d):
        d.mkdir(parents=True, exist_ok=True)
        a = predict(S.onnx, S.data, out=d / "out" / "pred.jsonl")
        return a, a, d / "out"

    return [
        k("train-after-epoch-1", "kill -9 train after its first epoch line, rerun with --resume", tr, "epoch"),
        k("train-at-start", "kill -9 train 1.5 s in (before any checkpoint), rerun the same command", tr_early, 1.5),
        k("export-onnx", "kill -9 export 3 s in, rerun", ex, 3.0),
        k("export-tflite", "kill -9 TFLite export 5 s in, rerun", ex_tfl, 5.0),
        k("bench", "kill -9 bench 5 s in, rerun", be, 5.0),
        k("eval", "kill -9 eval 2.5 s in, rerun", ev, 2.5),
        k("predict", "kill -9 predict 2 s in, rerun", pr, 2.0),
    ]


# --------------------------------------------------------------------------------------------------- running
def one_error_line(stderr: str) -> str | None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if len(lines) == 1 and lines[0].startswith("error:"):
        return lines[0]
    return None


def execute(run: Run, case_dir: Path) -> dict:
    cmd = [PY, "-m", "edge_fgic", *run.args]
    watch = [case_dir, *run.watch]
    before = fs_snapshot(watch)
    out_existed = run.out.exists() if run.out else True
    t0 = time.monotonic()
    timed_out = False
    if run.kill_after is not None:
        proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        buf = []
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = t0 + (run.kill_after if isinstance(run.kill_after, (int, float)) else 60)
        while time.monotonic() < deadline and proc.poll() is None:
            for _k, _ in sel.select(timeout=0.1):
                line = proc.stdout.readline()
                buf.append(line)
                if isinstance(run.kill_after, str) and run.kill_after in line.lower():
                    deadline = 0
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        rest = proc.communicate()[0] or ""
        out = "".join(buf) + rest
        rc, stdout, stderr = proc.returncode, out, ""
        outcome = "killed" if killed else "finished before the kill"
        problem = None if killed else "finished before SIGKILL (kill point too late)"
    else:
        try:
            p = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=run.timeout)
            rc, stdout, stderr = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            timed_out = True
            rc, stdout, stderr = (None,
                                  (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""),
                                  (e.stderr or b"").decode() if isinstance(e.stderr, bytes) else (e.stderr or ""))
        problem = None
        cp = subprocess.CompletedProcess(cmd, rc, stdout, stderr)
        if timed_out:
            outcome, problem = "wrong outcome", f"hang: no exit within {run.timeout:.0f} s"
        elif "Traceback" in stderr or "Traceback" in stdout:
            outcome = "traceback"
        elif run.expect in ("succeed", "skip-warn", "either") and rc == 0:
            outcome = "ok"
            if run.expect == "skip-warn" and not any(w in (stderr + stdout).lower() for w in ("warning", "skipped")):
                outcome, problem = "wrong outcome", "exit 0 but no warning about the skipped input"
        elif rc == 0:  # expected refuse
            outcome, problem = "wrong outcome", "exit 0 where it should have refused"
        else:
            clean = one_error_line(stderr)
            if clean is None and run.report_ok and run.report_ok in (stdout + stderr):
                clean = "report: " + next((ln for ln in (stdout + stderr).splitlines() if run.report_ok in ln), "")
            if run.expect == "succeed" or run.expect == "skip-warn":
                outcome, problem = "wrong outcome", "refused a valid input"
                if clean is None:
                    problem += " (and not as one error: line)"
            elif clean is None:
                outcome = "unclean error"
            else:
                outcome = "clean error"
            if outcome in ("clean error", "unclean error") and "this is a bug in edge-fgic" in stderr:
                outcome, problem = ("unclean error",
                                    "the catch-all 'unexpected <Exception>' error (a bug by its own words)")
            elif outcome == "unclean error":
                problem = f"stderr has {len([x for x in stderr.splitlines() if x.strip()])} lines, not one error: line"
        if run.check and not timed_out and outcome != "traceback":
            extra = run.check(cp)
            if extra:
                outcome, problem = "wrong outcome", extra if not problem else f"{problem}; {extra}"
    wall = time.monotonic() - t0
    after = fs_snapshot(watch)
    new = sorted(after - before)
    left = [p for p in new if is_leftover(p)]
    if run.kill_after is None and rc not in (0, None) and run.out is not None and not out_existed and run.out.exists():
        inside = sorted(os.listdir(run.out)) if run.out.is_dir() else []
        left.append(f"{run.out} (output created by a failed command"
                    + (f"; holds {', '.join(inside[:6])}" if inside else ", empty") + ")")
    err = one_error_line(stderr) or next((ln for ln in reversed((stderr or stdout).splitlines()) if ln.strip()), "")
    return dict(args=run.args, expect=run.expect, rc=rc, outcome=outcome, problem=problem, wall_s=round(wall, 2),
                leftovers=[os.path.relpath(p, case_dir) if p.startswith(str(case_dir)) else p for p in left],
                error=err.strip(), note=run.note, stderr_tail=(stderr or stdout)[-3000:] if outcome in (
                    "traceback", "unclean error", "wrong outcome") else "")


def run_case(case: Case, root: Path) -> dict:
    d = root / "cases" / case.name.replace("/", "__")
    d.mkdir(parents=True, exist_ok=True)
    try:
        runs = case.build(d)
    except Skip as e:
        return dict(name=case.name, group=case.group, what=case.what, skipped=str(e), runs=[])
    except Exception as e:  # a bug of the suite, not of edge-fgic: report it, keep going
        return dict(name=case.name, group=case.group, what=case.what, skipped=f"suite error building the case: {e!r}",
                    runs=[])
    results = []
    for r in runs:
        res = execute(r, d)
        if r.kill_after is not None:
            res["leftovers_after_kill"] = res.pop("leftovers")
            res["leftovers"] = []
        results.append(res)
    # a rerun after SIGKILL: leftovers are what is still there after the rerun, against the state before the kill
    if runs and runs[0].kill_after is not None and len(results) > 1:
        final = [p for p in fs_snapshot([d, *runs[0].watch]) if is_leftover(p)]
        results[1]["leftovers"] = sorted({os.path.relpath(p, d) for p in final})
    return dict(name=case.name, group=case.group, what=case.what, runs=results)


def fmt_cmd(args: list[str], root: Path) -> str:
    s = "edge-fgic " + " ".join(a if " " not in a else repr(a) for a in args)
    s = s.replace(str(root) + "/", "")
    s = s.replace(TINY, "TINY").replace(TINY_B, "TINY_B")
    return s


def write_report(results: list[dict], root: Path, meta: dict) -> None:
    for c in results:  # scratch paths -> relative, so the report reads the same every run
        for r in c["runs"]:
            for k in ("error", "problem", "stderr_tail"):
                if r.get(k):
                    r[k] = r[k].replace(str(root) + "/", "")
            r["leftovers"] = [x.replace(str(root) + "/", "") for x in r["leftovers"]]
    (HERE / "results.json").write_text(json.dumps(dict(meta=meta, cases=results), indent=1, ensure_ascii=False))
    runs = [r for c in results for r in c["runs"]]
    cnt = lambda o: sum(1 for r in runs if r["outcome"] == o)
    n_left = sum(1 for r in runs if r["leftovers"])
    skipped = [c for c in results if c.get("skipped")]
    L = ["# Reliability suite (issue 15)", "",
         "Every command of edge-fgic on a corpus of broken inputs: undecodable and odd images, broken dataset trees, "
         "damaged or tampered artifacts, manifests and checkpoints, a full disk (tmpfs), SIGKILL then rerun. "
         "Each case declares what it expects of each run; the outcome is decided from the exit code and stderr.", "",
         f"- command: `{meta['command']}`",
         f"- machine: {meta['machine']}",
         f"- date: {meta['date']}, suite wall time {meta['wall_s']:.0f} s ({meta['jobs']} cases in parallel)",
         "- models: tiny ConvNeXt (`TINY` = `--set '" + TINY + "'`, 6 classes, 32 px, 1 epoch) and a 4-class "
         "`TINY_B` (`" + TINY_B + "`); ONNX" + (" + TFLite" if meta["tflite"] else "") + " exports of them. "
         "Paths below are relative to the suite's scratch folder (`setup/`, `cases/<case>/`).", "",
         "Outcomes: **ok** = expected success; **clean error** = expected refusal, exit != 0 and stderr is one "
         "`error:` line (for `datasets --verify`, which reports, the bad file named); **traceback**; "
         "**unclean error** = refusal without a traceback but not one `error:` line; **wrong outcome** = exit 0 "
         "where it should refuse, a refused valid input, a failed extra check (prediction count, pickle payload "
         "ran) or a hang; **leftovers** (counted apart) = new hidden / .tmp / .part / lock files or an output "
         "folder a failed command created.", "",
         "## Summary", "",
         "| cases | runs | ok | clean errors | tracebacks | unclean errors | wrong outcomes | killed (SIGKILL) "
         "| runs with leftovers |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
         f"| {len(results) - len(skipped)} | {len(runs)} | {cnt('ok')} | {cnt('clean error')} | {cnt('traceback')} | "
         f"{cnt('unclean error')} | {cnt('wrong outcome')} | {cnt('killed')} | {n_left} |", ""]
    if skipped:
        L += ["Skipped: " + "; ".join(f"`{c['name']}` ({c['skipped']})" for c in skipped), ""]
    groups = {}
    for c in results:
        groups.setdefault(c["group"], []).append(c)
    L += ["| group | cases | runs | ok | clean | traceback | unclean | wrong | leftovers |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for g, cs in groups.items():
        rs = [r for c in cs for r in c["runs"]]
        f = lambda o: sum(1 for r in rs if r["outcome"] == o)
        L.append(f"| {g} | {len(cs)} | {len(rs)} | {f('ok')} | {f('clean error')} | {f('traceback')} | "
                 f"{f('unclean error')} | {f('wrong outcome')} | {sum(1 for r in rs if r['leftovers'])} |")
    bad = [(c, r) for c in results for r in c["runs"] if r["outcome"] in ("traceback", "unclean error", "wrong outcome")
           or r["leftovers"]]
    L += ["", "## Findings (tracebacks, unclean errors, wrong outcomes, leftovers)", ""]
    if not bad:
        L.append("None.")
    for c, r in bad:
        L.append(f"- **{c['name']}** — {r['outcome']}" + (f": {r['problem']}" if r.get("problem") else "")
                 + (f"; leftovers: {', '.join('`%s`' % x for x in r['leftovers'])}" if r["leftovers"] else ""))
        L.append(f"  - `{fmt_cmd(r['args'], root)}`")
        if r["outcome"] != "ok" and r["error"]:
            L.append(f"  - last line: `{r['error'][:200]}`")
    L += ["", "## Every run", "", "| case | command | expected | outcome | rc | s | error line / note |",
          "|---|---|---|---|---:|---:|---|"]
    for c in results:
        for r in c["runs"]:
            msg = r.get("problem") or ""
            if r["error"] and r["outcome"] != "ok":
                msg = (msg + " — " if msg else "") + r["error"]
            if r.get("leftovers"):
                msg += (" — " if msg else "") + "LEFTOVERS: " + ", ".join(r["leftovers"])
            if r.get("leftovers_after_kill"):
                msg += (" — " if msg else "") + "after kill: " + ", ".join(os.path.basename(x)
                                                                          for x in r["leftovers_after_kill"])
            if r.get("note"):
                msg = f"({r['note']}) " + msg
            msg = msg.replace("|", "\\|").replace("\n", " ")
            if len(msg) > 160:
                msg = msg[:157] + "..."
            cmd = fmt_cmd(r["args"], root).replace("|", "\\|")
            L.append(f"| {c['name']} | `{cmd}` | {r['expect']} | {r['outcome']} | {r['rc']} | "
                     f"{r['wall_s']:.1f} | {msg} |")
        if c.get("skipped"):
            L.append(f"| {c['name']} | — | — | skipped | | | {c['skipped']} |")
    L += ["", "Raw results (with stderr tails of every non-clean run): `benchmarks/reliability/results.json`. "
          "Rerun: `.venv/bin/python benchmarks/reliability/run.py` (a scratch folder in /tmp, removed afterwards "
          "unless --out is given).", ""]
    (HERE.parent / "reliability.md").write_text("\n".join(L))


def machine() -> str:
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except Exception:
        pass
    import importlib.metadata as md
    vers = []
    for pkg in ("torch", "timm", "onnxruntime", "ai-edge-litert", "pillow"):
        try:
            vers.append(f"{pkg} {md.version(pkg)}")
        except Exception:
            pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} {platform.release()}, Python " \
           f"{platform.python_version()}, " + ", ".join(vers)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="scratch folder (default: a temp dir, removed afterwards)")
    ap.add_argument("--jobs", type=int, default=2, help="cases run in parallel")
    ap.add_argument("--only", default="", help="only cases whose name contains this")
    ap.add_argument("--no-tflite", action="store_true", help="skip the TFLite export and its cases")
    a = ap.parse_args()
    t0 = time.monotonic()
    root = a.out.resolve() if a.out else Path(tempfile.mkdtemp(prefix="edge-fgic-reliability-"))
    if a.out and root.exists() and any(root.iterdir()):
        print(f"error: {root} is not empty", file=sys.stderr)
        return 2
    root.mkdir(parents=True, exist_ok=True)
    print(f"scratch {root}", flush=True)
    try:
        setup(root, with_tflite=not a.no_tflite)
        print(f"setup done in {time.monotonic() - t0:.0f} s", flush=True)
        cases = ([image_case(k, True) for k in BAD_IMAGES] + [image_case(k, False) for k in ODD_IMAGES]
                 + dataset_cases() + artifact_cases() + checkpoint_cases() + disk_cases() + kill_cases())
        cases = [c for c in cases if a.only in c.name]
        order = {c.name: i for i, c in enumerate(cases)}
        # SIGKILL cases time their kill, so run them last, one at a time
        # SIGKILL cases first (the longest), in the same pool: their kill points are text or time based
        par = [c for c in cases if c.group == "SIGKILL"] + [c for c in cases if c.group != "SIGKILL"]
        ser = []
        results = []
        with cf.ThreadPoolExecutor(a.jobs) as ex:
            for fut in cf.as_completed([ex.submit(run_case, c, root) for c in par]):
                r = fut.result()
                results.append(r)
                print(f"{r['name']:45s} " + (r.get("skipped") or " ".join(
                    x["outcome"].replace(" ", "-") + ("+LEFTOVERS" if x["leftovers"] else "") for x in r["runs"])),
                      flush=True)
        for c in ser:
            r = run_case(c, root)
            results.append(r)
            print(f"{r['name']:45s} " + " ".join(
                x["outcome"].replace(" ", "-") + ("+LEFTOVERS" if x["leftovers"] else "") for x in r["runs"]),
                  flush=True)
        results.sort(key=lambda r: order[r["name"]])
        cmd = "python benchmarks/reliability/run.py" + (f" --out {a.out}" if a.out else "") + \
            (f" --only {a.only}" if a.only else "") + (" --no-tflite" if a.no_tflite else "")
        meta = dict(command=cmd, machine=machine(), date=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
                    wall_s=time.monotonic() - t0, jobs=a.jobs, tflite=not a.no_tflite, scratch=str(root))
        write_report(results, root, meta)
        runs = [r for c in results for r in c["runs"]]
        print(f"{len(results)} cases, {len(runs)} runs in {meta['wall_s']:.0f} s -> benchmarks/reliability.md")
        return 0
    finally:
        for m in reversed(MOUNTS):
            subprocess.run(["umount", "-l", str(m)], capture_output=True)
        if not a.out:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
