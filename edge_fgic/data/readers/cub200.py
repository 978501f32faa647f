"""The ``cub200`` reader: CUB-200-2011 in its native layout (see :mod:`edge_fgic.data.readers`)."""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import UserError
from ..registry import Reader, SplitIndex, register_reader
from .common import (
    _abs,
    _check_images,
    _dirs,
    _int_field,
    _read_id_table,
    _readable,
    _require,
    _select,
    _unique_names,
    _wrong_root,
)

CUB_LAYOUT = "ROOT/CUB_200_2011/{images.txt,image_class_labels.txt,train_test_split.txt,classes.txt,images/}"


def _cub_base(root: Path) -> Path:
    metadata = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
    if (root / "CUB_200_2011").is_dir():
        return root / "CUB_200_2011"
    if root.name == "CUB_200_2011" or any((root / m).is_file() for m in metadata):
        return root
    _wrong_root(
        root,
        "cub200",
        CUB_LAYOUT,
        lambda p: _dirs(p / "CUB_200_2011", *([p] if p.name == "CUB_200_2011" or (p / "images.txt").is_file() else [])),
    )


def read_cub200(root: Path, split: str) -> SplitIndex:
    base = _cub_base(_abs(root))
    _require(
        base, ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt", "images/"), "cub200",
        CUB_LAYOUT
    )
    images = _read_id_table(base / "images.txt", "cub200")
    labels_txt = _read_id_table(base / "image_class_labels.txt", "cub200")
    split_txt = _read_id_table(base / "train_test_split.txt", "cub200")
    classes_txt = _read_id_table(base / "classes.txt", "cub200")

    class_ids = sorted(classes_txt)
    if class_ids != list(range(1, len(class_ids) + 1)):
        raise UserError(f"{base / 'classes.txt'}: class ids must run 1..N without gaps; re-extract the cub200 archive")
    # "001.Black_footed_Albatross" -> "Black footed Albatross"
    raw = [classes_txt[c] for c in class_ids]
    classes = _unique_names(_readable(re.sub(r"^\d+\.", "", r)) for r in raw)

    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for image_id in sorted(images):
        for table, name in ((labels_txt, "image_class_labels.txt"), (split_txt, "train_test_split.txt")):
            if image_id not in table:
                raise UserError(f"{base / name}: no entry for image id {image_id} of images.txt; "
                                "re-extract the cub200 archive")
        label = _int_field(labels_txt[image_id], base / "image_class_labels.txt", image_id)
        if not 1 <= label <= len(classes):
            raise UserError(f"{base / 'image_class_labels.txt'}: image {image_id} has class {label}, "
                            f"outside 1..{len(classes)} of classes.txt")
        is_train = _int_field(split_txt[image_id], base / "train_test_split.txt", image_id)
        path = str(base / "images" / images[image_id])
        (train if is_train == 1 else test).append((path, label - 1))

    samples, note = _select(test if split == "test" else train, split)
    _check_images(samples, base / "images.txt", "cub200")
    return SplitIndex(classes, samples, note)


register_reader(Reader("cub200", "CUB-200-2011: " + CUB_LAYOUT + " (val carved from train)", read_cub200,
                       aliases=("cub", "cub200_2011", "cub_200_2011")))
