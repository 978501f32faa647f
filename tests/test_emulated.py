"""The deploy artifacts on emulated CPUs through the same ``edge_fgic.runtime.open_runner`` as on
this x86 host (:mod:`edge_fgic.bench.emulated`):

- an ARM64 core (qemu-aarch64 -cpu neoverse-n1): FP32 ONNX and TFLite within 1e-5 (relative) of
  x86, INT8 TFLite reported;
- an AVX2-only x86 (qemu-x86_64 -cpu Haswell-v4 running this venv's python): FP32 ONNX / TFLite /
  OpenVINO IR and the INT8 ONNX agree 100 % within 1e-5 (relative; the INT8 one because NNCF's overflow
  fix keeps weights to 7 bits, so MLAS's AVX2 int16 pair sums cannot saturate), and OpenVINO's FP32 IR compiles
  to AVX2 kernels, none AVX-512, with no bf16 anywhere (the emulated CPU has none).

Needs the cache that ``benchmarks/portability/arm64/setup.sh`` builds in ``.cache/arm64`` (qemu-user
>= 8, an arm64 Debian root, aarch64 wheels: ~40 s cold as root, ~580 MB). Where it is absent the
tests build it as root (CI) and skip elsewhere, with the reason. EDGE_FGIC_NO_ARM64=1 skips both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edge_fgic.bench import emulated

SETUP = emulated.REPO / emulated.SETUP
HASWELL = emulated.X86 + "Haswell-v4"
# what each emulated python must print for: platform.machine()
MACHINE = {"arm64": "aarch64", "x86-64": "x86_64"}


def _usable(setup: dict, cpu: str) -> dict:
    """The emulator runs its python here (an x86-64 host): else skip, with qemu's words."""
    try:
        proc = subprocess.run(emulated.qemu_command(setup, cpu) + ["-c", "import platform; print(platform.machine())"],
                              env=emulated.emulated_env(setup, cpu), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"qemu -cpu {cpu} not usable here: {exc}")
    if proc.stdout.strip() != MACHINE[emulated.family(cpu)]:
        pytest.skip(f"qemu -cpu {cpu} not usable here: {(proc.stderr.strip().splitlines() or [proc.returncode])[-1]}")
    return setup


def _setup_for(cpu: str) -> dict:
    if os.environ.get("EDGE_FGIC_NO_ARM64") == "1":
        pytest.skip("EDGE_FGIC_NO_ARM64=1")
    try:
        return _usable(emulated.load_setup(cpus=[cpu]), cpu)
    except emulated.EmulationError as exc:
        absent = str(exc)
    if os.geteuid() != 0 or not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        pytest.skip(f"no emulation cache ({absent}); build it once as root on Debian: {emulated.SETUP}")
    # root on Debian (CI): build it (~40 s cold, measured; cached in .cache/arm64 for later runs)
    try:
        proc = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip(f"{emulated.SETUP} took over 600 s")
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:]
        pytest.skip(f"{emulated.SETUP} failed, so no qemu-user >= 8 here: {tail}")
    return _usable(emulated.load_setup(cpus=[cpu]), cpu)


@pytest.fixture(scope="module")
def arm64_setup() -> dict:
    return _setup_for("neoverse-n1")


@pytest.fixture(scope="module")
def x86_setup() -> dict:
    return _setup_for(HASWELL)


@pytest.fixture(scope="module")
def artifacts(tiny_bnrelu_run: Path, ptq_signed: Path, tmp_path_factory) -> Path:
    """FP32 ONNX + TFLite of the tiny bn-relu model and the INT8 TFLite of its signed PTQ (32 px)."""
    return _export_each(tmp_path_factory.mktemp("emulated") / "export",
                        [(tiny_bnrelu_run, "onnx", "fp32"), (tiny_bnrelu_run, "tflite", "fp32"),
                         (ptq_signed / "best.pt", "tflite", "int8")])


def _export_each(out: Path, plan: list[tuple[Path, str, str]]) -> Path:
    """Export (model, target, precision) x plan into ``out`` as m-<precision>.<suffix>, each proved on 8 images."""
    from edge_fgic.export.exporter import ExportConfig, export
    for model, target, precision in plan:
        # INT8: at most 2 of the 8 images may flip (the tiny PTQ model's TFLite and ONNX measured 100 % here)
        kw = dict(check_images=8, min_agreement=75.0) if precision == "int8" else dict(check_images=8)
        res = export(ExportConfig(model=str(model), target=target, precision=precision, out=str(out),
                                  name="m", **kw), progress=False)
        assert res[0].status == "ok", res
    return out


