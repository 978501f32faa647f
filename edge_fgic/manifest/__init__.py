"""The manifest: what an artifact is and how to feed it. Readers never guess preprocessing.

One typed object, :class:`Manifest` (timm's ``PretrainedCfg`` is the model): the artifact (file,
target, precision), the model, the class names, the input (size, layout, channel order, mean/std,
interpolation, crop fraction), the output (and, with ``export --embedding``, the second output
``embedding``: :class:`EmbeddingSpec`), the quantization record (one shape for every target),
the source checkpoint, how it was exported, the round-trip check and, in the sidecar, each file's
SHA-256. The same JSON goes *inside* the artifact where the format allows (ONNX ``metadata_props``,
TFLite model metadata, OpenVINO ``rt_info``: the codecs :mod:`.onnx`, :mod:`.tflite`,
:mod:`.openvino`) and always *beside* it as ``<artifact>.json`` (the sidecar, which also holds the
artifact's SHA-256 — a file cannot contain its own hash).

Everything that reads a manifest (runners, bench, predict, camera, the exporter) reads this type;
:meth:`Manifest.from_dict` validates what it reads and names the file and the field at fault.

Layer: the bottom (with ``data``). May import errors and fileio only; the codecs import their
runtime's parser lazily, so reading a manifest never loads torch.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UserError

SCHEMA = "edge-fgic/manifest"
SCHEMA_VERSION = 1
MANIFEST_KEY = "edge_fgic_manifest"  # ONNX metadata_props key / TFLite metadata name / OpenVINO rt_info key
LAYOUTS = ("NCHW", "NHWC")
PRECISIONS = ("fp32", "fp16", "int8")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def sidecar_path(artifact: str | Path) -> Path:
    return Path(str(artifact) + ".json")


class ManifestError(UserError):
    """A manifest that is not one (bad JSON, a missing or mistyped field)."""


def _need(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise ManifestError(f"{where}: {what}; re-export the artifact (edge-fgic export)")


@dataclass
class ArtifactInfo:
    file: str = ""
    target: str = ""
    precision: str = "fp32"


@dataclass
class ModelInfo:
    name: str = ""
    variant: str = ""
    num_classes: int = 0


@dataclass
class InputSpec:
    """How an image becomes the model's input: the fields of ``PreprocessConfig`` plus layout and dtype."""

    input_size: int
    mean: list[float]
    std: list[float]
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    channel_order: str = "RGB"
    layout: str = "NCHW"
    dtype: str = "float32"
    name: str = "input"
    shape: list[int] = field(default_factory=list)
    resize_size: int = 0
    value_range: str = "(pixel/255 - mean) / std"

    def preprocess(self) -> dict[str, Any]:
        """The keyword arguments of ``edge_fgic.data.transforms.PreprocessConfig`` (NCHW float32:
        what every runner's ``predict`` takes; it does the layout and integer input itself)."""
        return {"input_size": int(self.input_size), "mean": tuple(self.mean), "std": tuple(self.std),
                "interpolation": self.interpolation, "crop_pct": float(self.crop_pct),
                "channel_order": self.channel_order, "layout": "NCHW"}

    def key(self) -> tuple:
        """Artifacts with equal keys take the same preprocessed images (bench decodes each set once)."""
        return (int(self.input_size), tuple(self.mean), tuple(self.std), self.interpolation, float(self.crop_pct))


@dataclass
class OutputSpec:
    name: str = "logits"
    kind: str = "logits (apply softmax for probabilities)"
    dtype: str = "float32"


