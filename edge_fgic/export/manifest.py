"""The manifest: what an artifact is and how to feed it. Readers never guess preprocessing.

The same JSON goes *inside* the artifact where the format allows (ONNX ``metadata_props``,
TFLite model metadata, OpenVINO ``rt_info``) and always *beside* it as ``<artifact>.json``
(the sidecar, which also holds the artifact's SHA-256 — a file cannot contain its own hash).
"""

from __future__ import annotations

import datetime as _dt
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UserError

SCHEMA = "edge-fgic/manifest"
SCHEMA_VERSION = 1
MANIFEST_KEY = "edge_fgic_manifest"  # ONNX metadata_props key / TFLite metadata name / OpenVINO rt_info key


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def sidecar_path(artifact: str | Path) -> Path:
    return Path(str(artifact) + ".json")


def build_manifest(ckpt, *, target: str, precision: str, file: str, layout: str, input_dtype: str = "float32",
                   batch: int | None = 1, converters: dict[str, str] | None = None, quantization: dict[str, Any] | None = None,
                   options: dict[str, Any] | None = None, model_name: str = "") -> dict[str, Any]:
    """Everything a reader needs, from the source checkpoint (:class:`~edge_fgic.models.checkpoint.Checkpoint`)."""
    pre = ckpt.preprocess
    src_metrics = ckpt.metrics or {}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "artifact": {"file": file, "target": target, "precision": precision},
        "model": {"name": model_name or ckpt.model.name, "variant": (ckpt.train_config or {}).get("variant", ""),
                  "num_classes": len(ckpt.classes)},
        "classes": list(ckpt.classes),
        "input": {
            "name": "input", "shape": [batch if batch else -1, 3, pre.input_size, pre.input_size] if layout == "NCHW"
            else [batch if batch else -1, pre.input_size, pre.input_size, 3],
            "layout": layout, "channel_order": pre.channel_order, "dtype": input_dtype,
            "mean": list(pre.mean), "std": list(pre.std), "value_range": "(pixel/255 - mean) / std",
            "interpolation": pre.interpolation, "crop_pct": pre.crop_pct, "resize_size": pre.resize_size,
            "input_size": pre.input_size,
        },
        # int8 outputs (TFLite full-integer) carry their scale/zero-point in quantization.io.output
        "output": {"name": "logits", "kind": "logits (apply softmax for probabilities)",
                   "dtype": (((quantization or {}).get("io") or {}).get("output") or {}).get("dtype", "float32")},
        "quantization": quantization,
        "source": {"checkpoint": str(ckpt.path), "sha256": ckpt.sha256, "data": (ckpt.train_config or {}).get("data"),
                   "val_top1": src_metrics.get("val_top1"), "test_top1": src_metrics.get("test_top1")},
        "export": {"toolkit": f"edge-fgic {__version__}", "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                   "converters": converters or {}, "options": options or {}},
        "round_trip": None,
    }


def _finite(obj: Any) -> Any:
    """NaN/inf (e.g. a round-trip figure of an empty check) become null: strict JSON readers such as
    Android's org.json reject Python's NaN/Infinity tokens."""
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def dumps(manifest: dict[str, Any], indent: int | None = 2) -> str:
    """Strict JSON (no NaN/Infinity) of a manifest: the sidecar (indented) and every embedded copy (compact)."""
    return json.dumps(_finite(manifest), indent=indent, default=str, allow_nan=False)


def read_manifest(artifact: str | Path) -> dict[str, Any] | None:
    """The sidecar if present, else the copy embedded in the artifact, else ``None``."""
    artifact = Path(artifact)
    side = sidecar_path(artifact)
    if side.exists():
        try:
            return json.loads(side.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{side}: not a valid manifest ({exc.__class__.__name__}); re-export the artifact") from None
    return read_embedded(artifact)


def read_embedded(artifact: str | Path) -> dict[str, Any] | None:
    """The manifest stored inside the artifact itself (no sidecar needed)."""
    artifact = Path(artifact)
    name = artifact.name.lower()
    try:
        if name.endswith(".onnx"):
            import onnx
            model = onnx.load(str(artifact), load_external_data=False)
            for prop in model.metadata_props:
                if prop.key == MANIFEST_KEY:
                    return json.loads(prop.value)
        elif name.endswith(".tflite"):
            from .tflite_metadata import read_manifest as read_tflite
            return read_tflite(str(artifact))
        elif name.endswith(".xml"):
            import openvino as ov
            model = ov.Core().read_model(str(artifact))
            if model.has_rt_info([MANIFEST_KEY]):
                return json.loads(model.get_rt_info([MANIFEST_KEY]).astype(str))
    except UserError:
        raise
    except Exception:  # unreadable artifact: the runner reports it with the runtime's own words
        return None
    return None
