"""benchmarks/reference.yaml against every committed bench.json (NNCF-conformance style), and the gates' defaults.

Fast: reads JSON and YAML only, no model runs. A value outside its tolerance fails as "Regression" or
"Improvement"; an entry's recorded ``*_xfail_reason`` makes that failure an expected one (xfail, with the reason).
"""

from __future__ import annotations

import copy
import inspect
import json
import subprocess
from pathlib import Path

import pytest

from edge_fgic.bench import reference as refmod
from edge_fgic.bench.reference import check_entry, load_reference, unmatched_rows, unused_entries

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "benchmarks" / "reference.yaml"


def _committed_reports() -> list[str]:
    """Every committed benchmarks/**/bench.json (git's list; the folder's files outside a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", "--", "benchmarks/**/bench.json", "benchmarks/*/bench.json"],
                             cwd=ROOT, capture_output=True, text=True, check=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    return sorted(set(out)) or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").rglob("bench.json"))


REF = load_reference(REFERENCE)
REPORTS = {name: json.loads((ROOT / name).read_text(encoding="utf-8")) for name in _committed_reports()}


def _fail(findings) -> None:
    bad = [f.message for f in findings if not f.expected]
    if bad:
        pytest.fail("\n".join(bad), pytrace=False)


# ------------------------------------------------------------------ the committed results


def test_there_are_committed_reports():
    assert len(REPORTS) >= 5, REPORTS.keys()


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_row_has_a_reference_entry(name):
    missing = unmatched_rows(REF, {name: REPORTS[name]})
    assert not missing, "\n".join(missing)


def test_every_entry_names_a_committed_row():
    unused = unused_entries(REF, REPORTS)
    assert not unused, f"entries no committed bench.json has (remove them or commit their report): {unused}"


@pytest.mark.parametrize("key", sorted(REF.entries))
def test_entry(key):
    findings = check_entry(REF, key, REPORTS)
    _fail(findings)
    expected = [f for f in findings if f.expected]
    if expected:  # an accepted gap: expected, and said why
        short = sorted({f"{f.check}: {f.reason[:100]}{'…' if len(f.reason) > 100 else ''}" for f in expected})
        pytest.xfail("; ".join(short))  # the whole reason: benchmarks/reference.yaml


# ------------------------------------------------------------------ the checks can fail


def _demo_int8():
    key = "demo/student_onnx_int8"
    name = "benchmarks/peers/demo/bench.json"
    report = copy.deepcopy(REPORTS[name])
    row = next(r for r in report["rows"] if r["artifact"] == REF.entries[key]["artifact"])
    return key, name, report, row


def test_a_perturbed_row_fails_as_regression_or_improvement():
    key, name, report, row = _demo_int8()
    assert not [f for f in check_entry(REF, key, {name: report}) if f.check == "metrics"]  # as committed: within
    one_image = 100.0 / report["images"]
    row["top1"] -= 2 * one_image
    row["agreement"] += 2 * one_image
    found = [f for f in check_entry(REF, key, {name: report}) if f.check == "metrics"]
    assert [(f.kind, f.expected) for f in found] == [("Regression", False), ("Improvement", False)], found
    assert "top1 84.33 vs reference 85.00" in found[0].message and name in found[0].message
    row["top1"] += 2 * one_image
    row["agreement"] -= 2 * one_image
    row["drop"] += 0.9 * one_image       # within one image: no finding
    assert not [f for f in check_entry(REF, key, {name: report}) if f.check == "metrics"]
    row["drop"] += 2 * one_image
    assert [f.kind for f in check_entry(REF, key, {name: report}) if f.check == "metrics"] == ["Regression"]


def test_a_recorded_reason_makes_the_failure_expected():
    key, name, report, row = _demo_int8()
    row["top1"] -= 3 * 100.0 / report["images"]
    ref = copy.deepcopy(REF)
    with pytest.raises(pytest.fail.Exception, match="Regression: demo/student_onnx_int8 top1"):
        _fail(check_entry(ref, key, {name: report}))
    ref.entries[key]["metrics_xfail_reason"] = "known: 3 images flipped by a new converter"
    found = [f for f in check_entry(ref, key, {name: report}) if f.check == "metrics"]
    assert found and all(f.expected and f.reason.startswith("known") for f in found)
    _fail(check_entry(ref, key, {name: report}))  # no unexpected failure left


def test_the_gate_and_speed_checks_fail_without_their_reasons():
    ref = copy.deepcopy(REF)
    peer = "demo/student_onnx_int8_peer-ort-quantize_static"   # loses 2.00 pt, slower than FP32: both recorded
    assert {f.check for f in check_entry(ref, peer, REPORTS) if f.expected} == {"gate", "speed"}
    del ref.entries[peer]["gate_xfail_reason"], ref.entries[peer]["speed_xfail_reason"]
    kinds = {f.kind for f in check_entry(ref, peer, REPORTS) if not f.expected}
    assert kinds == {"Gate", "Slower"}


def test_a_reason_whose_check_passes_is_an_unexpected_pass():
    ref = copy.deepcopy(REF)
    key = "o17-pretrained/student_openvino_int8"   # within the gate, 1.75x its FP32
    ref.entries[key]["gate_xfail_reason"] = "stale"
    found = [f for f in check_entry(ref, key, REPORTS) if not f.expected]
    assert [f.kind for f in found] == ["Unexpected pass"] and "gate_xfail_reason" in found[0].message


def test_a_row_without_an_entry_is_reported_with_the_line_to_add():
    ref = copy.deepcopy(REF)
    del ref.entries["demo/student_onnx_int8"]
    (line,) = unmatched_rows(ref, {"benchmarks/peers/demo/bench.json": REPORTS["benchmarks/peers/demo/bench.json"]})
    assert "runs/demo/export/student-int8.onnx" in line and "top1: 85.00, drop: 0.33, agreement: 99.00" in line
    ref.entries["demo/student_onnx_int8_gone"] = {"artifact": "runs/demo/export/gone.onnx", "top1": 1.0}
    assert unused_entries(ref, REPORTS) == ["demo/student_onnx_int8_gone"]


def test_malformed_reference_files_are_refused(tmp_path):
    text = REFERENCE.read_text(encoding="utf-8").replace("../edge_fgic/", str(ROOT / "edge_fgic") + "/")
    (tmp_path / "ok.yaml").write_text(text, encoding="utf-8")
    assert len(load_reference(tmp_path / "ok.yaml").entries) == len(REF.entries)
    for bad, match in [(text.replace("top1: 85.00, drop: 0.33", "top1: 85.00, dorp: 0.33", 1), "unknown key"),
                       (text.replace("demo/student_onnx_fp32:", "demo/student_onnxfp32:", 1), "an entry is named"),
                       (text.replace("  demo/student: >-", "  demo/pupil: >-", 1), "not described")]:
        (tmp_path / "bad.yaml").write_text(bad, encoding="utf-8")
        with pytest.raises(ValueError, match=match):
            load_reference(tmp_path / "bad.yaml")


# ------------------------------------------------------------------ the gates read one copy of their defaults


def test_reference_yaml_points_at_the_package_defaults():
    assert REF.defaults_path.samefile(refmod.defaults_path())
    assert refmod.defaults_path().parent.samefile(Path(refmod.__file__).parents[1])   # inside edge_fgic: package data
    assert REF.gates == refmod.load_defaults()


def test_the_gates_read_the_defaults_with_unchanged_numbers():
    from edge_fgic.bench.harness import BenchConfig
    from edge_fgic.export import exporter
    from edge_fgic.targets import PRECISIONS
    assert exporter.TOLERANCE == refmod.export_tolerance() == {
        "fp32": {"min_agreement": 99.0, "max_rel_diff": 1e-5},
        "fp16": {"min_agreement": 98.0, "max_rel_diff": 3e-2},
        "int8": {"min_agreement": 95.0, "max_rel_diff": None},
    }
    assert set(exporter.TOLERANCE) == set(PRECISIONS)
    assert exporter.TARGET_TOLERANCE == refmod.export_target_tolerance() == {}
    assert BenchConfig(artifacts=[]).max_drop == refmod.bench_max_drop() == 1.0


def test_the_cli_bench_default_is_the_gate_default():
    from edge_fgic import cli
    default = inspect.signature(cli.bench_cmd).parameters["max_drop"].default
    assert default == refmod.bench_max_drop(), "edge-fgic bench --max-drop must default to reference_defaults.yaml"


def test_malformed_defaults_are_refused(tmp_path):
    import yaml
    good = yaml.safe_load(refmod.defaults_path().read_text(encoding="utf-8"))
    cases = [
        (lambda d: d["export"]["round_trip"]["fp32"].update(max_rel_diff="1e-5"), "not a number"),
        (lambda d: d["export"]["round_trip"]["int8"].pop("max_rel_diff"), "missing"),
        (lambda d: d["export"].update(targets={"tflite": {"int8": {"min_agreement": 90.0}}}), "missing reason"),
        (lambda d: d["export"].update(targets={"tflite": {"int4": {"min_agreement": 90.0, "reason": "x"}}}),
         "no such precision"),
        (lambda d: d["bench"].update(max_drop=None), "not a number"),
        (lambda d: d.update(extra=1), "unknown key"),
    ]
    for edit, match in cases:
        d = copy.deepcopy(good)
        edit(d)
        with pytest.raises(ValueError, match=match):
            refmod.validate_defaults(d, "defaults")
    d = copy.deepcopy(good)
    d["export"]["targets"] = {"tflite": {"int8": {"min_agreement": 90.0, "reason": "measured: ..."}}}
    assert refmod.validate_defaults(d, "defaults")["export"]["targets"] == {("tflite", "int8"): {"min_agreement": 90.0}}
