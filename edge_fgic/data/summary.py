"""What `edge-fgic datasets KIND=PATH` reports: classes, split sizes, class balance, image sizes,
and how the command prints it (the dataset kinds, or one dataset's tables).

Image sizes and modes come from the file headers of a sample of at most ``sample`` images
per split (PIL reads only the header on ``Image.open``), so this is fast even for big
datasets; it does not decode pixels (training and ``eval`` do, via ``find_bad_images``).
"""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from rich import box
from rich.table import Table
from rich.text import Text

from ..errors import UserError
from .datasets import (
    SPLITS,
    DataSpec,
    Reader,
    SplitIndex,
    check_same_classes,
    parse_data_spec,
    read_split,
)

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


# ---------------------------------------------------------------- edge-fgic datasets


@dataclass
class DatasetsConfig:
    data: str              # KIND=PATH, or an ImageFolder PATH
    verify: bool = False   # decode every image of every split and list those that fail
    progress: bool = False


def run_datasets(cfg: DatasetsConfig) -> dict[str, Any]:
    """The summary ``edge-fgic datasets KIND=PATH`` prints (see :func:`summarize_dataset`)."""
    return summarize_dataset(cfg.data, verify=cfg.verify, progress=cfg.progress)


def bad_images(summary: dict[str, Any]) -> dict[str, list[str]]:
    """Per split, the images ``--verify`` could not decode (only splits that have some)."""
    return {name: v["bad_images"] for name, v in summary["splits"].items() if v and v.get("bad_images")}


def reader_rows(readers: Sequence[Reader]) -> list[dict[str, Any]]:
    """The dataset kinds as ``edge-fgic datasets --json`` prints them."""
    return [{"kind": r.kind, "aliases": list(r.aliases), "splits": list(r.splits), "layout": r.description}
            for r in readers]


def print_readers(readers: Sequence[Reader], as_json: bool = False) -> None:
    """``edge-fgic datasets``: the dataset kinds, as a table or as JSON."""
    if as_json:
        print(json.dumps(reader_rows(readers), indent=2), flush=True)
        return
    from ..progress import console
    table = Table(title="dataset kinds (--data KIND=PATH)", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("kind", style="bold", no_wrap=True)
    table.add_column("aliases")
    table.add_column("layout", overflow="fold")
    for r in readers:
        # Text(): layouts contain braces/brackets that must not be read as markup
        table.add_row(Text(r.kind), Text(", ".join(r.aliases) or "—"), Text(r.description))
    console.print(table)
    console.print(Text("a plain PATH means imagefolder; inspect one with: edge-fgic datasets KIND=PATH", style="dim"))


def _fmt_range(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "—"
    return f"{stats['min']} / {stats['median']} / {stats['max']}"


def print_summary(s: dict[str, Any], *, as_json: bool = False, verify: bool = False) -> None:
    """``edge-fgic datasets KIND=PATH``: the summary as JSON, or as tables followed by the images ``--verify``
    could not decode."""
    if as_json:
        print(json.dumps(s, indent=2), flush=True)
        return
    from ..progress import console
    names = s["classes"]
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    console.print(Text.assemble(("dataset ", "bold"), s["data"]))
    console.print(Text.assemble(("layout  ", "bold"), s["layout"]))
    console.print(Text.assemble(("classes ", "bold"), f"{s['num_classes']} ({shown})"))

    splits = s["splits"]
    table = Table(box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("", style="bold", no_wrap=True)
    for name in splits:
        table.add_column(name, justify="right")

    def row(label: str, fn) -> None:
        table.add_row(label, *[Text("—") if v is None else Text(fn(v)) for v in splits.values()])

    row("images", lambda v: str(v["images"]))
    row("per class min/med/max", lambda v: _fmt_range(v["images_per_class"]))
    row("width min/med/max", lambda v: _fmt_range(v["width"]))
    row("height min/med/max", lambda v: _fmt_range(v["height"]))
    row("modes", lambda v: ", ".join(f"{m} {n}" for m, n in v["modes"].items()) or "—")
    row("headers read", lambda v: f"{v['sampled'] - v['unreadable_headers']}/{v['sampled']}")
    console.print(table)

    notes: dict[str, list[str]] = {}
    for name, v in splits.items():
        if v is not None and v["note"]:
            notes.setdefault(v["note"], []).append(name)
    for note, which in notes.items():
        console.print(Text.assemble(("split note ", "bold"), f"({', '.join(which)}): {note}"))
    for name, v in splits.items():
        if v is not None and v["unreadable_headers"]:
            console.print(Text(f"warning: {v['unreadable_headers']} of {v['sampled']} sampled {name} image(s) have "
                               f"unreadable headers, e.g. {'; '.join(v['unreadable_examples'])}", style="yellow"))
    console.print(Text(f"sizes/modes from the headers of <= {s['sample_per_split']} images per split", style="dim"))
    bad = bad_images(s)
    for name, lines in bad.items():
        console.print(Text(f"✗ {name}: {len(lines)} image(s) cannot be decoded:", style="red"), soft_wrap=True)
        for line in lines:
            console.print(Text(f"  {line}", style="red"), soft_wrap=True)
    if verify and not bad:
        console.print(Text("every image of every split decodes", style="green"))
