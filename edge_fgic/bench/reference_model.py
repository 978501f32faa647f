"""Which model is a bench's FP32 reference (row 0 of the report: every drop is measured against it), and
which dataset the bench measures on.

* ``--reference``: a checkpoint (.pt, which needs torch) or an exported FP32 artifact, whose manifest gives
  the classes, the preprocessing and the dataset its model was trained on (``source.data``);
* else the FP32 checkpoint the benched files name (a .pt among them, or the source checkpoint in their
  manifests; an INT8 checkpoint's FP32 source), when it is on this machine and torch is installed: PyTorch
  eager, as on the workstation that exported them (the behaviour of every bench before a torch-free install);
* else (a device, an install without torch) the FP32 artifact among those benched: ONNX, then OpenVINO, then
  TFLite, one whose runtime is installed before one whose runtime is not. The report says which and why.

The dataset: ``--data KIND=PATH``, else the one the reference records; its split must have the reference's
classes in the same order. No torch is imported unless the reference is a checkpoint.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..manifest import Manifest, read_manifest
from ..targets import CHECKPOINT_SUFFIX, runtime_of

ARTIFACT_ORDER = ("onnx", "openvino", "tflite")  # the FP32 artifact that stands in for a checkpoint, best first
_NAMES = {"onnx": "ONNX", "openvino": "OpenVINO", "tflite": "TFLite"}
TRAIN_HINT = 'pip install "edge-fgic[train]"'


def have(module: str) -> bool:
    """Whether ``module`` is importable here (without importing it: torch costs seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or half-installed package
        return False


@dataclass
class Reference:
    path: str                 # as the user or the manifest named it (the report's config.reference)
    manifest: Manifest        # classes and preprocessing (a checkpoint's: made from it)
    kind: str                 # "checkpoint" (PyTorch eager) or "artifact" (an exported FP32 file in its runtime)
    why: str                  # how it was chosen, one phrase for the report
    checkpoint: Any = None    # the loaded checkpoint when kind == "checkpoint"

    @property
    def classes(self) -> list[str]:
        return list(self.manifest.classes)

    def data(self, data: str | None, split: str):
        """The bench's :class:`~edge_fgic.data.registry.DataSpec`: ``data``, else the reference's own dataset."""
        from ..data.datasets import checkpoint_data, recorded_data
        if self.checkpoint is not None:
            return checkpoint_data(data, self.checkpoint, f"the reference {self.path}", split)
        return recorded_data(data, self.manifest.source.get("data"), self.classes, f"the reference {self.path}",
                             split, what="artifact")

    def record(self) -> dict[str, str]:
        runtime = "torch (PyTorch eager)" if self.kind == "checkpoint" else runtime_of(self.path).name
        return {"path": self.path, "kind": self.kind, "runtime": runtime, "why": self.why}


def fp32_source(path: str) -> str:
    """A checkpoint's FP32 origin: itself, or the FP32 model an INT8 checkpoint was quantized from."""
    from ..models.checkpoint import load_checkpoint
    ck = load_checkpoint(path)
    return str((ck.quantization or {}).get("source") or path) if ck.is_quantized else path


def _checkpoint(path: str, why: str) -> Reference:
    if not have("torch"):
        raise UserError(f"{path}: a checkpoint reference runs in PyTorch, which is not installed ({TRAIN_HINT}); "
                        "pass the exported FP32 artifact (.onnx, .xml or .tflite) as --reference instead")
    from ..models.checkpoint import load_checkpoint
    ck = load_checkpoint(path)
    m = Manifest.from_checkpoint(ck, target="torch", precision="fp32", file=Path(path).name)
    return Reference(path, m, "checkpoint", why, checkpoint=ck)


def _artifact(path: str) -> Reference:
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such reference; pass an FP32 checkpoint (.pt) or an exported FP32 artifact")
    m = read_manifest(p)
    if m is None:
        raise UserError(f"{p}: carries no edge-fgic manifest (classes, preprocessing, dataset), so it cannot be "
                        "the reference; re-export it with `edge-fgic export`, or pass its checkpoint")
    if m.precision != "fp32":
        raise UserError(f"{p}: a {m.precision} artifact cannot be the reference (drops are measured against "
                        "FP32); pass the FP32 export or its checkpoint as --reference")
    return Reference(path, m, "artifact", "--reference")


def _named_checkpoint(files: list[Path], manifests: list[Manifest | None]) -> tuple[str, str]:
    """(the FP32 checkpoint to use, "") or ("", why none can be used)."""
    torch, named = have("torch"), []
    for f, m in zip(files, manifests):
        ck = str(f) if f.suffix == CHECKPOINT_SUFFIX else (m.source.get("checkpoint") if m else None)
        if not ck:
            continue
        if f.suffix == CHECKPOINT_SUFFIX or Path(ck).exists():
            if torch:
                return fp32_source(ck), ""
            named.append(f"{ck} cannot run here: torch is not installed")
        else:
            named.append(f"{ck} is not on this machine")
    if not named:
        return "", "the manifests name no source checkpoint"
    return "", f"the source checkpoint {named[0]}"


def _fp32_artifact(files: list[Path], manifests: list[Manifest | None]) -> tuple[Path, Manifest] | None:
    found = [(i, f, m) for i, (f, m) in enumerate(zip(files, manifests))
             if m is not None and m.precision == "fp32" and m.artifact.target in ARTIFACT_ORDER]

    def rank(item: tuple[int, Path, Manifest]) -> tuple[bool, int, int]:
        i, f, m = item
        runnable = all(have(p) for p in runtime_of(f).packages)
        return not runnable, ARTIFACT_ORDER.index(m.artifact.target), i
    return min(found, key=rank)[1:] if found else None


def pick_reference(reference: str, files: list[Path], manifests: list[Manifest | None]) -> Reference:
    """The reference by the rule of the module docstring; one line naming the fix when there is none."""
    if reference:
        return _checkpoint(reference, "--reference") if reference.endswith(CHECKPOINT_SUFFIX) else _artifact(reference)
    ck, why_not = _named_checkpoint(files, manifests)
    if ck:
        return _checkpoint(ck, "the FP32 source checkpoint named by the benched files")
    art = _fp32_artifact(files, manifests)
    if art is None:
        raise UserError(f"no FP32 reference: {why_not}, and no FP32 artifact (ONNX, OpenVINO or TFLite, with its "
                        "manifest) is among those benched; pass --reference with an FP32 artifact or checkpoint")
    f, m = art
    return Reference(str(f), m, "artifact", f"{why_not}, so the FP32 {_NAMES[m.artifact.target]} artifact is")
