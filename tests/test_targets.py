"""The target table (edge_fgic/targets.py) is the one list: every row points at real code, every extra it
names exists, every reader of it agrees with it, and the README's export table says what the rows say."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

from edge_fgic.errors import UserError
from edge_fgic.targets import (CHECKPOINT_SUFFIX, PRECISIONS, RUNTIMES, TARGETS, artifact_suffixes, get_target,
                               runtime_of, target_of)

ROOT = Path(__file__).resolve().parents[1]


def _extras() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_each_row_points_at_real_code(name):
    t = TARGETS[name]
    module = importlib.import_module(f"edge_fgic.export.{t.module}")
    assert callable(module.export) and callable(module.outputs), f"{t.module} lacks export/outputs"
    assert module.outputs("m", "fp32")[0].endswith(t.suffix) or name == "tensorrt"  # tensorrt's entry: -trt.onnx here
    assert t.runtime in RUNTIMES and set(t.precisions) <= set(PRECISIONS) and t.layout in ("NCHW", "NHWC")
    if t.codec:
        codec = importlib.import_module(f"edge_fgic.manifest.{t.codec}")
        assert callable(codec.read_manifest) and callable(codec.embed)


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_each_runtime_row_names_its_runner(name):
    from edge_fgic.runtime.base import Runner, runner_for
    cls = runner_for(name)
    assert issubclass(cls, Runner) and cls.backend == name


def test_every_extra_named_exists_in_pyproject():
    from edge_fgic.doctor import PACKAGES
    named = {t.extra for t in TARGETS.values()} | {r.extra for r in RUNTIMES.values()} | {p[3] for p in PACKAGES}
    missing = sorted(e for e in named if e and e not in _extras())
    assert not missing, f"extras named in edge_fgic/targets.py or doctor.py but absent from pyproject.toml: {missing}"


def test_suffix_lookup_follows_the_table():
    for t in TARGETS.values():
        for s in t.suffixes:
            assert target_of(f"a/b/model{s}") is t and target_of(f"MODEL{s.upper()}") is t
    assert runtime_of("x-trt.onnx").name == "onnxruntime"  # the TensorRT target's ONNX runs in onnxruntime
    assert runtime_of("x.engine").name == runtime_of("x.plan").name == "tensorrt"
    assert runtime_of("best" + CHECKPOINT_SUFFIX).name == "torch"
    assert target_of("notes.txt") is None
    with pytest.raises(UserError, match=r"notes\.txt: not an artifact"):
        runtime_of("notes.txt")
    with pytest.raises(UserError, match="choose one of: onnx"):
        get_target("coreml")


def test_readers_of_the_table_agree_with_it():
    """bench collects exactly the table's artifact suffixes; the manifest reader picks the table's codec;
    the runtime lookup is the table's; the CLI offers exactly the table's targets, precisions and devices."""
    from edge_fgic import cli_support as cs
    from edge_fgic.targets import BENCH_DEVICES
    assert [m.value for m in cs.ExportTargetName] == [*TARGETS, "all"]
    assert [m.value for m in cs.Precision] == list(PRECISIONS)
    assert [m.value for m in cs.BenchTarget] == list(BENCH_DEVICES)
    from edge_fgic.bench import harness
    from edge_fgic.manifest import codec_for
    from edge_fgic.runtime.base import backend_of
    assert set(harness.SUFFIXES) == set(artifact_suffixes())
    for t in TARGETS.values():
        codec = codec_for(f"m{t.suffix}")
        assert (codec.__name__.rsplit(".", 1)[-1] if codec else "") == t.codec
        assert backend_of(f"m{t.suffix}") == t.runtime


def _readme_table() -> dict[str, dict[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = re.search(r"^\| target \| artifact \| FP16 \| INT8 \| proved in \|$", text, re.M)
    assert head, "README.md: the export targets table (| target | artifact | FP16 | INT8 | proved in |) is missing"
    rows = {}
    for line in text[head.end():].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = dict(zip(("artifact", "fp16", "int8", "proved"), cells[1:]))
    return rows


def _check_rows(rows: dict[str, dict[str, str]], targets) -> None:
    assert set(rows) == set(targets), f"README.md targets {sorted(rows)} vs the table's {sorted(targets)}"
    for name, t in targets.items():
        row = rows[name]
        assert t.suffix in row["artifact"], f"README.md: the {name} row does not name {t.suffix}: {row['artifact']}"
        for c in t.companions:
            assert c in row["artifact"], f"README.md: the {name} row does not mention its {c}"
        assert t.runtime.lower() in row["proved"].lower(), f"README.md: {name} is proved in {t.runtime}"
        for p in ("fp16", "int8"):
            assert bool(row[p].strip(" -—")) == (p in t.precisions), f"README.md: {name} {p} cell vs the table"


def test_readme_export_table_says_what_the_rows_say():
    _check_rows(_readme_table(), TARGETS)


def test_readme_check_can_fail():
    """A suffix, a runtime or a row the README does not have makes the check fail."""
    from dataclasses import replace
    rows = _readme_table()
    for changed in ({**TARGETS, "onnx": replace(TARGETS["onnx"], suffix=".onnx2")},
                    {**TARGETS, "tflite": replace(TARGETS["tflite"], runtime="onnxruntime")},
                    {**TARGETS, "coreml": replace(TARGETS["onnx"], name="coreml")},
                    {**TARGETS, "openvino": replace(TARGETS["openvino"], precisions=("fp32", "int8"))}):
        with pytest.raises(AssertionError):
            _check_rows(rows, changed)
