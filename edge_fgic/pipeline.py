"""``edge-fgic pipeline``: teacher -> student -> qat -> export -> bench, resumable.

Each stage writes under ``<out>/<stage>/`` and, when it finishes, ``<out>/<stage>/stage.json``: the
SHA-256 of its inputs (upstream checkpoints/artifacts) and of its options. A rerun skips a stage
whose record matches, resumes a training stage from its ``last.pt`` (at most the epoch in flight is
lost), and redoes a stage whose inputs changed (and so every stage after it).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError
from .fileio import sha256_file, write_json
from .progress import console

STAGES = ("teacher", "student", "qat", "export", "bench")
SECTION_KEYS = {"teacher", "student", "qat", "export", "bench", "description"}

# The embedded default (no --config; `make demo`). Kept identical to train/pipeline-synthetic.yaml by a
# test, with the teacher's recipe being the embedded DEMO_RECIPE (= train/synthetic.yaml).
DEMO_PIPELINE: dict[str, Any] = {
    "teacher": {"recipe": "train/synthetic.yaml", "epochs": 18, "gradcam": 0},
    "student": {"model_kwargs": {"depths": [1, 1, 1, 1], "dims": [16, 32, 64, 128], "conv_mlp": True,
                                 "norm_layer": "batchnorm2d", "act_layer": "relu"},
                "epochs": 16, "kd_weight": 0.7, "gradcam": 0},
    "qat": {"epochs": 1, "signed": True, "overflow_fix": "enable"},
    "export": {"targets": "all", "precisions": ["fp32", "int8"]},
    "bench": {"split": "val", "max_drop": 2.0, "runs": 30},
}


@dataclass
class PipelineConfig:
    config: str = ""                 # pipeline YAML (sections per stage) or a plain training recipe (the teacher's)
    data: str = ""                   # KIND=PATH for every stage (overrides the recipe)
    out: str = "runs/pipeline"
    from_stage: str = "teacher"
    until: str = "bench"
    device: str = "auto"
    seed: int | None = None
    force: bool = False              # redo the selected stages even when their records match
    sections: dict[str, Any] = field(default_factory=dict)


def load_pipeline(path: str | None) -> dict[str, Any]:
    """Sections per stage: the embedded default, a pipeline YAML, or a training recipe (-> the teacher's)."""
    if not path:
        return copy.deepcopy(DEMO_PIPELINE)
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: pipeline config not found; see train/pipeline-*.yaml (or pass a training recipe)")
    try:
        d = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{p}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(d, dict):
        raise UserError(f"{p}: expected a mapping of stage sections (teacher, student, qat, export, bench)")
    if not (set(d) & set(STAGES)):  # a plain training recipe: it trains the teacher, the rest is default
        sections = copy.deepcopy(DEMO_PIPELINE)
        sections["teacher"] = {"recipe": str(p)}
        sections["student"].pop("model_kwargs", None)  # the student keeps the teacher's shape by default
        return sections
    unknown = set(d) - SECTION_KEYS
    if unknown:
        raise UserError(f"{p}: unknown section(s) {', '.join(sorted(unknown))}; allowed: {', '.join(STAGES)}")
    d.pop("description", None)
    sections = {s: dict(d.get(s) or {}) for s in STAGES}
    # recipe paths are written from the repo root (train/...): also find them from elsewhere
    for sec in sections.values():
        r = sec.get("recipe")
        if r and not Path(r).is_absolute() and not Path(r).is_file():
            found = next((c for c in (p.parent / r, p.parent.parent / r) if c.is_file()), None)
            if found is not None:
                sec["recipe"] = str(found)
    return sections


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _record_path(out: Path, stage: str) -> Path:
    return out / stage / "stage.json"


def _is_current(out: Path, stage: str, key: dict[str, Any]) -> bool:
    rec = _record_path(out, stage)
    if not rec.exists():
        return False
    try:
        old = json.loads(rec.read_text())
    except json.JSONDecodeError:
        return False
    return old.get("status") == "done" and old.get("key") == _digest(key)


def _teacher_recipe(sections: dict[str, Any], cfg: PipelineConfig) -> dict[str, Any]:
    from .training.config import DEMO_RECIPE, load_recipe
    sec = dict(sections["teacher"])
    recipe = sec.pop("recipe", None)
    if recipe in (None, "train/synthetic.yaml") and not (recipe and Path(recipe).is_file()):
        fields = copy.deepcopy(DEMO_RECIPE)  # the installed package needs no repo files for the default
    else:
        fields = load_recipe(recipe)
    fields.update(sec)
    if cfg.data:
        fields["data"] = cfg.data
    if cfg.seed is not None:
        fields["seed"] = cfg.seed
    return fields


def run_pipeline(cfg: PipelineConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the stages ``from_stage..until``. One pipeline per --out at a time (the stages lock
    their own folders too). Returns ``out``; ``stages``, the per-stage records; ``bench``, the whole bench
    report when the bench stage is in the range (read back from its bench.json when it was up to date);
    ``failed_exports``; and ``passed``: the bench gate passed (or did not run) and no export failed."""
    from .fileio import out_lock
    with out_lock(cfg.out, "pipeline"):
        return _run_pipeline(cfg, progress=progress)


def _run_pipeline(cfg: PipelineConfig, *, progress: bool = True) -> dict[str, Any]:
    if cfg.from_stage not in STAGES or cfg.until not in STAGES:
        raise UserError(f"--from/--until: choose stages from {', '.join(STAGES)}")
    lo, hi = STAGES.index(cfg.from_stage), STAGES.index(cfg.until)
    if lo > hi:
        raise UserError(f"--from {cfg.from_stage} comes after --until {cfg.until}")
    sections = cfg.sections or load_pipeline(cfg.config)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    records: dict[str, Any] = {}
    bench_report: dict[str, Any] | None = None
    changed = False  # once a stage reran, everything after it reruns too (its inputs changed)
    for i, stage in enumerate(STAGES):
        if i < lo:
            if not _record_path(out, stage).exists():
                raise UserError(f"{out / stage}: stage {stage} has not run yet; start from it (--from {stage})")
            continue
        if i > hi:
            break
        key = _stage_key(stage, sections, cfg, out)
        if not cfg.force and not changed and _is_current(out, stage, key):
            console.print(f"[dim]{stage:<8} up to date (inputs unchanged), skipped[/]")
            records[stage] = json.loads(_record_path(out, stage).read_text())
            continue
        changed = True
        rec_path = _record_path(out, stage)
        if rec_path.exists():
            try:
                old_key = json.loads(rec_path.read_text()).get("key")
            except json.JSONDecodeError:
                old_key = None
            if old_key != _digest(key) or cfg.force:  # other inputs or options: start this stage over
                shutil.rmtree(out / stage)
        write_json(rec_path, {"stage": stage, "status": "running", "key": _digest(key)})  # a rerun resumes only this
        console.rule(f"[bold]{stage}")
        t0 = time.perf_counter()
        info = _RUNNERS[stage](sections, cfg, out, progress)
        if stage == "bench":
            bench_report = info.pop("bench")  # for the caller; the record keeps the report's paths
        rec = {"stage": stage, "status": "done", "key": _digest(key), "inputs": key,
               "seconds": round(time.perf_counter() - t0, 1), **info}
        write_json(_record_path(out, stage), rec)
        records[stage] = rec
    if "bench" in records and bench_report is None:  # up to date: its report is the one it wrote then
        bench_report = json.loads(Path(records["bench"]["report"]["bench.json"]).read_text())
    failed = (records.get("export") or {}).get("failed") or []
    passed = (bench_report is None or bool(bench_report["passed"])) and not failed
    return {"out": str(out), "stages": records, "bench": bench_report, "failed_exports": failed, "passed": passed}


def _stage_key(stage: str, sections: dict[str, Any], cfg: PipelineConfig, out: Path) -> dict[str, Any]:
    """What a stage depends on: its options and the hashes of the files it reads."""
    def h(p: Path) -> str:
        return sha256_file(p) if p.exists() else "missing"
    opts = {"options": sections.get(stage), "device": cfg.device}
    if stage == "teacher":
        return {**opts, "recipe": _teacher_recipe(sections, cfg)}
    if stage == "student":
        return {**opts, "teacher": h(out / "teacher" / "best.pt"), "data": cfg.data, "seed": cfg.seed}
    if stage == "qat":
        return {**opts, "student": h(out / "student" / "best.pt"), "data": cfg.data, "seed": cfg.seed}
    if stage == "export":
        return {**opts, "student": h(out / "student" / "best.pt"), "qat": h(out / "qat" / "best.pt"), "data": cfg.data}
    exports = sorted((out / "export").glob("*.json")) if (out / "export").is_dir() else []
    return {**opts, "teacher": h(out / "teacher" / "best.pt"), "student": h(out / "student" / "best.pt"),
            "artifacts": {p.name: h(p) for p in exports}, "data": cfg.data}


def _resume(folder: Path) -> bool:
    """Resume only a run this stage started with the same inputs (its record says 'running' with this key)."""
    return (folder / "last.pt").exists()


def _teacher(sections, cfg: PipelineConfig, out: Path, progress: bool) -> dict[str, Any]:
    from .training.config import TrainConfig
    from .training.trainer import train
    fields = _teacher_recipe(sections, cfg)
    fields.update(out=str(out / "teacher"), device=cfg.device)
    res = train(TrainConfig.from_dict(fields, "pipeline teacher"), resume=_resume(out / "teacher"), progress=progress)
    return {"checkpoint": str(res.best), "metrics": _metrics(res.best)}


def _student(sections, cfg: PipelineConfig, out: Path, progress: bool) -> dict[str, Any]:
    from .models import load_checkpoint
    from .training.distill import distill_config
    from .training.trainer import train
    teacher = out / "teacher" / "best.pt"
    sec = dict(sections["student"])
    recipe = sec.pop("recipe", None)
    overrides = {**sec, "out": str(out / "student")}
    if cfg.data:
        overrides["data"] = cfg.data
    if cfg.seed is not None:
        overrides["seed"] = cfg.seed
    tcfg = distill_config(teacher, load_checkpoint(teacher), recipe=recipe, overrides=overrides, device=cfg.device,
                          keep_student_shape="model" not in sec)
    res = train(tcfg, resume=_resume(out / "student"), progress=progress)
    return {"checkpoint": str(res.best), "metrics": _metrics(res.best)}


def _qat(sections, cfg: PipelineConfig, out: Path, progress: bool) -> dict[str, Any]:
    from .quant.nncf_quant import QuantConfig, run_quantize
    sec = dict(sections["qat"])
    q = QuantConfig(model=str(out / "student" / "best.pt"), mode=sec.pop("mode", "qat"), out=str(out / "qat"),
                    signed_activations=bool(sec.pop("signed", True)), data=cfg.data, device=cfg.device,
                    **({"seed": cfg.seed} if cfg.seed is not None else {}))
    for k, v in sec.items():
        if not hasattr(q, k):
            raise UserError(f"pipeline qat: unknown option {k!r}; see `edge-fgic quantize --help`")
        setattr(q, k, v)
    report = run_quantize(q, resume=_resume(out / "qat"), progress=progress)
    return {"checkpoint": report["checkpoint"], "val": report["val"]}


def _export(sections, cfg: PipelineConfig, out: Path, progress: bool) -> dict[str, Any]:
    from .export.exporter import ExportConfig, export
    sec = dict(sections["export"])
    folder = out / "export"
    _clear(folder)  # a fresh set: no artifact of an older student may survive next to the new ones
    results = []
    for precision in sec.pop("precisions", ["fp32", "int8"]):
        model = out / ("qat" if precision == "int8" else "student") / "best.pt"
        ecfg = ExportConfig(model=str(model), target=sec.get("targets", "all"), precision=precision, out=str(folder),
                            name="student", data=cfg.data)
        for k, v in sec.items():
            if k != "targets":
                if not hasattr(ecfg, k):
                    raise UserError(f"pipeline export: unknown option {k!r}; see `edge-fgic export --help`")
                setattr(ecfg, k, v)
        results += export(ecfg, progress=progress)
    rows = [{"target": r.target, "precision": r.precision, "status": r.status, "artifact": r.artifact,
             "message": r.message} for r in results]
    for r in rows:
        style = {"ok": "green", "failed": "red", "skipped": "yellow"}.get(r["status"], "")
        console.print(f"[{style}]{r['status']:<8}[/] {r['target']:<9} {r['precision']:<5} "
                      f"{Path(r['artifact']).name if r['artifact'] else r['message']}", soft_wrap=True, highlight=False)
    # a failed export (its round trip broke the gate) leaves no artifact; the others go on to bench and the
    # pipeline's exit code reports the failure at the end
    return {"artifacts": rows, "failed": [r for r in rows if r["status"] == "failed"]}


def _clear(folder: Path) -> None:
    """Empty a stage folder but for its own record (``stage.json`` says 'running': what a rerun after an
    interruption reads), including the hidden temp folders a killed export or bench leaves behind."""
    for p in (folder.iterdir() if folder.exists() else []):
        if p.name != "stage.json":
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def _bench(sections, cfg: PipelineConfig, out: Path, progress: bool) -> dict[str, Any]:
    from .bench.harness import BenchConfig, run_bench
    sec = dict(sections["bench"])
    _clear(out / "bench")  # a SIGKILLed run's worker folder (.bench-*) must not outlive it
    bcfg = BenchConfig(artifacts=[str(out / "teacher" / "best.pt"), str(out / "export")],
                       reference=str(out / "student" / "best.pt"), data=cfg.data, out=str(out / "bench"))
    for k, v in sec.items():
        if not hasattr(bcfg, k):
            raise UserError(f"pipeline bench: unknown option {k!r}; see `edge-fgic bench --help`")
        setattr(bcfg, k, v)
    report = run_bench(bcfg, progress=progress)
    return {"report": report["files"], "passed": report["passed"], "bench": report}


def _metrics(best: Path) -> dict[str, Any]:
    from .models import load_checkpoint
    m = load_checkpoint(best).metrics or {}
    return {k: m[k] for k in ("val_top1", "test_top1", "epoch") if k in m}


_RUNNERS = {"teacher": _teacher, "student": _student, "qat": _qat, "export": _export, "bench": _bench}


def print_pipeline(res: dict[str, Any]) -> None:
    """What ``edge-fgic pipeline`` prints at the end: seconds and result per stage, the bench table and the
    report's path, and every export that failed."""
    from rich.text import Text

    from .bench.report import terminal_table
    console.print(Text("stage     seconds  result", style="bold"))
    for name, rec in res["stages"].items():
        what = (rec.get("checkpoint") or (rec.get("report") or {}).get("bench.md")
                or f"{len(rec.get('artifacts', []))} artifacts")
        console.print(Text(f"{name:<9} {rec.get('seconds', 0):>7.1f}  {what}"), soft_wrap=True)
    if res["bench"] is not None:
        console.print(terminal_table(res["bench"], console.width))
        console.print(Text.assemble(("report  ", "bold"), res["stages"]["bench"]["report"]["bench.md"]), soft_wrap=True)
    for r in res["failed_exports"]:
        console.print(Text(f"✗ export {r['target']} {r['precision']}: {r['message']}", style="red"), soft_wrap=True)
