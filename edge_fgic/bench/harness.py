"""``edge-fgic bench``: every artifact on every image of a split, against the FP32 reference.

Each artifact (and the reference) runs in its own worker process (:mod:`.worker`): cold start,
first inference, logits on all images, warm latency, throughput, peak memory. The harness then
computes accuracy, the drop against the reference with a paired bootstrap CI, agreement,
McNemar's test and per-class drift, and writes bench.json / bench.md / drift.csv / pareto.png.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..fileio import write_json
from ..manifest import ArtifactInfo, InputSpec, Manifest, read_manifest
from ..targets import BENCH_DEVICES, artifact_suffixes, target_of
from . import on_device, stats
from .reference import bench_max_drop, gated
from .reference_model import have, pick_reference

SCHEMA_VERSION = 1
SUFFIXES = artifact_suffixes()  # what bench collects from a folder: the target table's artifacts (and .pt checkpoints)


@dataclass
class BenchConfig:
    artifacts: list[str]
    data: str = ""
    split: str = "val"
    reference: str = ""
    target: str = "cpu"
    threads: int = 0
    max_drop: float = bench_max_drop()   # edge_fgic/reference_defaults.yaml
    out: str = ""
    runs: int = 100
    warmup: int = 10
    batch: int = 8
    max_images: int = 0
    n_boot: int = 2000
    timeout_s: float = 600.0
    roofline: bool = True
    rounds: int = 1              # timing rounds over all artifacts: this VM's speed drifts over minutes
    # for artifacts without a manifest (someone else's export): all three are needed, nothing is guessed
    input_size: int = 0
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    labels: str = ""
    # opt-in extra rows, each labelled: arithmetic a runtime may be asked for on a CPU (bf16, f16), and
    # lower instruction sets the oneDNN-based runtimes (OpenVINO, torch) are capped to (ONEDNN_MAX_CPU_ISA)
    compute_precisions: list[str] = field(default_factory=list)
    isa_levels: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # --remote: every exported artifact runs on that device (edge_fgic/remote); the reference and .pt checkpoints here
    remote: str = ""                 # ssh://user@host[:port]
    ssh_config: str = ""             # passed as ssh -F
    remote_exe: str = "edge-fgic"    # the device's edge-fgic command
    remote_dir: str = ""             # where the device's work folder goes (default: the device's temp folder)


@dataclass(frozen=True)
class Variant:
    """How a worker runs an artifact: as exported (the default), or as an opt-in labelled extra row."""
    label: str = ""                 # "" = the artifact as deployed
    precision: str = "auto"         # Runner(precision=...)
    isa: str = ""                   # ONEDNN_MAX_CPU_ISA for the worker process

    @property
    def env(self) -> dict[str, str]:
        return {"ONEDNN_MAX_CPU_ISA": self.isa} if self.isa else {}


DEFAULT = Variant()
# oneDNN ISA caps, lowest first (oneDNN's names); a level is offered where this CPU has its flags
ISA_LEVELS: dict[str, tuple[str, ...]] = {
    "SSE41": ("sse4_1",), "AVX2": ("avx2", "fma"), "AVX512_CORE": ("avx512f", "avx512bw", "avx512vl"),
    "AVX512_CORE_VNNI": ("avx512_vnni",), "AVX512_CORE_BF16": ("avx512_bf16",),
    "AVX512_CORE_AMX": ("amx_int8", "amx_bf16"),
}
# runtimes whose CPU kernels come from oneDNN and honour ONEDNN_MAX_CPU_ISA (kernel names read back show it);
# onnxruntime (MLAS) and LiteRT (XNNPACK) pick their kernels from cpuid and have no such switch
ISA_CAPPABLE = ("openvino", "torch")


def isa_levels_here() -> list[str]:
    """The oneDNN ISA levels this CPU offers (each includes the ones before it)."""
    from .sysinfo import cpu_flags
    flags = cpu_flags()
    levels: list[str] = []
    for name, need in ISA_LEVELS.items():
        if not all(f in flags for f in need):
            break
        levels.append(name)
    return levels


def variants(cfg: "BenchConfig", backend: str) -> list[Variant]:
    """The opt-in extra rows for an artifact of ``backend``: compute precisions its runner offers, ISA caps."""
    from ..runtime import runner_for
    out: list[Variant] = []
    offered = runner_for(backend).compute_precisions
    out += [Variant(label=p, precision=p) for p in cfg.compute_precisions if p in offered and p != "f32"]
    if backend in ISA_CAPPABLE:
        out += [Variant(label=level, isa=level) for level in cfg.isa_levels]
    return out


def collect(paths: list[str]) -> list[Path]:
    """Files as given; folders -> the artifacts inside (sorted)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.iterdir() if f.suffix in SUFFIXES and not f.name.startswith("."))
        elif p.exists():
            found.append(p)
        else:
            raise UserError(f"{p}: no such artifact or folder")
    if not found:
        raise UserError(f"{', '.join(paths)}: no artifacts found ({', '.join(SUFFIXES)} or .pt)")
    return found


