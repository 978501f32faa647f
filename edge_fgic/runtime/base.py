"""The runner interface and the lookup from an artifact to its runner.

Every runner asks its runtime *explicitly* for the execution it wants and reads back what the
runtime actually compiled (:attr:`Runner.execution`): runtimes change their defaults with the CPU
(OpenVINO computes in bf16 on CPUs with AVX-512 BF16/AMX and in fp16 on ARM cores that have it;
LiteRT hands the graph to XNNPACK; thread pools size themselves to the machine), so nothing here is
left to a default. The rule (``precision="auto"``): FP32 artifacts run in f32, INT8 artifacts with
their float parts in f32, FP16 artifacts with fp16 weights and, on a CPU, f32 arithmetic. bf16/f16
arithmetic on a CPU only when asked for (``precision="bf16"``), and then labelled as such.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..manifest import Manifest, read_manifest
from ..targets import runtime, runtime_of


class Runner:
    """Base class. Subclasses implement :meth:`_load` and :meth:`_run` (one static-shape batch).

    ``predict`` takes what the manifest's preprocessing produces — NCHW, float32, normalized —
    and does the rest: layout (NHWC for TFLite), integer input/output (de)quantization, and
    splitting a batch for artifacts exported with a fixed batch size.
    """

    backend = ""      # "onnxruntime", "openvino", ...
    # arithmetic precisions this runtime can be asked for on top of the artifact's own ("auto")
    compute_precisions: tuple[str, ...] = ("f32",)

    def __init__(self, path: str | Path, manifest: Manifest | dict[str, Any] | None = None, *,
                 threads: int | None = None, device: str = "cpu", precision: str = "auto"):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"{self.path}: no such artifact")
        if isinstance(manifest, dict):  # as it crossed a process boundary (bench's worker) in JSON
            manifest = Manifest.from_dict(manifest, f"{self.path.name}.json")
        self.manifest: Manifest | None = manifest if manifest is not None else read_manifest(self.path)
        # threads are always explicit: a runtime's own default follows the machine (ORT: physical cores,
        # OpenVINO: all cores, LiteRT: one) and would make the same command mean different things
        self.threads = int(threads) if threads else default_threads()
        self.device = device
        if precision != "auto" and precision not in self.compute_precisions:
            raise UserError(f"{self.path}: {self.backend} cannot be asked to compute in {precision} "
                            f"(it offers: auto, {', '.join(self.compute_precisions)})")
        self.precision = precision
        self.batch: int | None = None   # fixed batch size of the artifact; None = dynamic
        # what was asked of the runtime and what it reports it did (filled by _load / _read_back)
        self.requested: dict[str, Any] = {}
        self.effective: dict[str, Any] = {}
        self._check_bytes()
        self._load()
        self._check_manifest()

    # -- subclass API
    def _load(self) -> None:
        raise NotImplementedError

    def _run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def version(cls) -> str:
        return ""

    def _read_back(self) -> dict[str, Any]:
        """What the runtime reports it actually compiled and will run (subclasses extend)."""
        return {}

    def _io_shapes(self) -> tuple[list | None, list | None]:
        """(input shape, output shape) as the loaded model declares them; None where unknown."""
        return None, None

    def _embedded(self) -> dict[str, Any] | None:
        """The manifest inside the artifact, read through the runtime already loaded (None: none / n.a.)."""
        return None

    # -- integrity: the artifact is the one its manifest describes, or nothing runs
    def _check_bytes(self) -> None:
        """Every file the sidecar lists has the SHA-256 recorded at export (an edited, truncated or
        swapped artifact is refused before a runtime parses it)."""
        if self.manifest is None:
            return
        sha = self.manifest.sha256
        from ..fileio import sha256_file
        entry = str(self.manifest.artifact.file or self.path.name)
        for name, want in sha.items():
            # the entry point is this file whatever it is called now (a renamed artifact keeps its manifest)
            f = self.path if str(name) == entry else self.path.with_name(str(name))
            if not f.exists():
                raise UserError(f"{f}: listed in {self.path.name}.json but missing; copy the whole export "
                                f"(artifact, companions and sidecar) or re-export it")
            got = sha256_file(f)
            if got != want:
                raise UserError(f"{f}: its bytes differ from its manifest (sha256 {got[:12]}… vs {str(want)[:12]}… "
                                f"recorded at export): the file changed after export or the sidecar belongs to "
                                f"another artifact; re-export it")

    def _check_manifest(self) -> None:
        """The manifest fits the model (class count vs output width, input size and layout vs input
        shape), and a sidecar agrees with the copy inside the artifact."""
        m = self.manifest
        if not m:
            return
        where = f"{self.path.name}.json" if Path(str(self.path) + ".json").exists() else "its manifest"
        inside = self._embedded()
        if inside is not None and where != "its manifest":
            mine, theirs = m.to_dict(), Manifest.from_dict(inside, f"{self.path} (embedded manifest)").to_dict()
            for key in ("classes", "input", "artifact"):
                if theirs.get(key) != mine.get(key):
                    raise UserError(f"{self.path}: the sidecar {where} and the manifest inside the artifact "
                                    f"disagree on {key} ({_difference(mine.get(key), theirs.get(key))}): "
                                    f"the sidecar was edited or belongs to another artifact (or a tool that derived "
                                    f"this file from another export kept that export's manifest inside); "
                                    f"delete the sidecar to use the embedded one, or re-export")
        classes = m.classes
        in_shape, out_shape = self._io_shapes()
        if classes is not None and out_shape and isinstance(out_shape[-1], int) and out_shape[-1] > 0 \
                and out_shape[-1] != len(classes):
            raise UserError(f"{self.path}: {where} names {len(classes)} classes but the model outputs "
                            f"{out_shape[-1]}; use the artifact's own manifest (re-export it)")
        size = m.input.input_size
        if size and in_shape and len(in_shape) == 4:
            hw = in_shape[1:3] if self.layout == "NHWC" else in_shape[2:4]
            if all(isinstance(d, int) and d > 0 for d in hw) and list(hw) != [int(size), int(size)]:
                raise UserError(f"{self.path}: {where} says input {size}x{size} ({self.layout}) but the model takes "
                                f"{hw[0]}x{hw[1]} (shape {list(in_shape)}); "
                                "use the artifact's own manifest (re-export it)")

    # -- shared
    @property
    def artifact_precision(self) -> str:
        """The precision the artifact was exported at (fp32 / fp16 / int8), from its manifest."""
        return self.manifest.precision if self.manifest else "fp32"

    @property
    def compute_precision(self) -> str:
        """Arithmetic precision to ask the runtime for: ``auto`` = f32 for every artifact on a CPU
        (FP32 as is, INT8's float parts, FP16's upcast weights), unless the caller asked otherwise."""
        return "f32" if self.precision == "auto" else self.precision

    @property
    def execution(self) -> dict[str, Any]:
        """Runtime, version, device, artifact precision, and the requested and effective settings.

        ``effective`` is read back from the runtime after it compiled the artifact (never copied from
        ``requested``); ``precision_ok`` says whether what ran is what was asked for."""
        if not self.effective:
            self.effective = self._read_back()
        eff = self.effective.get("precision")
        return {"runtime": self.backend, "version": self.version(), "device": self.device,
                "artifact_precision": self.artifact_precision, "requested": dict(self.requested),
                "effective": dict(self.effective),
                "precision_ok": eff is None or eff == self.requested.get("precision")}

    def execution_label(self) -> str:
        """Short text for tables (:func:`describe_execution`)."""
        return describe_execution(self.execution)

    @property
    def layout(self) -> str:
        return self.manifest.layout if self.manifest else "NCHW"

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The logits (selected by the output's name, so a second output changes nothing here)."""
        return self._batched(x, lambda chunk: {"logits": self._run(chunk)})["logits"]

    @property
    def embedding(self):
        """The manifest's :class:`~edge_fgic.manifest.EmbeddingSpec` of the second output (None: the artifact
        was exported without ``--embedding``)."""
        return self.manifest.embedding if self.manifest else None

    def predict_with_embedding(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(logits, embedding)`` from one run of an artifact exported with ``--embedding``; the embedding is
        as the manifest's ``embedding`` says (``normalized``: unit rows)."""
        spec = self.embedding
        if spec is None:
            raise UserError(f"{self.path}: has no embedding output; re-export it with `edge-fgic export --embedding`")
        out = self._batched(x, self._run_outputs)
        if spec.name not in out:
            raise UserError(f"{self.path}: its manifest names the output {spec.name!r} but the model has "
                            f"{', '.join(sorted(out))}; re-export it")
        return out["logits"], out[spec.name]

    def predict_embedding(self, x: np.ndarray) -> np.ndarray:
        """The embedding alone (:meth:`predict_with_embedding`)."""
        return self.predict_with_embedding(x)[1]

    def _run_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of one static-shape batch by name, ``logits`` included (runners of artifacts that can
        carry a second output implement it)."""
        raise UserError(f"{self.path}: the {self.backend} runner does not read a second output")

    def _batched(self, x: np.ndarray, run) -> dict[str, np.ndarray]:
        """``run`` (one batch -> outputs by name) over ``x``: layout, and fixed-batch splitting with padding."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.layout == "NHWC":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if self.batch is None or self.batch == len(x):
            return {k: np.asarray(v, dtype=np.float32) for k, v in run(x).items()}
        outs: dict[str, list[np.ndarray]] = {}
        for i in range(0, len(x), self.batch):
            chunk = x[i:i + self.batch]
            pad = self.batch - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            for k, v in run(chunk).items():
                outs.setdefault(k, []).append(np.asarray(v, dtype=np.float32)[:self.batch - pad])
        return {k: np.concatenate(v) for k, v in outs.items()}

    def describe(self) -> str:
        return f"{self.backend} {self.version()}".strip()


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 1] + "…"


