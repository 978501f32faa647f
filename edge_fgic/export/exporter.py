"""``edge-fgic export``: build an artifact in a private temp folder, prove it in its own runtime
against the source PyTorch model on real images, then embed the manifest and move it into place.

A failed build or a failed round trip leaves nothing in the output folder that looks valid:
files are renamed in only after the check passes (sidecar first, entry-point file last).

``--embedding`` (:mod:`.embedding`): the artifact carries the L2-normalised embedding as a second output;
the manifest names it and the round trip proves it against the source model too.

Size: over 400 lines because the command's steps (inputs, the round trip and its gates, staging) share
one temp folder and one failure rule, which is clearer in one place.
"""

from __future__ import annotations

import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..bench.reference import export_target_tolerance, export_tolerance
from ..errors import NotApplicable, UserError, debug_enabled, exc_line
from ..fileio import private_dir, sha256_file, write_text
from ..manifest import Manifest, Quantization, dumps, package_version, sidecar_path
from ..metrics import agreement
from ..progress import console
from ..targets import PRECISIONS, TARGETS, Target, get_target

# Round-trip gates per precision: agreement of top-1 predictions with the source model (%), and the
# largest logit difference relative to max(1, max |reference logit|); INT8 is judged on agreement only.
# The numbers and their reasons: edge_fgic/reference_defaults.yaml (package data, the one copy).
TOLERANCE: dict[str, dict[str, float | None]] = export_tolerance()


@dataclass
class ExportConfig:
    model: str
    target: str = "onnx"           # a name from TARGETS, or "all"
    precision: str = "fp32"
    out: str = ""                  # default: <checkpoint folder>/export
    name: str = ""                 # artifact stem; default: the checkpoint's folder name
    profile: str = ""              # export/<device>.yaml or its name
    data: str = ""                 # KIND=PATH; default: the dataset recorded in the checkpoint
    split: str = "val"
    check_images: int = 256        # images for the round trip (0 = the whole split)
    calib_size: int = 0            # TFLite INT8 calibration images; 0 = as the INT8 checkpoint was calibrated
    opset: int = 17
    dynamic_batch: bool = False
    overwrite: bool = False
    min_agreement: float | None = None
    max_rel_diff: float | None = None
    threads: int = 0
    seed: int = 0
    skip_bad_images: bool = False
    embedding: bool = False        # a second output, the L2-normalised embedding (export/embedding.py)


@dataclass
class Built:
    """One artifact a target module built in the temp folder."""
    artifact: Path                         # entry point (what runners open)
    runtime: str                           # runner backend that proves it
    layout: str = "NCHW"
    input_dtype: str = "float32"
    batch: int | None = 1
    files: list[Path] = field(default_factory=list)   # companions renamed before the artifact (OpenVINO .bin)
    converters: dict[str, str] = field(default_factory=dict)
    quantization: Quantization | None = None
    options: dict[str, Any] = field(default_factory=dict)
    embed: Callable[[Path, Manifest], None] | None = None  # writes the manifest into the artifact in place
    extras: list[Path] = field(default_factory=list)  # plain companions without a manifest (trtexec command)
    notes: list[str] = field(default_factory=list)
    verify: bool = True                    # False: cannot be run here (reported, not gated)


@dataclass
class ExportJob:
    cfg: ExportConfig
    ckpt: Any                  # Checkpoint
    target: Target
    precision: str
    model: Any                 # FP32 model, or the NNCF INT8 model for int8
    tmp: Path
    stem: str
    profile: dict[str, Any]
    calibration: Callable[[], tuple[list[np.ndarray], dict[str, Any]]]

    @property
    def input_size(self) -> int:
        return self.ckpt.preprocess.input_size


@dataclass
class ExportResult:
    target: str
    precision: str
    status: str                # "ok" | "failed" | "skipped" | "onnx-only"
    artifact: str = ""
    message: str = ""
    size_bytes: int = 0
    export_seconds: float = 0.0
    round_trip: dict[str, Any] | None = None
    extras: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- inputs


