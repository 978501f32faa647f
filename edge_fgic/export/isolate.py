"""Converters that can die in native code run in a process of their own.

litert-torch's MLIR/LLVM converter and ai-edge-quantizer call ``exit()`` or abort on some failures
(a full disk: ``LLVM ERROR: IO failure on output stream: No space left on device``), which skips every
``finally`` of the process that called them: the export command exited 1 with no message and left its
``.export-*`` folder with a ``.tflite.part`` behind. Here the target's ``export(job)`` runs in a
*spawned* child (not forked: a fork after torch's thread pools started can hang) that rebuilds the job
from the checkpoint path, the export options and the calibration images the parent already chose; its
stderr goes to a log file in the job's temp folder. The parent gets the child's ``Built`` list, or its
``UserError``, or — if the child died — one line with the exit status and the line the native code
printed last. The temp folder is the parent's: the exporter removes it whatever happened.

A target may do more native work in the child than convert: OpenVINO's exporter also compiles the IR
it saved for the CPU, with the settings the round trip will use (``openvino_runner.compile_cpu``),
so a CPU plugin that crashes on the model dies here, not in the exporting process. The child names
the step it is in (:func:`edge_fgic.native.stage`), and a death is reported with that step.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError, exc_line
from ..native import STAGE_ENV, log_line, native_workdir, read_stage, signal_text


def run_isolated(job) -> list:
    """``job.target``'s exporter in a spawned child; returns its ``Built`` list."""
    # the calibration images, the child's log and its result travel through the system temp folder (the
    # output disk is the converter's); one a killed export left there goes at the next start
    with native_workdir() as handoff:
        return _run(job, handoff)


def _run(job, handoff: Path) -> list:
    tmp = Path(job.tmp)
    spec: dict[str, Any] = {"cfg": dataclasses.asdict(job.cfg), "target": job.target.name, "precision": job.precision,
                            "tmp": str(tmp), "stem": job.stem, "profile": job.profile,
                            "log": str(handoff / "converter.log"),
                            "result": str(handoff / "converter.result.pkl"), "stage": str(handoff / "converter.stage"),
                            "calibration": None}
    if job.precision == "int8" and job.target.calibrates:
        images, record = job.calibration()
        np.save(handoff / "calibration.npy", np.concatenate(images) if images else np.zeros((0, 3, 1, 1), np.float32))
        spec["calibration"] = {"images": str(handoff / "calibration.npy"), "record": record}
    spec_path = handoff / "spec.json"
    spec_path.write_text(json.dumps(spec, default=str))
    # a fresh interpreter (not a fork: one after torch's thread pools started can hang), stdout unused
    proc = subprocess.Popen([sys.executable, "-m", "edge_fgic.export.isolate", str(spec_path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(10)
        raise
    result = Path(spec["result"])
    if result.exists():
        with open(result, "rb") as fh:
            out = pickle.load(fh)
        result.unlink()
        if out["ok"]:
            return out["built"]
        if out["user_error"]:
            raise UserError(out["message"])
        step = read_stage(spec["stage"], "converter")
        raise UserError(f"{job.cfg.model}: the {job.target.name} {job.precision} {step} failed ({out['message']}); "
                        "nothing was written")
    step = read_stage(spec["stage"], "converter")
    raise UserError(f"{job.cfg.model}: the {job.target.name} {job.precision} {step} died in native code "
                    f"({_status(proc.returncode)}): {last_words(Path(spec['log']))}; nothing was written "
                    f"(unless the disk or memory ran out, try another {' / '.join(job.target.packages)} release)")


def _status(code: int | None) -> str:
    return signal_text(code)


def last_words(log: Path, limit: int = 240) -> str:
    """The most telling line of a converter's stderr (:func:`edge_fgic.native.telling_line`)."""
    return log_line(log, limit)


def _child(spec: dict[str, Any]) -> None:
    """In the spawned process: rebuild the job, export, pickle the outcome next to the artifact."""
    import faulthandler
    log = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)                                  # native code's own prints land in the log
    os.environ["EDGE_FGIC_NATIVE_LOG"] = spec["log"]  # and so do those quiet_native_logs() holds back
    os.environ[STAGE_ENV] = spec["stage"]             # the step a death happened in (native.stage)
    faulthandler.enable()                             # a fatal signal's Python frame, after what native code said
    try:
        out = {"ok": True, "built": _export(spec)}
    except UserError as exc:
        out = {"ok": False, "user_error": True, "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the parent's _guard turns it into one line
        first = exc_line(exc, 240, last=True)
        out = {"ok": False, "user_error": False, "message": f"{type(exc).__name__}: {first}"}
    tmp = spec["result"] + ".tmp"
    with open(tmp, "wb") as fh:
        pickle.dump(out, fh)
    os.replace(tmp, spec["result"])


def _export(spec: dict[str, Any]) -> list:
    from ..models.checkpoint import load_checkpoint
    from ..targets import TARGETS
    from .exporter import ExportConfig, ExportJob, target_module
    cfg = ExportConfig(**spec["cfg"])
    ckpt = load_checkpoint(cfg.model)
    model = ckpt.build_model().cpu().eval()
    calib = spec["calibration"]
    if calib:
        images = np.load(calib["images"])
        chosen = ([images[i:i + 1] for i in range(len(images))], calib["record"])
    else:
        chosen = ([], {})
    target = TARGETS[spec["target"]]
    job = ExportJob(cfg, ckpt, target, spec["precision"], model, Path(spec["tmp"]), spec["stem"], spec["profile"],
                    lambda: chosen)
    return target_module(target).export(job)


if __name__ == "__main__":  # python -m edge_fgic.export.isolate SPEC.json (what run_isolated starts)
    _child(json.loads(Path(sys.argv[1]).read_text()))
