"""The embedded default: a procedurally generated, genuinely fine-grained dataset.

Every image shows the same object template -- a bird-like shape (body, head, tail) --
and the class is decided only by two small local parts: the mark on the wing and the
mark on the head, about 9 % and 5 % of the object's area (about 1 % of the image).
Everything a shortcut could use varies *within* each class: pose (rotation), scale,
position, object colour, mark colour, background colour and clutter, lighting gradient, blur and noise.
So a colour-histogram classifier stays near chance while a ConvNeXt must find the parts
(``tests/test_synthetic.py`` proves both).

The dataset is written once, deterministically from a seed, in ImageFolder layout, so
the demo goes through exactly the code path real data takes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..errors import UserError
from .registry import read_split

GENERATOR_VERSION = 1
WING_MARKS = ("stripes", "bars", "ring")  # on the body, ~9 % of the object's area (~1 % of the image)
HEAD_MARKS = ("dot", "crest")  # on the head, ~5 % of the object's area (~0.7 % of the image)
# Within-class nuisance ranges. Tuned so the demo's small ConvNeXt learns the parts in a few CPU
# minutes: mirrored poses (birds facing left) roughly halved the learning speed, so they are off.
NUISANCE = dict(clutter=(0, 4), length=(0.52, 0.62), rot=10, shift=0.4, mirror=False)
SS = 2  # supersampling factor: draw at 2x, downsample with antialiasing


@dataclass
class SyntheticConfig:
    seed: int = 0
    image_size: int = 64
    train_per_class: int = 300
    val_per_class: int = 50
    test_per_class: int = 40

    @property
    def classes(self) -> list[str]:
        return sorted(f"{w}_{h}" for w in WING_MARKS for h in HEAD_MARKS)  # ImageFolder order


def default_root() -> Path:
    return Path(os.environ.get("EDGE_FGIC_DATASETS", "datasets")) / "synthetic_fg"


# ----------------------------------------------------------------- drawing


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(r * 255), int(g * 255), int(b * 255)


def _random_colour(rng: np.random.Generator, sat=(0.2, 0.95), val=(0.25, 0.95)) -> tuple[int, int, int]:
    return _hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))


class _Frame:
    """Object coordinates (unit = body length, x towards the head) -> pixel coordinates."""

    def __init__(self, cx: float, cy: float, length: float, angle: float, mirror: bool):
        self.cx, self.cy, self.L = cx, cy, length
        self.c, self.s = math.cos(angle), math.sin(angle)
        self.m = -1.0 if mirror else 1.0

    def __call__(self, x: float, y: float) -> tuple[float, float]:
        x *= self.m
        return (self.cx + self.L * (x * self.c - y * self.s), self.cy + self.L * (x * self.s + y * self.c))

    def poly(self, pts) -> list[tuple[float, float]]:
        return [self(x, y) for x, y in pts]

    def ellipse(self, x0: float, y0: float, rx: float, ry: float, n: int = 40, rot: float = 0.0):
        cr, sr = math.cos(rot), math.sin(rot)
        return self.poly(
            [(x0 + rx * math.cos(t) * cr - ry * math.sin(t) * sr, y0 + rx * math.cos(t) * sr + ry * math.sin(t) * cr)
             for t in np.linspace(0, 2 * math.pi, n, endpoint=False)]
        )

    def px(self, d: float) -> float:
        return d * self.L


def _thick_line(draw: ImageDraw.ImageDraw, f: _Frame, p0, p1, width: float, fill) -> None:
    draw.line([f(*p0), f(*p1)], fill=fill, width=max(1, int(round(f.px(width)))))


def _draw_background(draw: ImageDraw.ImageDraw, size: int, rng: np.random.Generator) -> None:
    top, bottom = (np.array(_random_colour(rng, (0.0, 0.6), (0.2, 0.9))),
                   np.array(_random_colour(rng, (0.0, 0.6), (0.2, 0.9))))
    for y in range(size):
        c = top + (bottom - top) * (y / (size - 1))
        draw.line([(0, y), (size, y)], fill=tuple(int(v) for v in c))
    # clutter: leaves and stones in random colours (blobs only: thin strokes would mimic the marks)
    for _ in range(rng.integers(*NUISANCE['clutter'])):
        col = _random_colour(rng, (0.0, 0.9), (0.1, 1.0))
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(0.07, 0.16) * size  # larger than any mark, so clutter never forges one
        if rng.random() < 0.6:
            draw.ellipse([x - r, y - r * rng.uniform(0.4, 1), x + r, y + r * rng.uniform(0.4, 1)], fill=col)
        else:
            draw.rectangle([x - r, y - r / 2, x + r, y + r / 2], fill=col)


def _draw_object(draw: ImageDraw.ImageDraw, f: _Frame, body, mark, wing: str, head: str, rng) -> None:
    # template: tail, body, head, beak -- identical for every class
    draw.polygon(f.poly([(-0.38, 0.0), (-0.72, -0.16), (-0.64, 0.0), (-0.72, 0.16)]), fill=body)
    draw.polygon(f.ellipse(0.0, 0.0, 0.42, 0.22), fill=body)
    draw.polygon(f.ellipse(0.42, -0.16, 0.15, 0.15), fill=body)
    draw.polygon(f.poly([(0.54, -0.20), (0.72, -0.14), (0.55, -0.10)]), fill=mark)
    # leg stubs (template detail, not class evidence)
    _thick_line(draw, f, (0.05, 0.2), (0.08, 0.36), 0.025, mark)
    _thick_line(draw, f, (-0.08, 0.2), (-0.1, 0.36), 0.025, mark)

    # wing mark: centred on the body, about 9 % of the object's area for each variant
    jx, jy = rng.uniform(-0.03, 0.03, 2)
    w = 0.055
    if wing == "stripes":  # two bars along the body axis
        for dy in (-0.06, 0.06):
            _thick_line(draw, f, (-0.2 + jx, dy + jy), (0.14 + jx, dy + jy), w, mark)
    elif wing == "bars":  # three short bars across the body
        for dx in (-0.14, -0.03, 0.08):
            _thick_line(draw, f, (dx + jx, -0.1 + jy), (dx + jx, 0.1 + jy), w, mark)
    else:  # ring
        outer = f.ellipse(-0.03 + jx, jy, 0.13, 0.11)
        draw.polygon(outer, fill=mark)
        draw.polygon(f.ellipse(-0.03 + jx, jy, 0.13 - w * 1.25, 0.11 - w * 1.25), fill=body)

    # head mark: eye region, about 5 % of the object's area
    ex, ey = 0.46, -0.19
    if head == "dot":
        draw.polygon(f.ellipse(ex, ey, 0.08, 0.08), fill=mark)
    elif head == "eyestripe":
        _thick_line(draw, f, (ex - 0.16, ey), (ex + 0.09, ey), 0.05, mark)
    else:  # crest: a small plume on top of the head plus a tiny eye
        draw.polygon(f.poly([(0.33, -0.25), (0.26, -0.48), (0.48, -0.30)]), fill=mark)
        draw.polygon(f.ellipse(ex, ey, 0.02, 0.02), fill=mark)


def render(wing: str, head: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """Draw one image of class ``wing_head``; every nuisance factor comes from ``rng``."""
    big = size * SS
    img = Image.new("RGB", (big, big))
    draw = ImageDraw.Draw(img)
    _draw_background(draw, big, rng)
    # the whole object (tail tip to beak, crest to feet) stays inside the frame at any pose
    length = rng.uniform(*NUISANCE['length']) * big
    angle = math.radians(rng.uniform(-NUISANCE['rot'], NUISANCE['rot']))
    margin = 0.72 * length
    cx = big / 2 + NUISANCE['shift'] * rng.uniform(margin - big / 2, big / 2 - margin)
    cy = big / 2 + NUISANCE['shift'] * rng.uniform(0.5 * length - big / 2, big / 2 - 0.5 * length)
    f = _Frame(cx, cy, length, angle, mirror=bool(rng.integers(2)) and NUISANCE['mirror'])
    # any hue, light enough that the dark markings (as on real birds) always show
    body = _random_colour(rng, (0.15, 0.9), (0.6, 1.0))
    mark = _random_colour(rng, (0.0, 0.8), (0.0, 0.22))
    _draw_object(draw, f, body, mark, wing, head, rng)
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7)))
    # lighting: a random linear gradient of gain, then sensor noise
    arr = np.asarray(img, dtype=np.float32)
    gx, gy = rng.uniform(-0.35, 0.35, 2)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    gain = rng.uniform(0.7, 1.25) * (1 + gx * xx + gy * yy)
    arr = arr * gain[..., None] + rng.normal(0, rng.uniform(1, 6), arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


# ----------------------------------------------------------------- dataset


def _split_seed(seed: int, split: str, label: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, {"train": 0, "val": 1, "test": 2}[split], label])


def generate(root: str | Path | None = None, cfg: SyntheticConfig | None = None, progress: bool = True) -> Path:
    """Write the dataset to ``root`` (ImageFolder layout) unless an identical one is there.

    Written into a temporary folder and renamed into place, so an interrupted generation
    never leaves a partial dataset that looks complete.
    """
    from ..progress import track

    cfg = cfg or SyntheticConfig()
    root = Path(root) if root is not None else default_root()
    meta = {"generator": "edge-fgic synthetic_fg", "version": GENERATOR_VERSION, **asdict(cfg), "classes": cfg.classes}
    marker = root / "synthetic.json"
    if marker.exists():
        try:
            if json.loads(marker.read_text()) == meta:
                return root
        except ValueError:
            pass
        raise UserError(f"{root}: holds a different synthetic dataset; delete it or choose another path")
    if root.exists() and any(root.iterdir()):
        raise UserError(f"{root}: folder exists and is not a synthetic dataset; choose another path")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        jobs = [
            (split, label, name, n)
            for split, n in (("train", cfg.train_per_class), ("val", cfg.val_per_class), ("test", cfg.test_per_class))
            for label, name in enumerate(cfg.classes)
        ]
        total = sum(j[3] for j in jobs)

        def images():
            for split, label, name, n in jobs:
                out = tmp / split / name
                out.mkdir(parents=True, exist_ok=True)
                rng = np.random.default_rng(_split_seed(cfg.seed, split, label))
                wing, head = name.split("_")
                for i in range(n):
                    render(wing, head, rng, cfg.image_size).save(out / f"{name}_{i:04d}.png", optimize=False)
                    yield 1

        for _ in track(images(), total=total, description="generating synthetic dataset", enabled=progress):
            pass
        (tmp / "synthetic.json").write_text(json.dumps(meta, indent=2) + "\n")
        if root.exists():
            root.rmdir()
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


# ----------------------------------------------------------------- proof of fine-grainedness


def colour_histograms(paths: list[str], bins: int = 8) -> np.ndarray:
    """Global joint RGB histograms (``bins``^3, L1-normalised): all a shortcut classifier could use."""
    feats = np.empty((len(paths), bins**3), dtype=np.float32)
    for i, p in enumerate(paths):
        arr = np.asarray(Image.open(p).convert("RGB")).reshape(-1, 3).astype(np.int64) * bins // 256
        idx = (arr[:, 0] * bins + arr[:, 1]) * bins + arr[:, 2]
        feats[i] = np.bincount(idx, minlength=bins**3) / len(idx)
    return feats


def colour_histogram_baseline(root: str | Path, bins: int = 8, steps: int = 500, lr: float = 0.5) -> dict[str, float]:
    """Train multinomial logistic regression on colour histograms (train split), score on val.

    On a genuinely fine-grained dataset this stays near chance: colour carries no class.
    """
    root = Path(root)
    tr, va = read_split(f"imagefolder={root}", "train"), read_split(f"imagefolder={root}", "val")
    xtr, xva = colour_histograms([p for p, _ in tr.samples], bins), colour_histograms([p for p, _ in va.samples], bins)
    ytr, yva = np.array([y for _, y in tr.samples]), np.array([y for _, y in va.samples])
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xva = (xtr - mu) / sd, (xva - mu) / sd
    k = len(tr.classes)
    w, b = np.zeros((xtr.shape[1], k), np.float32), np.zeros(k, np.float32)
    onehot = np.eye(k, dtype=np.float32)[ytr]
    for _ in range(steps):  # full-batch gradient descent with a little L2
        z = xtr @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(xtr)
        w -= lr * (xtr.T @ g + 1e-3 * w)
        b -= lr * g.sum(0)
    acc = lambda x, y: float(100.0 * ((x @ w + b).argmax(1) == y).mean())  # noqa: E731
    return {"train_top1": acc(xtr, ytr), "val_top1": acc(xva, yva), "chance": 100.0 / k, "num_classes": k}