def _load_source(cfg: ExportConfig):
    from ..models.checkpoint import load_checkpoint
    ckpt = load_checkpoint(cfg.model)
    return ckpt


def _check_precision(cfg: ExportConfig, ckpt, precision: str) -> None:
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    if precision == "int8" and not ckpt.is_quantized:
        raise UserError(f"{cfg.model}: an INT8 export needs a quantized checkpoint; run "
                        f"`edge-fgic quantize -m {cfg.model}` first and export its best.pt")
    if precision != "int8" and ckpt.is_quantized:
        src = ckpt.quantization.get("source") or "the FP32 checkpoint"
        raise UserError(f"{cfg.model}: is an INT8 checkpoint; export --precision int8, "
                        f"or export {precision} from {src}")


def _data_spec(cfg: ExportConfig, ckpt):
    """The round-trip check's images: --data, or the dataset the checkpoint records, with its classes."""
    from ..data.datasets import checkpoint_data
    return checkpoint_data(cfg.data or None, ckpt, cfg.model, cfg.split)


class _Data:
    """Round-trip images and calibration images, loaded once per command."""

    def __init__(self, cfg: ExportConfig, ckpt, progress: bool):
        self.cfg, self.ckpt, self.progress = cfg, ckpt, progress
        self.spec = _data_spec(cfg, ckpt)
        self._check: tuple[np.ndarray, np.ndarray] | None = None
        self._calib: tuple[list[np.ndarray], dict[str, Any]] | None = None
        self._refs: dict[str, np.ndarray] = {}
        self._emb_refs: dict[str, np.ndarray] = {}

    def check_set(self) -> tuple[np.ndarray, np.ndarray]:
        if self._check is None:
            import torch

            from ..data.datasets import open_split
            from ..data.transforms import eval_transform
            ds = open_split(self.spec, self.cfg.split, eval_transform(self.ckpt.preprocess),
                            skip_bad_images=self.cfg.skip_bad_images, progress=self.progress)
            n = len(ds) if self.cfg.check_images <= 0 else min(self.cfg.check_images, len(ds))
            # evenly spread over the split (splits are usually sorted by class)
            idx = np.unique(np.linspace(0, len(ds) - 1, n).round().astype(int)) if n else np.array([], int)
            xs = [ds[int(i)][0] for i in idx]
            x = torch.stack(xs).numpy().astype(np.float32) if xs else np.zeros((0, 3, 1, 1), np.float32)
            y = np.array([ds.targets[int(i)] for i in idx], dtype=np.int64)
            self._check = (x, y)
        return self._check

    def reference(self, key: str, model) -> np.ndarray:
        if key not in self._refs:
            import torch

            from ..runtime.torch_runner import exact_fp32
            exact_fp32()  # IEEE fp32 matmul/conv asked for, never oneDNN's bf16/tf32 where a setting allows it
            x, _ = self.check_set()
            model = model.cpu().eval()
            with torch.no_grad():
                self._refs[key] = np.concatenate([model(torch.from_numpy(x[i:i + 64])).float().numpy()
                                                  for i in range(0, len(x), 64)]) if len(x) else np.zeros((0, 0))
        return self._refs[key]

    def reference_embedding(self, key: str, model) -> np.ndarray:
        """The source model's normalised embedding of the check images (``export --embedding``'s reference)."""
        if key not in self._emb_refs:
            import torch

            from .embedding import reference_embedding
            x, _ = self.check_set()
            model = model.cpu().eval()
            with torch.no_grad():
                parts = [reference_embedding(model, torch.from_numpy(x[i:i + 64])).float().numpy()
                         for i in range(0, len(x), 64)]
            self._emb_refs[key] = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
        return self._emb_refs[key]

    def calibration(self) -> tuple[list[np.ndarray], dict[str, Any]]:
        """Seeded, class-stratified training images (NCHW float32, one per entry) and their record."""
        if self._calib is None:
            from ..data.datasets import open_split
            from ..data.transforms import eval_transform
            from ..quant.nncf_quant import DEFAULT_CALIB, calibration_subset
            train = open_split(self.spec, "train", eval_transform(self.ckpt.preprocess),
                               skip_bad_images=self.cfg.skip_bad_images, progress=self.progress)
            size = self.cfg.calib_size  # asked: more than the split is an error
            if size <= 0:  # as the INT8 checkpoint was calibrated, else min(300, split)
                recorded = int(((self.ckpt.quantization or {}).get("calibration") or {}).get("images") or 0)
                size = min(recorded or DEFAULT_CALIB, len(train))
            picked, record = calibration_subset(train, size, self.cfg.seed, True, str(self.spec.path))
            self._calib = ([train[i][0][None].numpy().astype(np.float32) for i in picked], record)
        return self._calib


