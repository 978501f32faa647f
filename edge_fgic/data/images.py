"""Image loading that accepts what real datasets contain and fails with one clear line.

Real fine-grained datasets hold grayscale, CMYK, palette, RGBA and 16-bit files next to
ordinary RGB JPEGs (CUB and Stanford Dogs both do). Every reader goes through
:func:`load_rgb`, so all of them get the same conversions.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps

from ..errors import BadImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")
# Composite transparent pixels onto mid-grey: neutral after mean/std normalisation.
_BACKGROUND = (128, 128, 128)


# folders a dataset or a folder of photos may carry that hold no real images (macOS zip metadata)
SKIP_DIRS = frozenset({"__MACOSX"})


def is_image_file(path: str | os.PathLike) -> bool:
    """An image by its extension, and not hidden: dot-files, such as the AppleDouble ``._x.jpg`` that
    macOS writes beside every file on foreign disks, are skipped by every reader and by ``predict``."""
    name = os.path.basename(str(path))
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (sorted), skipping hidden files and hidden or metadata folders."""
    root = Path(folder)
    found = []
    for p in (root.rglob("*") if recursive else root.iterdir()):
        rel = p.relative_to(root).parts
        if any(part.startswith(".") or part in SKIP_DIRS for part in rel[:-1]):
            continue
        # a symlink to nowhere is listed too: the decode check then names it, rather than it vanishing
        if (p.is_file() or (p.is_symlink() and not p.exists())) and is_image_file(p):
            found.append(p)
    return sorted(found)


def skipped_summary(bad: Sequence[str], first: int = 3) -> str:
    """'N file(s): a: why; b: why; c: why (+ M more)' for a message that names what was skipped."""
    shown = "; ".join(bad[:first])
    return f"{len(bad)} file(s): {shown}" + (f" (+ {len(bad) - first} more)" if len(bad) > first else "")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (16-bit and float images are rescaled, alpha is composited)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if img.mode.startswith("I;16") else (float(arr.min()), float(arr.max()))
        arr = np.clip((arr - lo) / max(hi - lo, 1e-12) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, _BACKGROUND + (255,))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully and return an RGB image; raise :class:`BadImageError` naming the file."""
    try:
        with Image.open(path) as img:
            img.load()  # full decode: truncated files fail here, not later in a worker
            img = ImageOps.exif_transpose(img) or img
            return to_rgb(img)
    except FileNotFoundError:
        raise BadImageError(f"{path}: file not found; check the dataset path") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadImageError(
            f"{path}: cannot decode image ({exc}); replace or delete it, or pass --skip-bad-images"
        ) from None


def _check_one(path: str) -> str | None:
    try:
        load_rgb(path)
        return None
    except BadImageError as exc:
        return str(exc)


def _cache_file(paths: Sequence[str]) -> Path:
    h = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\0missing\n".encode())
    return cache_root() / "image_scan" / f"{h.hexdigest()[:32]}.json"


def cache_root() -> Path:
    """``$EDGE_FGIC_CACHE``, else ``~/.cache/edge_fgic``; without a home (HOME unset and no passwd entry,
    as in some containers) a per-user folder in the system temp dir. Caches are an optimisation: a
    read-only or corrupt one is ignored, never an error."""
    if os.environ.get("EDGE_FGIC_CACHE"):
        return Path(os.environ["EDGE_FGIC_CACHE"])
    try:
        return Path.home() / ".cache" / "edge_fgic"
    except (RuntimeError, KeyError):
        import tempfile
        return Path(tempfile.gettempdir()) / f"edge_fgic-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def find_bad_images(paths: Sequence[str | os.PathLike], progress: bool = True, label: str = "") -> list[str]:
    """Decode every image once and return the error lines of those that fail.

    The result is cached by (path, size, mtime), so a dataset is scanned once per change.
    """
    from ..progress import (
        track,  # local import: keeps data importable without rich at import time
    )

    paths = [str(p) for p in paths]
    cache = _cache_file(paths)
    if cache.exists():
        try:
            return list(json.loads(cache.read_text())["bad"])
        except (OSError, ValueError, KeyError):
            pass
    workers = min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(workers) as pool:
        results = list(
            track(pool.map(_check_one, paths), total=len(paths), description=f"checking images {label}".strip(),
                  enabled=progress)
        )
    bad = [r for r in results if r is not None]
    from ..fileio import write_json

    try:
        write_json(cache, {"n": len(paths), "bad": bad})
    except OSError:
        pass  # a read-only home must not break training
    return bad
