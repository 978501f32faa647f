"""The manifest inside an ONNX file: ``metadata_props`` (our JSON under ``edge_fgic_manifest``, and a
few flat keys other tools such as Netron show). ``onnx`` is imported when a file is read or written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import MANIFEST_KEY, Manifest, dumps


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    import onnx
    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == MANIFEST_KEY:
            return json.loads(prop.value)
    return None


def from_metadata_map(props: dict[str, str]) -> dict[str, Any] | None:
    """The manifest from a loaded session's metadata map (onnxruntime's ``custom_metadata_map``)."""
    text = props.get(MANIFEST_KEY)
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


def embed(path: Path, manifest: Manifest) -> None:
    """Write the manifest (and the flat keys) into ``metadata_props``, in place."""
    import onnx
    m = onnx.load(str(path))
    props = {MANIFEST_KEY: dumps(manifest, indent=None), "classes": json.dumps(manifest.classes),
             "input_size": str(manifest.input.input_size), "mean": json.dumps(list(manifest.input.mean)),
             "std": json.dumps(list(manifest.input.std)), "precision": manifest.precision, "author": "edge-fgic"}
    keep = [p for p in m.metadata_props if p.key not in props]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    for k, v in props.items():
        m.metadata_props.add(key=k, value=v)
    m.producer_name = "edge-fgic"
    onnx.save(m, str(path))