# ---------------------------------------------------------------- round trip


def round_trip(built: Built, manifest: Manifest, data: _Data, ref: np.ndarray, tol: dict[str, float | None],
               threads: int, emb_ref: np.ndarray | None = None) -> dict[str, Any]:
    from ..runtime import runner_for
    x, y = data.check_set()
    cls = runner_for(built.runtime)
    t0 = time.perf_counter()
    runner = cls(built.artifact, manifest, threads=threads or None)
    emb = None
    if emb_ref is not None and len(x):
        out, emb = runner.predict_with_embedding(x)
    else:
        out = runner.predict(x) if len(x) else np.zeros_like(ref)
    seconds = time.perf_counter() - t0
    diff = float(np.abs(out - ref).max()) if len(x) else 0.0
    scale = max(1.0, float(np.abs(ref).max())) if len(x) else 1.0
    agree = agreement(out, ref) if len(x) else 100.0
    rel = diff / scale
    execution = runner.execution
    passed = (agree >= (tol["min_agreement"] or 0.0) and (tol["max_rel_diff"] is None or rel <= tol["max_rel_diff"])
              and execution["precision_ok"])
    emb_check = _embedding_check(emb, emb_ref, tol) if emb_ref is not None else None
    passed = passed and (emb_check is None or emb_check["passed"])
    return {
        "runtime": runner.describe(), "execution": execution,
        "dataset": str(data.spec.path), "split": data.cfg.split, "images": int(len(x)),
        "max_abs_diff": diff, "max_rel_diff": rel, "agreement": agree,
        "artifact_top1": float(100.0 * (out.argmax(1) == y).mean()) if len(x) else None,
        "reference_top1": float(100.0 * (ref.argmax(1) == y).mean()) if len(x) else None,
        "tolerance": dict(tol), "passed": bool(passed), "seconds": round(seconds, 3),
        **({"embedding": emb_check} if emb_check is not None else {}),
    }


def _embedding_check(emb: np.ndarray | None, ref: np.ndarray, tol: dict[str, float | None]) -> dict[str, Any]:
    """The second output against the source model's normalised embedding: max |difference| (the rows are unit
    vectors, so this is already relative, gated like the logits by ``max_rel_diff``), the worst cosine
    similarity, and how often each image's nearest neighbour is the same image (%)."""
    from ..metrics import l2_normalize, neighbour_agreement
    if emb is None or not len(ref):
        return {"images": 0, "passed": True}
    if emb.shape != ref.shape:
        return {"images": int(len(ref)), "shape": list(emb.shape), "expected_shape": list(ref.shape), "passed": False}
    diff = float(np.abs(emb - ref).max())
    cos = float(np.einsum("nd,nd->n", l2_normalize(emb), l2_normalize(ref)).min())
    gate = tol["max_rel_diff"]
    return {"images": int(len(ref)), "dim": int(ref.shape[1]), "max_abs_diff": diff, "min_cosine": cos,
            "neighbour_agreement": neighbour_agreement(emb, ref), "passed": bool(gate is None or diff <= gate)}


