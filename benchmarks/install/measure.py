"""Size and install time of edge-fgic's installs: the deploy side (core = ONNX only, + LiteRT, + OpenVINO,
+ camera) against the full build side ([all]).

    .venv/bin/python benchmarks/install/measure.py            # the deploy installs
    .venv/bin/python benchmarks/install/measure.py --full     # and [all] (a few GB, minutes)

Each install is what a user types on a device: ``python3 -m venv V && V/bin/pip install "WHEEL[extras]"`` with the
project's constraints (the wheel built from this checkout first). Writes benchmarks/install/results.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "results.json"
CONFIGS = {"core (ONNX only)": (), "+ litert": ("litert",), "+ openvino": ("openvino",),
           "+ litert + camera": ("litert", "camera")}
BASE_PYTHON = getattr(sys, "_base_executable", "") or sys.executable


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def cpu() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    info = dict(ln.split(":", 1) for ln in text.splitlines() if ":" in ln)
    flags = set(info.get("Flags", "").split())
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f in flags]
    return f"{info.get('Model name', '?').strip()}, {os.cpu_count()} cores, {' '.join(isa)}"


def build_wheel(tmp: Path) -> Path:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp), str(REPO)], check=True,
                   capture_output=True)
    return next(tmp.glob("edge_fgic-*.whl"))


def measure(name: str, spec: str, tmp: Path) -> dict:
    venv = tmp / name.replace(" ", "").replace("+", "_").replace("(", "").replace(")", "")
    t0 = time.perf_counter()
    subprocess.run([BASE_PYTHON, "-m", "venv", str(venv)], check=True)
    t1 = time.perf_counter()
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-c",
                    str(REPO / "constraints.txt"), spec], check=True)
    t2 = time.perf_counter()
    site = next((venv / "lib").glob("python*/site-packages"))
    pkgs = sorted(((du(p), p.name) for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info")),
                  reverse=True)[:6]
    torch = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True).returncode == 0
    row = {"install": name, "spec": spec.split("/")[-1], "venv_mb": round(du(venv) / 2**20, 1),
           "site_packages_mb": round(du(site) / 2**20, 1), "venv_create_s": round(t1 - t0, 1),
           "pip_install_s": round(t2 - t1, 1), "torch_importable": torch,
           "largest": {n: round(b / 2**20, 1) for b, n in pkgs}}
    shutil.rmtree(venv)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also measure [all] (the build side)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edge-fgic-install-") as t:
        tmp = Path(t)
        whl = build_wheel(tmp)
        configs = dict(CONFIGS, **({"[all] (build side)": ("all",)} if args.full else {}))
        rows = [measure(name, f"{whl}[{','.join(extras)}]" if extras else str(whl), tmp)
                for name, extras in configs.items()]
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    keep = [r for r in old.get("rows", []) if r["install"] not in {x["install"] for x in rows}]
    OUT.write_text(json.dumps({
        "date": datetime.date.today().isoformat(), "cpu": cpu(), "python": platform.python_version(),
        "pip": subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                              text=True).stdout.split(" from ")[0],
        "package_source": "this machine's on-disk package index (file://, PIP_FIND_LINKS): no network, no pip "
                          "HTTP cache involved (pip cache: empty); times are unpacking + installing",
        "rows": keep + rows}, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
