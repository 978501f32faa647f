"""Device profiles: one YAML per device in the top-level ``export/`` folder (declarative, no code).

They are package data, read through :mod:`importlib.resources` as ``edge_fgic.profiles``: in the checkout (and an
editable install) ``edge_fgic/profiles`` is a link to ``export/``; the wheel holds the files themselves
(pyproject.toml's package-data), so an installed edge-fgic needs no checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError, exc_line

DEVICES = ("jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "desktop-gpu", "x86-cpu", "android-arm64")
KEYS = {"device", "description", "target", "precision", "threads", "tensorrt", "notes"}
TRT_KEYS = {"workspace_mb", "dla_core", "timing_cache", "builder_optimization_level"}


def _packaged():
    return resources.files("edge_fgic") / "profiles"


def profiles_dir() -> Path:
    """Where the packaged profiles lie (a folder in a wheel's install, an editable install and the checkout)."""
    return Path(str(_packaged())).resolve()


def list_profiles() -> list[str]:
    root = _packaged()
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml")) if root.is_dir() else []


def load_profile(name_or_path: str) -> dict[str, Any]:
    """``export/jetson-orin-nano.yaml`` (a file) or just ``jetson-orin-nano`` (a packaged profile); validated."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        # a name, or the checkout's export/NAME.yaml (as the README writes it) where there is no checkout
        name = path.stem if path.parent.name == "export" and path.suffix == ".yaml" else name_or_path
        cand = _packaged() / f"{name}.yaml"
        if "/" in name or not cand.is_file():
            raise UserError(f"{name_or_path}: no such profile; known: {', '.join(list_profiles()) or '(none)'} "
                            f"(files in {profiles_dir()})")
        path, text = Path(str(cand)).resolve(), cand.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({exc_line(exc, 240)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a profile is a mapping of keys (device, target, precision, tensorrt ...)")
    unknown = set(data) - KEYS
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(KEYS))}")
    device = data.get("device")
    if device not in DEVICES:
        raise UserError(f"{path}: unknown device {device!r}; known devices: {', '.join(DEVICES)}")
    trt = data.get("tensorrt") or {}
    bad = set(trt) - TRT_KEYS
    if bad:
        raise UserError(f"{path}: unknown tensorrt key(s) {', '.join(sorted(bad))}; "
                        f"allowed: {', '.join(sorted(TRT_KEYS))}")
    data["path"] = str(path)
    return data