def _failure_reason(rt: dict[str, Any], tol: dict[str, float | None]) -> str:
    ex = rt.get("execution") or {}
    if not ex.get("precision_ok", True):
        eff, req = ex["effective"].get("precision"), ex["requested"].get("precision")
        from ..bench.sysinfo import low_precision_note
        return f"asked {ex['runtime']} for {req} arithmetic, it ran {eff}: {low_precision_note()}"
    if rt["agreement"] < (tol["min_agreement"] or 0):
        return f"agreement {rt['agreement']:.2f}% < {tol['min_agreement']}%"
    emb = rt.get("embedding")
    if emb and not emb["passed"]:
        if "max_abs_diff" not in emb:
            return f"embedding output of shape {emb['shape']}, expected {emb['expected_shape']}"
        return f"max embedding difference {emb['max_abs_diff']:.2e} > {tol['max_rel_diff']:.0e}"
    return f"max relative logit difference {rt['max_rel_diff']:.2e} > {tol['max_rel_diff']:.0e}"


# Per-target exceptions to TOLERANCE, each with its reason in edge_fgic/reference_defaults.yaml (none today).
TARGET_TOLERANCE: dict[tuple[str, str], dict[str, float | None]] = export_target_tolerance()


def _tolerance(cfg: ExportConfig, precision: str, target: str = "") -> dict[str, float | None]:
    tol = {**TOLERANCE[precision], **TARGET_TOLERANCE.get((target, precision), {})}
    if cfg.min_agreement is not None:
        tol["min_agreement"] = cfg.min_agreement
    if cfg.max_rel_diff is not None:
        tol["max_rel_diff"] = cfg.max_rel_diff
    return tol


# ---------------------------------------------------------------- the command


def default_out(cfg: ExportConfig) -> Path:
    return Path(cfg.model).expanduser().parent / "export"


def export(cfg: ExportConfig, *, progress: bool = True) -> list[ExportResult]:
    """Export ``cfg.model`` to one target (or every target with ``target='all'``); one command per --out."""
    from ..fileio import out_lock
    with out_lock(Path(cfg.out).expanduser() if cfg.out else default_out(cfg), "export"):
        return _export(cfg, progress)


def _export(cfg: ExportConfig, progress: bool) -> list[ExportResult]:
    from .profiles import load_profile
    ckpt = _load_source(cfg)
    profile = load_profile(cfg.profile) if cfg.profile else {}
    precision = cfg.precision
    _check_precision(cfg, ckpt, precision)
    names = list(TARGETS) if cfg.target == "all" else [get_target(cfg.target).name]
    out = Path(cfg.out).expanduser() if cfg.out else default_out(cfg)
    stem = cfg.name or Path(cfg.model).expanduser().resolve().parent.name
    data = _Data(cfg, ckpt, progress)
    results: list[ExportResult] = []
    for name in names:
        target = TARGETS[name]
        if precision not in target.precisions:
            results.append(ExportResult(name, precision, "skipped", message=f"{name} has no {precision} export"))
            continue
        missing = target.missing()
        if missing:
            msg = f"needs {', '.join(missing)}: {target.install_hint()}"
            if cfg.target != "all":
                raise UserError(f"--target {name} {msg}")
            results.append(ExportResult(name, precision, "skipped", message=msg))
            continue
        try:
            results.extend(_export_one(cfg, ckpt, target, precision, out, stem, profile, data, progress))
        except UserError as exc:
            if cfg.target != "all":
                raise
            results.append(ExportResult(name, precision, "skipped" if isinstance(exc, NotApplicable) else "failed",
                                        message=str(exc)))
    return results


def target_module(target: Target):
    """The module under edge_fgic/export/ that builds ``target`` (its ``export(job)`` and
    ``outputs(stem, precision)``)."""
    import importlib
    return importlib.import_module(f"edge_fgic.export.{target.module}")


def builder(target: Target) -> Callable:
    """The function that builds ``target`` from an ExportJob: in a child process where the table says ``isolate``."""
    if target.isolate:
        from .isolate import run_isolated
        return run_isolated
    return target_module(target).export


def _planned(target: Target, stem: str, precision: str) -> list[str]:
    return target_module(target).outputs(stem, precision)


