"""The manifest inside an ONNX file: ``metadata_props`` (our JSON under ``edge_fgic_manifest``, and a
few flat keys other tools such as Netron show). ``onnx`` reads and writes them; without it (the deploy
install) onnxruntime reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import MANIFEST_KEY, Manifest, dumps


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    try:
        import onnx
    except ImportError:  # the deploy install (no [train]): onnxruntime reads the same metadata_props
        return _read_with_onnxruntime(path)
    model = onnx.load(str(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == MANIFEST_KEY:
            return json.loads(prop.value)
    return None


def _read_with_onnxruntime(path: str | Path) -> dict[str, Any] | None:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # only the metadata is wanted
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return from_metadata_map(sess.get_modelmeta().custom_metadata_map)


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