@dataclass
class EmbeddingSpec:
    """A second output (``export --embedding``): the vector the classifier layer reads, for retrieval or
    open-set rejection on a device. ``normalized``: L2-normalised inside the graph (unit rows, so cosine
    similarity is a dot product); ``shape`` is ``[batch or -1, dim]``. Readers select outputs by ``name``."""

    dim: int
    name: str = "embedding"
    shape: list[int] = field(default_factory=list)
    normalized: bool = True
    dtype: str = "float32"
    kind: str = "pre-logits embedding (timm pre_logits), L2-normalised; cosine similarity = dot product"

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "EmbeddingSpec":
        _need(isinstance(d, dict) and isinstance(d.get("dim"), int) and d["dim"] > 0, where,
              "embedding.dim must be a positive integer")
        _need(isinstance(d.get("name", "embedding"), str) and d.get("name", "embedding"), where,
              "embedding.name must name the output")
        _need(isinstance(d.get("normalized", True), bool), where, "embedding.normalized must be true or false")
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in fields(cls)}})


@dataclass
class Quantization:
    """One shape for every target. ``io``: an integer-I/O artifact's input/output scale and zero-point
    (what the runtime reported at export; the Android app dequantizes with it); ``details``: what only
    one target has (the Q/DQ graph summary, carried activation ranges, TensorRT's rule check)."""

    scheme: str
    framework: str | None = None
    mode: str | None = None
    weights: str | None = None
    activations: str | None = None
    per_channel_weights: bool | None = None
    calibration: dict[str, Any] | None = None
    source_val: dict[str, Any] | None = None
    io: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_checkpoint(cls, ckpt_quant: dict[str, Any] | None, scheme: str, **overrides: Any) -> "Quantization":
        """The record of a target built from a quantized checkpoint (its NNCF record fills the rest)."""
        q = ckpt_quant or {}
        known = {f.name for f in fields(cls)}
        details = {**overrides.pop("details", {}), **{k: overrides.pop(k) for k in list(overrides) if k not in known}}
        base = dict(framework=q.get("framework"), mode=q.get("mode"), weights=q.get("weights"),
                    activations=q.get("activations"), per_channel_weights=True if ckpt_quant else None,
                    calibration=q.get("calibration"), source_val=q.get("val"))
        return cls(scheme=scheme, **{**base, **overrides}, details=details)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> "Quantization":
        _need(isinstance(d, dict) and isinstance(d.get("scheme"), str), where, "quantization.scheme is missing")
        known = {f.name for f in fields(cls)}
        rest = {k: v for k, v in d.items() if k not in known}
        # files written before the record had one shape: target-only keys sat at the top
        if "source_int8_checkpoint_val" in rest:
            d = {**d, "source_val": rest.pop("source_int8_checkpoint_val")}
        io = d.get("io")
        _need(io is None or isinstance(io, dict), where, "quantization.io must be an object")
        return cls(**{k: d[k] for k in known if k in d and k != "details"},
                   details={**(d.get("details") or {}), **rest})


