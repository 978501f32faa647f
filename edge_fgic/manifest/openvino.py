"""The manifest inside an OpenVINO IR: the model's ``rt_info`` (our JSON under ``edge_fgic_manifest``,
the class names under ``edge_fgic_classes``). ``openvino`` is imported when a file is read or written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import MANIFEST_KEY, Manifest, dumps


def from_model(model) -> dict[str, Any] | None:
    """The manifest of an ``ov.Model`` already read (the runner's)."""
    try:
        if model.has_rt_info([MANIFEST_KEY]):
            return json.loads(model.get_rt_info([MANIFEST_KEY]).astype(str))
    except (RuntimeError, ValueError):
        return None
    return None


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    import openvino as ov
    return from_model(ov.Core().read_model(str(path)))


def embed(xml: Path, manifest: Manifest) -> None:
    """The manifest into the IR's ``rt_info`` (re-serialised; the .bin weights are unchanged)."""
    import openvino as ov
    model = ov.Core().read_model(str(xml))
    model.set_rt_info(dumps(manifest, indent=None), [MANIFEST_KEY])
    model.set_rt_info(json.dumps(manifest.classes), ["edge_fgic_classes"])
    tmp = xml.with_name(xml.stem + ".meta.xml")
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    # save_model rewrites weights too; keep the original .bin (identical content) and the new .xml
    tmp.replace(xml)
    tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
