"""``bench --remote``: the harness's side of running workers on a device (:mod:`edge_fgic.remote`).

While a bench runs with ``--remote``, :func:`session` holds the device session (its agent started and its
version checked before any work); :func:`current` says whether an artifact goes there: every exported
artifact does, the reference and ``.pt`` checkpoints (PyTorch eager, not what a device runs) stay on this
machine. :func:`run` copies what the artifact needs (once per bench, not per round), has the device's agent
run the same worker on it, and brings the result and logits back; each row it made says ``where`` it ran.
"""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..manifest import Manifest
from ..targets import target_of

# the device of --remote while a bench runs, and the files that stay here (the reference)
_DEVICE: contextvars.ContextVar[tuple[Any, frozenset[Path]]] = contextvars.ContextVar("bench_device",
                                                                                      default=(None, frozenset()))


@contextlib.contextmanager
def session(cfg, reference: str) -> Iterator[Any]:
    """With ``cfg.remote``: the device session, else None. Closing it ends the agent, which removes its work
    folder there (also after an error)."""
    if not cfg.remote:
        yield None
        return
    from ..remote import open_device
    with open_device(cfg.remote, exe=cfg.remote_exe, base=cfg.remote_dir, ssh_config=cfg.ssh_config) as device:
        token = _DEVICE.set((device, frozenset({Path(reference).resolve()})))
        try:
            yield device
        finally:
            _DEVICE.reset(token)


def current(artifact: Path):
    """The device session ``artifact`` runs on, or None to run it here."""
    device, here = _DEVICE.get()
    if device is None or artifact.suffix == ".pt" or artifact.resolve() in here:
        return None
    return device


def device_files(artifact: Path, manifest: Manifest | None) -> list[Path]:
    """What an artifact needs beside it on a device: itself, its companions (the target table's, e.g.
    OpenVINO's .bin), its sidecar NAME.json and every other file its manifest lists."""
    row = target_of(artifact)
    names = [artifact.name, *(artifact.with_suffix(c).name for c in (row.companions if row else ())),
             f"{artifact.name}.json", *((manifest.sha256 or {}) if manifest else {})]
    return [artifact] + [artifact.with_name(str(n)) for n in dict.fromkeys(names[1:])
                         if str(n) != artifact.name and artifact.with_name(str(n)).is_file()]


def run(device, spec: dict, artifact: Path, manifest: Manifest | None, images: Path, cfg, work: Path, idx: int,
        variant) -> tuple[dict, np.ndarray | None]:
    """The worker on the device: its files copied once per bench, the result and logits brought back."""
    slot = device.slot(artifact.parent)
    for f in device_files(artifact, manifest):
        device.upload(f, f"{slot}/{f.name}", what=artifact.name)
    remote = {**spec, "artifact": f"{slot}/{artifact.name}", "images": device.upload(images, images.name),
              "logits": f"logits-{idx}.npy", "result": f"result-{idx}.json"}
    result, logits = device.measure(remote, idx=idx, env=variant.env, timeout_s=cfg.timeout_s, what=artifact.name,
                                    logits_to=work / f"logits-{idx}.npy")
    result.update(artifact=str(artifact), where=device.url)
    return result, (np.load(logits) if logits is not None and result.get("status") == "ok" else None)
