"""Style that CI holds: ruff (pyflakes + a 120-character line length, pyproject.toml's [tool.ruff]) over the
package, the tests and the benchmark scripts, and no module over ~400 lines without its reason at the top."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def _ruff() -> list[str]:
    exe = Path(sys.executable).with_name("ruff")
    if exe.exists():
        return [str(exe)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.fail("ruff is not installed: it is in the dev extra (make env installs it)")


def test_ruff_passes():
    proc = subprocess.run([*_ruff(), "check", "--no-cache", "--output-format", "concise", "edge_fgic", "tests",
                           "benchmarks"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, "ruff check:\n" + (proc.stdout + proc.stderr)[-6000:]


def _long_modules() -> list[str]:
    """Modules over MAX_LINES lines whose docstring gives no reason (a paragraph starting "Size:")."""
    bad = []
    for path in sorted((ROOT / "edge_fgic").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        n = text.count("\n")
        if n <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not any(line.startswith("Size:") for line in doc.splitlines()):
            bad.append(f"{path.relative_to(ROOT)}: {n} lines")
    return bad


def test_no_long_module_without_its_reason():
    bad = _long_modules()
    assert not bad, (f"modules over {MAX_LINES} lines with no 'Size: <why>' paragraph in their docstring "
                     "(split them, or say why not):\n" + "\n".join(bad))