def preprocessed_images(spec, split: str, inp: InputSpec, max_images: int, work: Path,
                        cache: dict) -> tuple[Path, float, np.ndarray]:
    """A split's first ``max_images`` images (0 = all) preprocessed as ``inp`` (a manifest's input) says, as
    .npy (NCHW float32; each runner does its own layout), ms per image to decode + transform, and the labels.
    Artifacts with equal preprocessing share one file (``cache``, keyed by :meth:`InputSpec.key`). NumPy +
    Pillow preprocessing, bit-identical to torchvision's eval transform: no torch."""
    key = inp.key()
    if key in cache:
        return cache[key]
    from ..data.datasets import open_split
    from ..data.images import load_rgb
    from ..data.transforms import PreprocessConfig, eval_array
    ds, pre = open_split(spec, split, progress=False), PreprocessConfig(**inp.preprocess())
    n = len(ds) if max_images <= 0 else min(max_images, len(ds))
    t0 = time.perf_counter()
    x = np.stack([eval_array(load_rgb(path), pre) for path, _ in ds.samples[:n]]).astype(np.float32)
    ms = 1000 * (time.perf_counter() - t0) / max(n, 1)
    path = work / f"images-{len(cache)}.npy"
    np.save(path, x)
    cache[key] = (path, ms, np.asarray(ds.targets[:n], dtype=np.int64))
    return cache[key]


def _run_worker(artifact: Path, manifest: Manifest | None, images: Path, cfg: BenchConfig, work: Path, idx: int,
                variant: Variant = DEFAULT) -> tuple[dict, np.ndarray | None]:
    """One artifact in a worker process of its own: here, or with --remote in the device's own install."""
    from .worker import run_in_process
    spec = {"artifact": str(artifact), "manifest": manifest.to_dict() if manifest else None, "images": str(images),
            "threads": cfg.threads,
            "precision": variant.precision, "target": cfg.target,
            "device": "cuda" if cfg.target in ("cuda", "jetson") else "cpu", "runs": cfg.runs, "warmup": cfg.warmup,
            "batch": cfg.batch, "logits": str(work / f"logits-{idx}.npy"), "result": str(work / f"result-{idx}.json")}
    device = on_device.current(artifact)
    if device is not None:
        return on_device.run(device, spec, artifact, manifest, images, cfg, work, idx, variant)
    result = run_in_process(spec, work / f"spec-{idx}.json", cfg.timeout_s, variant.env)
    result["artifact"] = str(artifact)
    logits = np.load(spec["logits"]) if result.get("status") == "ok" else None
    return result, logits