@dataclass
class Manifest:
    """What an artifact is and how to feed it (see the module docstring)."""

    classes: list[str]
    input: InputSpec
    artifact: ArtifactInfo = field(default_factory=ArtifactInfo)
    model: ModelInfo = field(default_factory=ModelInfo)
    output: OutputSpec = field(default_factory=OutputSpec)
    embedding: EmbeddingSpec | None = None                    # a second output (export --embedding); else absent
    quantization: Quantization | None = None
    source: dict[str, Any] = field(default_factory=dict)      # checkpoint, sha256, data, val_top1, test_top1
    export: dict[str, Any] = field(default_factory=dict)      # toolkit, created, converters, options, build_seconds
    round_trip: dict[str, Any] | None = None                  # the exporter's proof against the PyTorch model
    files: dict[str, Any] | None = None                       # sidecar only: {"sha256": {file: hex}}
    schema: str = SCHEMA
    schema_version: int = SCHEMA_VERSION

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoint(cls, ckpt, *, target: str, precision: str, file: str, layout: str = "NCHW",
                        input_dtype: str = "float32", batch: int | None = 1, converters: dict[str, str] | None = None,
                        quantization: Quantization | None = None, options: dict[str, Any] | None = None,
                        model_name: str = "", embedding: EmbeddingSpec | None = None) -> "Manifest":
        """Everything a reader needs, from the source checkpoint (:class:`~edge_fgic.models.checkpoint.Checkpoint`)."""
        pre = ckpt.preprocess
        tc = ckpt.train_config or {}
        metrics = ckpt.metrics or {}
        n = batch if batch else -1
        shape = [n, 3, pre.input_size, pre.input_size] if layout == "NCHW" else [n, pre.input_size, pre.input_size, 3]
        out_dtype = ((quantization.io or {}).get("output") or {}).get("dtype", "float32") if quantization else "float32"
        return cls(
            classes=list(ckpt.classes),
            input=InputSpec(input_size=pre.input_size, mean=list(pre.mean), std=list(pre.std),
                            interpolation=pre.interpolation, crop_pct=pre.crop_pct, channel_order=pre.channel_order,
                            layout=layout, dtype=input_dtype, shape=shape, resize_size=pre.resize_size),
            artifact=ArtifactInfo(file=file, target=target, precision=precision),
            model=ModelInfo(name=model_name or ckpt.model.name, variant=tc.get("variant", ""),
                            num_classes=len(ckpt.classes)),
            # int8 outputs (TFLite full-integer): scale/zero-point in quantization.io
            output=OutputSpec(dtype=out_dtype),
            embedding=embedding,
            quantization=quantization,
            source={"checkpoint": str(ckpt.path), "sha256": ckpt.sha256, "data": tc.get("data"),
                    "val_top1": metrics.get("val_top1"), "test_top1": metrics.get("test_top1")},
            export={"toolkit": f"edge-fgic {__version__}",
                    "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "converters": converters or {}, "options": options or {}},
        )

    # ------------------------------------------------------------------ JSON
    @classmethod
    def from_dict(cls, d: Any, where: str = "manifest") -> "Manifest":
        """Validate and type a manifest read from JSON; one line naming ``where`` and the field at fault."""
        _need(isinstance(d, dict), where, "is not a JSON object")
        _need(d.get("schema", SCHEMA) == SCHEMA, where, f"schema is {d.get('schema')!r}, not {SCHEMA!r}")
        sv = d.get("schema_version", SCHEMA_VERSION)
        _need(isinstance(sv, int) and sv <= SCHEMA_VERSION, where,
              f"schema_version {sv!r} is newer than this edge-fgic reads ({SCHEMA_VERSION}); upgrade edge-fgic or")
        classes = d.get("classes")
        _need(isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes), where,
              "classes must be a non-empty list of names")
        i = d.get("input")
        _need(isinstance(i, dict), where, "input (the preprocessing) is missing")
        size = i.get("input_size")
        _need(isinstance(size, int) and size > 0, where, f"input.input_size must be a positive integer, not {size!r}")
        for k in ("mean", "std"):
            v = i.get(k)
            _need(isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v), where,
                  f"input.{k} must be 3 numbers")
        _need(all(x > 0 for x in i["std"]), where, "input.std must be > 0")
        _need(i.get("layout", "NCHW") in LAYOUTS, where, f"input.layout must be NCHW or NHWC, not {i.get('layout')!r}")
        _need(i.get("interpolation", "bicubic") in INTERPOLATIONS, where,
              f"input.interpolation must be one of {', '.join(INTERPOLATIONS)}")
        crop = i.get("crop_pct", 0.875)
        _need(isinstance(crop, (int, float)) and 0 < crop <= 1, where,
              f"input.crop_pct must be in (0, 1], not {crop!r}")
        known_in = {f.name for f in fields(InputSpec)}
        art = d.get("artifact") or {}
        _need(isinstance(art, dict) and art.get("precision", "fp32") in (*PRECISIONS, "unknown"), where,
              f"artifact.precision must be one of {', '.join(PRECISIONS)}")
        q = d.get("quantization")
        files = d.get("files")
        _need(files is None or (isinstance(files, dict) and isinstance(files.get("sha256", {}), dict)), where,
              "files.sha256 must map file names to hashes")
        emb = d.get("embedding")
        return cls(
            classes=list(classes),
            input=InputSpec(**{k: v for k, v in i.items() if k in known_in}),
            artifact=ArtifactInfo(**{k: v for k, v in art.items() if k in {f.name for f in fields(ArtifactInfo)}}),
            model=ModelInfo(**{k: v for k, v in (d.get("model") or {}).items()
                               if k in {f.name for f in fields(ModelInfo)}}),
            output=OutputSpec(**{k: v for k, v in (d.get("output") or {}).items()
                                 if k in {f.name for f in fields(OutputSpec)}}),
            quantization=None if q is None else Quantization.from_dict(q, where),
            source=dict(d.get("source") or {}), export=dict(d.get("export") or {}),
            round_trip=d.get("round_trip"), files=files,
            embedding=None if emb is None else EmbeddingSpec.from_dict(emb, where),
            schema=SCHEMA, schema_version=SCHEMA_VERSION)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d = {"schema": d.pop("schema"), "schema_version": d.pop("schema_version"), **d}
        if d["files"] is None:
            d.pop("files")
        if d["embedding"] is None:  # an export without --embedding is written as before
            d.pop("embedding")
        return d

    def dumps(self, indent: int | None = 2) -> str:
        return dumps(self.to_dict(), indent)

    def with_files(self, sha256: dict[str, str]) -> "Manifest":
        """The sidecar's form: this manifest plus each file's SHA-256."""
        from dataclasses import replace
        return replace(self, files={"sha256": dict(sha256)})

    # ------------------------------------------------------------------ what readers ask
    @property
    def precision(self) -> str:
        return self.artifact.precision or "fp32"

    @property
    def layout(self) -> str:
        return self.input.layout

    @property
    def sha256(self) -> dict[str, str]:
        return dict((self.files or {}).get("sha256") or {})


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