def _export_one(cfg: ExportConfig, ckpt, target: Target, precision: str, out: Path, stem: str,
                profile: dict[str, Any], data: _Data, progress: bool) -> list[ExportResult]:
    planned = [out / n for n in _planned(target, stem, precision)]
    existing = [p for p in planned if p.exists() or sidecar_path(p).exists()]
    if existing and not cfg.overwrite:
        raise UserError(f"{existing[0]}: already exists; pass --overwrite to replace it, or --out another folder")
    model = ckpt.build_model().cpu().eval()
    if cfg.embedding:
        from .embedding import check_embedding
        check_embedding(model, precision, cfg.model)
    if precision == "int8" and target.name == "tflite":
        data.calibration()  # decode images now: forking image checks after litert-torch imports JAX can deadlock
    ref_key = "int8" if precision == "int8" else "fp32"
    ref = data.reference(ref_key, model)
    emb_ref = data.reference_embedding(ref_key, model) if cfg.embedding else None
    tol = _tolerance(cfg, precision, target.name)
    out.mkdir(parents=True, exist_ok=True)
    tmp = private_dir(out, f"export-{target.name}")  # and clears what a killed export left there
    results: list[ExportResult] = []
    try:
        job = ExportJob(cfg, ckpt, target, precision, model, tmp, stem, profile, data.calibration)
        t0 = time.perf_counter()
        with console.status(f"exporting {target.name} {precision} ...") if progress else nullcontext():
            built_list: list[Built] = _guard(cfg, target, precision, "converter", builder(target), job)
        build_s = time.perf_counter() - t0
        staged = []
        for built in built_list:
            manifest = Manifest.from_checkpoint(
                ckpt, target=target.name, precision=precision, file=built.artifact.name, layout=built.layout,
                input_dtype=built.input_dtype, batch=built.batch, converters=built.converters,
                quantization=built.quantization, options={**built.options, **({"profile": profile} if profile else {})},
                embedding=_embedding_spec(emb_ref, model, built.batch) if cfg.embedding else None)
            manifest.export["build_seconds"] = round(build_s, 2)
            if built.verify:
                rt = round_trip(built, manifest, data, ref, tol, cfg.threads, emb_ref)
                manifest.round_trip = rt
                if not rt["passed"]:
                    why = _failure_reason(rt, tol)
                    raise UserError(f"{built.artifact.name}: round trip in {rt['runtime']} failed on {rt['images']} "
                                    f"{rt['split']} images ({why}); nothing was written to {out}")
            if built.embed is not None:
                _guard(cfg, target, precision, "metadata writer", built.embed, built.artifact, manifest)
            staged.append((built, manifest))
        for built, manifest in staged:
            final = out / built.artifact.name
            files = [*built.files, built.artifact]
            side = {"sha256": {f.name: sha256_file(f) for f in files},
                    "size_bytes": sum(f.stat().st_size for f in files)}
            write_text(sidecar_path(final), dumps(replace(manifest, files=side)) + "\n")
            for f in [*built.extras, *built.files, built.artifact]:   # entry point last
                (out / f.name).unlink(missing_ok=True)
                f.replace(out / f.name)
            rt = manifest.round_trip
            results.append(ExportResult(target.name, precision, "ok" if built.verify else "unverified",
                                        str(final), "; ".join(built.notes), side["size_bytes"], round(build_s, 2), rt,
                                        [str(out / e.name) for e in built.extras]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def _embedding_spec(emb_ref: np.ndarray | None, model, batch: int | None):
    from .embedding import embedding_spec
    dim = int(emb_ref.shape[1]) if emb_ref is not None and emb_ref.ndim == 2 and emb_ref.shape[1] else \
        int(getattr(model, "num_features", 0))
    return embedding_spec(dim, batch)


def _guard(cfg: ExportConfig, target: Target, precision: str, what: str, fn: Callable, *args):
    """Run a converter step; a failure midway becomes one line (EDGE_FGIC_DEBUG=1 keeps the traceback)."""
    try:
        return fn(*args)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if debug_enabled():
            raise
        first = exc_line(exc, 240, last=True)
        raise UserError(f"{cfg.model}: the {target.name} {precision} {what} failed ({type(exc).__name__}: {first}); "
                        "nothing was written; set EDGE_FGIC_DEBUG=1 for the traceback") from None


def converter_versions(*names: str) -> dict[str, str]:
    return {n: package_version(n) for n in names if package_version(n)}
