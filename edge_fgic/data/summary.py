"""What `edge-fgic datasets KIND=PATH` reports: classes, split sizes, class balance, image sizes.

Image sizes and modes come from the file headers of a sample of at most ``sample`` images
per split (PIL reads only the header on ``Image.open``), so this is fast even for big
datasets; it does not decode pixels (training and ``eval`` do, via ``find_bad_images``).
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from ..errors import UserError
from .datasets import SPLITS, DataSpec, SplitIndex, check_same_classes, parse_data_spec, read_split

SAMPLE_PER_SPLIT = 200


def _min_med_max(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    med = statistics.median(values)
    return {"min": min(values), "median": int(med) if float(med).is_integer() else float(med), "max": max(values)}


def _header_stats(paths: Sequence[str], sample: int, seed: int) -> dict[str, Any]:
    """Width/height/mode/format of a deterministic sample, from headers only."""
    chosen = sorted(random.Random(seed).sample(list(paths), sample)) if len(paths) > sample else list(paths)
    widths: list[int] = []
    heights: list[int] = []
    modes: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    unreadable: list[str] = []
    for p in chosen:
        try:
            with Image.open(p) as im:  # lazy: reads the header, not the pixels
                w, h = im.size
                modes[im.mode] += 1
                formats[im.format or "?"] += 1
        except Exception:  # noqa: BLE001 - any header failure is reported, never raised
            unreadable.append(p)
            continue
        widths.append(w)
        heights.append(h)
    return {
        "sampled": len(chosen),
        "width": _min_med_max(widths),
        "height": _min_med_max(heights),
        "modes": dict(modes.most_common()),
        "formats": dict(formats.most_common()),
        "unreadable_headers": len(unreadable),
        "unreadable_examples": unreadable[:3],
    }


def _split_exists(spec: DataSpec, split: str) -> bool:
    if split not in spec.reader.splits:
        return False
    if spec.kind == "imagefolder":  # the one layout where a split is optional (e.g. no test/)
        where = spec.path / split
        if where.exists() and not where.is_dir():
            raise UserError(f"{where}: is a file where the {split!r} split folder belongs "
                            f"(ImageFolder layout: ROOT/{{train,val,test}}/<class>/<image>); move it away")
        return where.is_dir()
    return True


def _where(spec: DataSpec, split: str) -> str:
    return str(spec.path / split) if spec.kind == "imagefolder" else f"{spec} (split {split})"


def summarize_dataset(data: str | Path | DataSpec, sample: int = SAMPLE_PER_SPLIT, seed: int = 0,
                      verify: bool = False, progress: bool = False) -> dict[str, Any]:
    """Inspect a dataset; a split the dataset lacks is ``None`` (not an error).

    ``verify``: decode every image of every split (not only headers) and list the ones that fail
    under ``splits[split]["bad_images"]`` ("path: reason"; truncated, undecodable, not an image).

    Raises :class:`~edge_fgic.errors.UserError` for a missing path, an unknown kind, a layout
    with no split at all, empty class folders, or splits whose class lists differ from train.
    """
    spec = parse_data_spec(data)
    reader = spec.reader
    indexes: dict[str, SplitIndex] = {}
    for split in SPLITS:
        if _split_exists(spec, split):
            indexes[split] = read_split(spec, split)
    if not indexes:
        read_split(spec, "train")  # raises the layout error that names the missing folder
    if "train" in indexes:
        for split, index in indexes.items():
            if split != "train":
                check_same_classes(indexes["train"], index, where=_where(spec, split))
    first = indexes.get("train") or next(iter(indexes.values()))
    splits: dict[str, Any] = {}
    for split in SPLITS:
        index = indexes.get(split)
        if index is None:
            splits[split] = None
            continue
        per_class = Counter(y for _, y in index.samples)
        counts = [per_class.get(k, 0) for k in range(len(index.classes))]
        splits[split] = {
            "images": len(index.samples),
            "classes": len(index.classes),
            "classes_without_images": sum(1 for c in counts if c == 0),
            "images_per_class": _min_med_max(counts),
            "note": index.note,
            **_header_stats([p for p, _ in index.samples], sample, seed),
        }
        if verify:
            from .images import find_bad_images
            splits[split]["bad_images"] = find_bad_images([p for p, _ in index.samples], progress=progress, label=split)
    return {
        "data": str(spec),
        "kind": spec.kind,
        "path": str(spec.path),
        "layout": reader.description,
        "num_classes": len(first.classes),
        "classes": list(first.classes),
        "splits": splits,
        "sample_per_split": sample,
        "verified": verify,
    }