def _difference(side: Any, inside: Any) -> str:
    """The first place two manifest sections differ, as 'where: sidecar X, inside Y'."""
    if isinstance(side, dict) and isinstance(inside, dict):
        for k in sorted(set(side) | set(inside), key=str):
            if side.get(k) != inside.get(k):
                return f"{k}: sidecar {_short(side.get(k))}, inside {_short(inside.get(k))}"
    if isinstance(side, list) and isinstance(inside, list):
        if len(side) != len(inside):
            return f"sidecar {len(side)} entries, inside {len(inside)}"
        i = next(i for i, (a, b) in enumerate(zip(side, inside)) if a != b)
        return f"entry {i}: sidecar {_short(side[i])}, inside {_short(inside[i])}"
    return f"sidecar {_short(side)}, inside {_short(inside)}"


def default_threads() -> int:
    """The cores this process may use (affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def describe_execution(ex: dict[str, Any] | None) -> str:
    """One cell of text from an :attr:`Runner.execution` record (bench rows, the export summary):
    ``f32, 2 thr`` / ``int8 12/17 ops + f32, 2 thr`` / ``bf16 (asked f32!)`` / ``f32, XNNPACK 22/22 nodes``."""
    if not ex:
        return ""
    eff, req = ex.get("effective") or {}, ex.get("requested") or {}
    prec = eff.get("precision") or "?"
    text = prec if ex.get("precision_ok", True) else f"{prec} (asked {req.get('precision')}!)"
    if eff.get("integer_ops") is not None and (eff["integer_ops"] or ex.get("artifact_precision") == "int8"):
        text = f"int8 {eff['integer_ops']}/{eff.get('compute_ops', '?')} ops + {text}"
    elif eff.get("integer_graph"):
        text = f"int8 + {text}"
    delegate = eff.get("delegate")
    if delegate:
        text += (f", {delegate['name']} {delegate.get('delegated_nodes')}/{delegate.get('total_nodes')} nodes"
                 if delegate.get("name") else ", no delegate")
    if eff.get("threads"):
        text += f", {eff['threads']} thr"
    return text


def runner_for(backend: str) -> type[Runner]:
    """The runner class of a runtime named in the table (:data:`edge_fgic.targets.RUNTIMES`)."""
    row = runtime(backend)
    return getattr(importlib.import_module(f"edge_fgic.runtime.{row.module}"), row.cls)


def backend_of(path: str | Path) -> str:
    """The runtime that opens ``path``, by the table's suffixes."""
    return runtime_of(path).name


def open_runner(path: str | Path, manifest: Manifest | dict[str, Any] | None = None, **kwargs: Any) -> Runner:
    """The right runner for ``path`` (by suffix), loaded."""
    return runner_for(backend_of(path))(path, manifest, **kwargs)


def missing_backend(module: str, backend: str, what: str) -> UserError:
    """One line naming the missing package and what installs it (the table's extra for this runtime)."""
    extra = runtime(backend).extra
    how = f'pip install "edge-fgic[{extra}]"' if extra else "reinstall edge-fgic (pip install edge-fgic)"
    return UserError(f"{what} needs the `{module}` package; install it with `{how}`")