def run_bench(cfg: BenchConfig, *, progress: bool = True) -> dict[str, Any]:
    """Bench ``cfg.artifacts`` into ``cfg.out`` (default runs/bench-<time>); one command per --out."""
    from ..fileio import out_lock
    if not cfg.out:
        cfg.out = str(Path("runs") / f"bench-{_dt.datetime.now():%Y%m%d-%H%M%S}")
    with out_lock(cfg.out, "bench"):
        return _run_bench(cfg, progress=progress)


def _run_bench(cfg: BenchConfig, *, progress: bool = True) -> dict[str, Any]:
    from ..progress import track
    if cfg.target not in BENCH_DEVICES:
        raise UserError(f"--target {cfg.target}: unknown device; choose one of {', '.join(BENCH_DEVICES)}")
    offered = isa_levels_here()
    for level in cfg.isa_levels:
        if level not in ISA_LEVELS:
            raise UserError(f"--isa {level}: unknown level; choose from {', '.join(ISA_LEVELS)}")
        if level not in offered:
            raise UserError(f"--isa {level}: this CPU cannot run it "
                            f"(it offers {', '.join(offered) or 'none of them'}); "
                            "a runtime can only be capped below what the CPU has")
    files = collect(cfg.artifacts)
    manifests: list[Manifest | None] = []
    for f in files:
        try:
            manifests.append(None if f.suffix == ".pt" else read_manifest(f))
        except UserError:
            manifests.append(None)
    ref = pick_reference(cfg.reference, files, manifests)  # a checkpoint, or an FP32 artifact where none can run
    spec = ref.data(cfg.data or None, cfg.split)
    ref_path, ref_manifest, classes = ref.path, ref.manifest, ref.classes
    out = Path(cfg.out) if cfg.out else Path("runs") / f"bench-{_dt.datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    from ..fileio import private_workdir
    with private_workdir(out, "bench") as tmp, on_device.session(cfg, ref_path) as device:  # a killed bench's folder is
        # cleared here next time; the device's goes when its agent ends (also when the connection drops)
        work, cache = Path(tmp), {}
        _, _, labels = preprocessed_images(spec, cfg.split, ref_manifest.input, cfg.max_images, work, cache)
        same = Path(ref_path).resolve()
        jobs = [(Path(ref_path), ref_manifest, True)] + [(f, m, False) for f, m in zip(files, manifests)
                                                         if f.resolve() != same]
        ref_logits = None
        inputs: dict[int, tuple[Path, Manifest | None, Path, Variant]] = {}  # row index -> what its worker was given
        for i, (f, m, is_ref) in enumerate(track(jobs, len(jobs), "bench", progress)):
            label = f"{f.parent.name}/{f.name}" if f.suffix == ".pt" else f.name  # checkpoints are all best.pt
            row: dict[str, Any] = {"artifact": str(f), "name": ("reference: " if is_ref else "") + label,
                                   "reference": is_ref, "size_mb": _size_mb(f)}
            if f.suffix == ".pt" and m is None:
                m = _pt_manifest(f)
            if m is None:
                m = _explicit_manifest(cfg, f, ref_manifest.input)
            if m is None:
                rows.append({**row, "status": "failed",
                             "reason": f"{f}: no manifest (no {f.name}.json and none inside); "
                                       "re-export it with `edge-fgic export`, or pass "
                                       "--input-size, --mean, --std and --labels"})
                continue
            row.update(target=m.artifact.target, precision=m.artifact.precision,
                       source_checkpoint=str(f) if f.suffix == ".pt" else m.source.get("checkpoint"))
            if m.classes != classes:
                rows.append({**row, "status": "failed",
                             "reason": f"its {len(m.classes)} classes differ from {spec.path}'s {len(classes)}"})
                continue
            imgs, ms, _ = preprocessed_images(spec, cfg.split, m.input, cfg.max_images, work, cache)
            inputs[len(rows)] = (f, m if f.suffix != ".pt" else None, imgs, DEFAULT)
            result, logits = _run_worker(*inputs[len(rows)][:3], cfg, work, i)
            row.update(result, preprocess_ms=ms)
            if logits is not None:
                if is_ref:
                    ref_logits = logits
                row.update(_accuracy(logits, labels, ref_logits, classes, cfg))
            rows.append(row)
        _variant_rows(cfg, rows, inputs, labels, ref_logits, classes, work, progress)
        timed = [(k, r) for k, r in enumerate(rows) if r.get("status") == "ok"]
        for rnd in range(1, max(1, cfg.rounds)):  # more rounds, artifacts in turn: drift hits them all alike
            for k, r in track(timed, len(timed), f"timing round {rnd + 1}/{cfg.rounds}", progress):
                f, wm, imgs, variant = inputs[k]
                extra, _ = _run_worker(f, wm, imgs, cfg, work, 1000 * rnd + k, variant)
                if extra.get("status") == "ok":
                    _pool_timing(r, extra)
    if ref_logits is None:
        raise UserError(f"{ref_path}: the reference model failed ({rows[0].get('reason')})")
    for row in rows:
        # the gate judges deployable artifacts; checkpoints (.pt, e.g. the teacher) are listed for comparison
        # and bf16/f16 rows asked for on top are shown for comparison too; ISA-capped rows are gated (real machines)
        row["gated"] = gated(row)
        row["passed"] = row.get("status") == "ok" and (not row["gated"] or row.get("drop") is None
                                                       or row["drop"] <= cfg.max_drop)
        ex = row.get("execution") or {}
        # never a silent lower precision
        if row.get("status") == "ok" and row["gated"] and not ex.get("precision_ok", True):
            from .sysinfo import low_precision_note
            row["passed"] = False
            row["reason"] = (f"asked {ex.get('runtime')} for {ex['requested'].get('precision')}, it ran "
                             f"{ex['effective'].get('precision')} ({low_precision_note()})")
    roofline, notes = None, []
    if cfg.roofline and cfg.target == "cpu" and not have("torch"):
        notes.append("roofline skipped: it counts the MACs on the PyTorch model and torch is not installed "
                     '(pip install "edge-fgic[train]")')
    elif cfg.roofline and cfg.target == "cpu":
        from .roofline import bench_roofline  # torch: only when asked for
        roofline = bench_roofline([r for r in rows if not r.get("where")], cfg.threads)  # this CPU's peaks
    report = {"schema": "edge-fgic/bench", "schema_version": SCHEMA_VERSION,
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "config": {**asdict(cfg), "reference": ref_path, "data": str(spec)}, "images": int(len(labels)),
              "classes": classes, "rows": rows, "machine": _machine(cfg), "roofline": roofline,
              "devices": {device.url: device.record()} if device else {},
              "reference": ref.record(), "notes": notes, "passed": all(r["passed"] for r in rows)}
    from .report import write_reports
    report["files"] = write_reports(report, out)
    write_json(out / "bench.json", report)
    return report


