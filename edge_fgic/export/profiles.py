"""Device profiles: one YAML per device in the top-level ``export/`` folder (declarative, no code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError, exc_line

DEVICES = ("jetson-orin-nano", "jetson-orin-nx", "jetson-agx-orin", "desktop-gpu", "x86-cpu", "android-arm64")
KEYS = {"device", "description", "target", "precision", "threads", "tensorrt", "notes"}
TRT_KEYS = {"workspace_mb", "dla_core", "timing_cache", "builder_optimization_level"}


def profiles_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "export"


def list_profiles() -> list[str]:
    d = profiles_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_profile(name_or_path: str) -> dict[str, Any]:
    """``export/jetson-orin-nano.yaml`` or just ``jetson-orin-nano``; validated."""
    path = Path(name_or_path).expanduser()
    if not path.exists():
        cand = profiles_dir() / f"{name_or_path}.yaml"
        if not cand.exists():
            raise UserError(f"{name_or_path}: no such profile; known: {', '.join(list_profiles()) or '(none)'} "
                            f"(files in {profiles_dir()})")
        path = cand
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
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