def test_artifacts_agree_with_x86_on_emulated_neoverse_n1(arm64_setup, artifacts, tiny_synth, record_property):
    report = emulated.run([str(artifacts)], data=f"synthetic={tiny_synth}", split="val", n=6, cpus=["neoverse-n1"],
                          # ORT's read-back imports onnx: 5 s emulated
                          jobs=2, timeout_s=300, read_back=["litert"], progress=False)
    arm = report["processes"]["neoverse-n1"]
    assert arm.get("machine") == "aarch64", arm
    # the runtime package is importable on the device side on its own: no torch, no converters
    assert arm["heavy_modules_after_import"] == [], arm
    rows = {r["artifact"]: r for r in report["rows"]}
    assert set(rows) == {"m-fp32.onnx", "m-fp32.tflite", "m-int8.tflite"}, rows
    for name in ("m-fp32.onnx", "m-fp32.tflite"):
        r = rows[name]
        assert r["status"] == "ok", r
        assert r["agreement"] == 100.0 and r["max_rel_diff"] <= 1e-5, r
        assert "torch" not in r["emulated"]["heavy_modules_imported"], r
        ex = r["emulated"].get("execution")
        if ex and "effective" in ex:  # the runner contract: what ran on ARM is what was asked for
            assert ex["precision_ok"] and ex["effective"].get("precision") == "f32", ex
    i8 = rows["m-int8.tflite"]
    assert i8["status"] == "ok", i8
    for name, r in rows.items():  # INT8 is reported, not gated (XNNPACK QS8 was bit-exact with x86 so far)
        record_property(name, f"agreement {r['agreement']:.1f} %, max |d| {r['max_abs_diff']:.2e}, "
                              f"rel {r['max_rel_diff']:.2e}, bit-exact {r['bit_exact']}, "
                              f"ARM: {emulated._label(r['emulated'])}")
        print(f"arm64 neoverse-n1 {name}: agreement {r['agreement']:.1f} %, max |d| {r['max_abs_diff']:.2e}, "
              f"bit-exact {r['bit_exact']}, ARM read-back: {emulated._label(r['emulated'])}")


@pytest.fixture(scope="module")
def x86_artifacts(tiny_bnrelu_run: Path, ptq_signed: Path, tmp_path_factory) -> Path:
    """FP32 ONNX, TFLite and OpenVINO IR of the tiny bn-relu model and the INT8 ONNX of its signed PTQ (32 px)."""
    return _export_each(tmp_path_factory.mktemp("emulated-x86") / "export",
                        [(tiny_bnrelu_run, "onnx", "fp32"), (tiny_bnrelu_run, "tflite", "fp32"),
                         (tiny_bnrelu_run, "openvino", "fp32"), (ptq_signed / "best.pt", "onnx", "int8")])


def test_artifacts_agree_with_native_x86_on_emulated_avx2_only_haswell(x86_setup, x86_artifacts, tiny_synth,
                                                                       record_property):
    """Same python, same wheels, CPUID without AVX-512: the runtimes' AVX2 kernels against the host's
    AVX-512/AMX ones."""
    report = emulated.run([str(x86_artifacts)], data=f"synthetic={tiny_synth}", split="val", n=6, cpus=[HASWELL],
                          jobs=2, timeout_s=300, read_back=["litert", "openvino"], progress=False)
    proc = report["processes"][HASWELL]
    assert proc.get("machine") == "x86_64" and proc["heavy_modules_after_import"] == [], proc
    cpuid = set(proc["cpu"]["cpuid"] or [])
    assert "AVX2" in cpuid and not {f for f in cpuid if f.startswith("AVX512")}, cpuid  # what the runtimes saw
    ov = proc["openvino"]  # OpenVINO's own view: no bf16 on a CPU without it, so its default float precision is f32
    assert "BF16" not in ov["capabilities"] and ov["default_precision_hint"] == "f32", ov
    rows = {r["artifact"]: r for r in report["rows"]}
    assert set(rows) == {"m-fp32.onnx", "m-fp32.tflite", "m-fp32.xml", "m-int8.onnx"}, rows
    for name, r in rows.items():
        assert r["status"] == "ok", r
        if r["precision"] == "fp32":
            assert r["agreement"] == 100.0 and r["max_rel_diff"] <= 1e-5, r
        else:  # INT8 ONNX: MLAS's AVX2 u8s8 kernel (vpmaddubsw, no VNNI) sums pairs in int16; with full 8-bit
            # weights it saturated here (rel 1.3e-2 vs the host's VNNI kernel); NNCF's overflow fix on every layer
            # (quantize's default) keeps weights to 7 bits, so the AVX2 machine must give the same numbers
            assert r["agreement"] == 100.0 and r["max_rel_diff"] <= 1e-5, r
        ex = r["emulated"].get("execution")
        if ex and "effective" in ex and r["precision"] == "fp32":
            assert ex["precision_ok"] and ex["effective"].get("precision") == "f32", ex
        line = (f"agreement {r['agreement']:.1f} %, max |d| {r['max_abs_diff']:.2e}, rel {r['max_rel_diff']:.2e}, "
                f"bit-exact {r['bit_exact']}, emulated: {emulated._label(r['emulated'])}")
        record_property(name, line)
        print(f"{HASWELL} {name}: {line}")
    kernels = emulated.kernels(rows["m-fp32.xml"]["emulated"])
    assert (kernels and any("avx2" in k for k in kernels)
            and not any("avx512" in k or "amx" in k for k in kernels)), kernels
    assert not any("bf16" in k for k in kernels), kernels
    print(f"{HASWELL} m-fp32.xml kernels: {kernels}; OpenVINO: {ov}")