def _variant_rows(cfg: BenchConfig, rows: list[dict], inputs: dict, labels: np.ndarray, ref_logits: np.ndarray | None,
                  classes: list[str], work: Path, progress: bool) -> None:
    """The opt-in labelled rows (``--compute-precision``, ``--isa``), after every artifact's own row."""
    from ..progress import track
    from ..runtime.base import backend_of
    if not (cfg.compute_precisions or cfg.isa_levels):
        return
    plan = [(k, v) for k in sorted(inputs) if rows[k].get("status") == "ok"
            for v in variants(cfg, backend_of(inputs[k][0]))]
    for k, v in track(plan, len(plan), "extra rows", progress):
        base, (f, wm, imgs, _) = rows[k], inputs[k]
        row = {key: base[key] for key in ("artifact", "size_mb", "target", "precision", "source_checkpoint",
                                          "preprocess_ms")
               if key in base}
        row.update(name=f"{base['name'].replace('reference: ', '')} [{v.label}]", reference=False,
                   variant={"label": v.label, "precision": v.precision, "isa": v.isa or None})
        result, logits = _run_worker(f, wm, imgs, cfg, work, 10_000 + len(rows), v)
        row.update(result)
        if logits is not None:
            row.update(_accuracy(logits, labels, ref_logits, classes, cfg))
        inputs[len(rows)] = (f, wm, imgs, v)
        rows.append(row)