def dumps(manifest: Manifest | dict[str, Any], indent: int | None = 2) -> str:
    """Strict JSON (no NaN/Infinity) of a manifest: the sidecar (indented) and every embedded copy (compact)."""
    d = manifest.to_dict() if isinstance(manifest, Manifest) else manifest
    return json.dumps(_finite(d), indent=indent, default=str, allow_nan=False)


def read_manifest(artifact: str | Path) -> Manifest | None:
    """The sidecar if present, else the copy embedded in the artifact, else ``None``."""
    artifact = Path(artifact)
    side = sidecar_path(artifact)
    if side.exists():
        try:
            raw = json.loads(side.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{side}: not a valid manifest ({exc.__class__.__name__}); "
                                "re-export the artifact") from None
        return Manifest.from_dict(raw, str(side))
    return read_embedded(artifact)


def codec_for(artifact: str | Path):
    """The module that embeds and reads the manifest in this kind of file (the target table's ``codec``
    column; None: the format has no room for one, e.g. a TensorRT engine)."""
    import importlib

    from ..targets import target_of
    target = target_of(artifact)
    return importlib.import_module(f"edge_fgic.manifest.{target.codec}") if target and target.codec else None


def read_embedded_dict(artifact: str | Path) -> dict[str, Any] | None:
    """The raw JSON stored inside the artifact itself (None: none, or the file is unreadable — the runner
    then reports it in the runtime's own words)."""
    codec = codec_for(artifact)
    if codec is None:
        return None
    try:
        return codec.read_manifest(str(artifact))
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - an unreadable artifact is the runtime's to report
        return None


def read_embedded(artifact: str | Path) -> Manifest | None:
    """The manifest stored inside the artifact itself (no sidecar needed)."""
    raw = read_embedded_dict(artifact)
    return None if raw is None else Manifest.from_dict(raw, f"{artifact} (embedded manifest)")