def _explicit_manifest(cfg: BenchConfig, f: Path, ref_input: InputSpec) -> Manifest | None:
    """A manifest from --input-size/--mean/--std/--labels for an artifact that carries none."""
    if not (cfg.input_size and cfg.mean and cfg.std and cfg.labels):
        return None
    labels_path = Path(cfg.labels)
    if not labels_path.is_file():
        raise UserError(f"{labels_path}: no such labels file (one class name per line, in the model's output order)")
    classes = [ln.strip() for ln in labels_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    row = target_of(f)
    target = row.name if row else "?"
    return Manifest(classes=classes, artifact=ArtifactInfo(file=f.name, target=target, precision="unknown"),
                    input=InputSpec(input_size=int(cfg.input_size), mean=list(cfg.mean), std=list(cfg.std),
                                    interpolation=ref_input.interpolation, crop_pct=ref_input.crop_pct,
                                    layout=row.layout if row else "NCHW"),
                    export={"from": "command-line flags"})


def _pt_manifest(f: Path) -> Manifest:
    from ..models.checkpoint import load_checkpoint
    ck = load_checkpoint(f)
    return Manifest.from_checkpoint(ck, target="torch", file=f.name, precision="int8" if ck.is_quantized else "fp32")


def _pool_timing(row: dict, extra: dict) -> None:
    """Add another round's latency samples to a row; throughput is the median over rounds."""
    from .worker import _percentiles
    samples = row.get("latency_samples_ms", []) + extra.get("latency_samples_ms", [])
    row["latency_samples_ms"] = samples
    row["latency_ms"] = _percentiles(samples)
    row["fps_batch1"] = 1000.0 / row["latency_ms"]["p50"]
    row.setdefault("fps_batch_rounds", [row["fps_batch"]]).append(extra["fps_batch"])
    row["fps_batch"] = float(np.median(row["fps_batch_rounds"]))
    row["rounds"] = len(row["fps_batch_rounds"])


def _size_mb(f: Path) -> float:
    """The artifact and its companions (the table's: OpenVINO's .bin)."""
    row = target_of(f)
    parts = [f, *(f.with_suffix(c) for c in (row.companions if row else ()))]
    return sum(p.stat().st_size for p in parts if p.exists()) / 1e6


def _accuracy(logits: np.ndarray, labels: np.ndarray, ref_logits: np.ndarray | None, classes: list[str],
              cfg: BenchConfig) -> dict:
    acc = stats.accuracy_metrics(logits, labels, len(classes))
    out: dict[str, Any] = {"top1": acc["top1"], "top5": acc["top5"], "macro_f1": acc["macro_f1"]}
    if ref_logits is None:
        return out
    rp, ap = ref_logits.argmax(1), logits.argmax(1)
    boot = stats.paired_bootstrap_drop(rp == labels, ap == labels, n_boot=cfg.n_boot)
    out.update(drop=boot["drop"], drop_ci=[boot["ci_low"], boot["ci_high"]], agreement=stats.agreement(rp, ap),
               mcnemar=stats.mcnemar(rp == labels, ap == labels),
               max_abs_logit_diff=float(np.abs(logits - ref_logits).max()),
               drift=stats.per_class_drift(rp, ap, labels, classes),
               confusable_pairs=stats.confusable_pair_drift(rp, ap, labels, classes))
    return out


def _machine(cfg: BenchConfig) -> dict:
    try:
        from .sysinfo import system_report
        return system_report()
    except ImportError:  # pragma: no cover
        import platform
        return {"os": platform.platform()}
