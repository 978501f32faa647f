"""The bench harness's machine-facing parts: /proc/cpuinfo + Jetson parsing, tegrastats power sampling and
energy integration (on real tegrastats lines in tests/data/tegrastats/), and the MAC/GEMM roofline."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from edge_fgic.bench import roofline, sysinfo
from edge_fgic.bench.tegrastats import (SUM_OF_RAILS, TegraSample, TegraStatsSampler, energy_per_inference,
                                        parse_line, total_power_mw, total_power_rail)

DATA = Path(__file__).parent / "data" / "tegrastats"

# --------------------------------------------------------------------------------------------- cpuinfo samples

# Verbatim /proc/cpuinfo of the 2-vCPU AMD EPYC (Zen 3, AVX2, no AVX-512) VM this harness was written on.
CPUINFO_X86_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0x1000065
cpu MHz\t\t: 2445.424
cache size\t: 512 KB
physical id\t: 0
siblings\t: 2
core id\t\t: 0
cpu cores\t: 2
apicid\t\t: 0
initial apicid\t: 0
fpu\t\t: yes
fpu_exception\t: yes
cpuid level\t: 13
wp\t\t: yes
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht \
syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid \
tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx \
f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase \
tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves \
clzero xsaveerptr arat umip vaes vpclmulqdq rdpid fsrm
bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass srso spectre_v2_user
bogomips\t: 4890.84
TLB size\t: 2560 4K pages
clflush size\t: 64
cache_alignment\t: 64
address sizes\t: 48 bits physical, 48 bits virtual
power management:

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0x1000065
cpu MHz\t\t: 2445.424
cache size\t: 512 KB
physical id\t: 0
siblings\t: 2
core id\t\t: 1
cpu cores\t: 2
apicid\t\t: 1
initial apicid\t: 1
fpu\t\t: yes
fpu_exception\t: yes
cpuid level\t: 13
wp\t\t: yes
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht \
syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid \
tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx \
f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase \
tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves \
clzero xsaveerptr arat umip vaes vpclmulqdq rdpid fsrm
bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass srso spectre_v2_user
bogomips\t: 4890.84
TLB size\t: 2560 4K pages
clflush size\t: 64
cache_alignment\t: 64
address sizes\t: 48 bits physical, 48 bits virtual
power management:
"""

# Real-looking Cascade Lake host (2 cores x 2 hyper-threads shown); the flags line is verbatim from a public
# Xeon Gold 62xx dump (cache 28160 KB, stepping 7) in the search index.
_CLX_FLAGS = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse "
              "sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good nopl "
              "xtopology nonstop_tsc cpuid aperfmperf pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 sdbg "
              "fma cx16 xtpr pdcm pcid dca sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c "
              "rdrand lahf_lm abm 3dnowprefetch cpuid_fault epb cat_l3 cdp_l3 invpcid_single intel_ppin ssbd mba ibrs "
              "ibpb stibp ibrs_enhanced tpr_shadow vnmi flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 hle avx2 "
              "smep bmi2 erms invpcid rtm cqm mpx rdt_a avx512f avx512dq rdseed adx smap clflushopt clwb intel_pt "
              "avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc cqm_mbm_total "
              "cqm_mbm_local dtherm ida arat pln pts pku ospke avx512_vnni md_clear flush_l1d arch_capabilities")
CPUINFO_X86_VNNI = "\n\n".join(
    f"processor\t: {cpu}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
    f"model name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz\nstepping\t: 7\ncpu MHz\t\t: 2500.000\n"
    f"cache size\t: 28160 KB\nphysical id\t: 0\nsiblings\t: 4\ncore id\t\t: {core}\ncpu cores\t: 2\n"
    f"flags\t\t: {_CLX_FLAGS}\nbogomips\t: 5000.00\n"
    for cpu, core in ((0, 0), (1, 1), (2, 0), (3, 1)))

# Jetson AGX Orin (12x Cortex-A78AE, JetPack 6 / L4T R36.4.3). The Features list is verbatim from that board's
# `lscpu` in github.com/hu-po/warp-ik docs/specs/arm-agx.md (identical in KavrakiLab/vamp issue #20, an AGX
# Orin); "Stepping: r0p1" there = CPU variant 0x0 / revision 1, and 0xd42 is Cortex-A78AE's MIDR part number
# (Linux arch/arm64/include/asm/cputype.h). The per-processor block layout is the kernel's arm64 format.
_ORIN_FEATURES = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp "
                  "uscat ilrcpc flagm paca pacg")
CPUINFO_JETSON_ORIN = "\n".join(
    f"processor\t: {i}\nBogoMIPS\t: 62.50\nFeatures\t: {_ORIN_FEATURES}\nCPU implementer\t: 0x41\n"
    f"CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd42\nCPU revision\t: 1\n" for i in range(12))

# Jetson Xavier NX (NVIDIA Carmel), verbatim first two processors of github.com/hrw/arm-socs-table issue #26.
CPUINFO_XAVIER_NX = """processor       : 0
model name      : ARMv8 Processor rev 0 (v8l)
BogoMIPS        : 62.50
Features        : fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp
CPU implementer : 0x4e
CPU architecture: 8
CPU variant     : 0x0
CPU part        : 0x004
CPU revision    : 0
MTS version     : 51035886

processor       : 1
model name      : ARMv8 Processor rev 0 (v8l)
BogoMIPS        : 62.50
Features        : fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp
CPU implementer : 0x4e
CPU architecture: 8
CPU variant     : 0x0
CPU part        : 0x004
CPU revision    : 0
MTS version     : 51035886
"""


def test_parse_cpuinfo_x86_avx2_only():
    info = sysinfo.parse_cpuinfo(CPUINFO_X86_AVX2, "x86_64")
    assert info["model"] == "AMD EPYC"
    assert (info["logical_cores"], info["physical_cores"]) == (2, 2)
    assert info["isa"] == ["avx", "avx2", "f16c", "fma", "sse4_2"]


def test_parse_cpuinfo_x86_avx512_vnni_with_hyperthreads():
    info = sysinfo.parse_cpuinfo(CPUINFO_X86_VNNI, "x86_64")
    assert info["model"] == "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"
    assert (info["logical_cores"], info["physical_cores"]) == (4, 2)  # 2 (physical id, core id) pairs
    assert info["isa"] == ["avx", "avx2", "avx512_vnni", "avx512bw", "avx512f", "avx512vl", "f16c", "fma", "sse4_2"]


def test_parse_cpuinfo_jetson_orin():
    info = sysinfo.parse_cpuinfo(CPUINFO_JETSON_ORIN, "aarch64")
    assert info["model"] == "Cortex-A78AE" and info["cpu_parts"] == ["Cortex-A78AE"]
    assert info["logical_cores"] == 12 and info["physical_cores"] is None
    assert info["isa"] == ["asimd", "asimddp", "asimdhp", "fphp"]  # dot product, FP16; no i8mm/bf16/SVE on A78AE


def test_parse_cpuinfo_xavier_nx_carmel_space_separated():
    info = sysinfo.parse_cpuinfo(CPUINFO_XAVIER_NX, "aarch64")
    assert info["model"] == "NVIDIA Carmel" and info["logical_cores"] == 2
    assert info["isa"] == ["asimd", "asimdhp", "fphp"]  # no asimddp in Carmel's Features


def test_parse_cpuinfo_unknown_arm_part_falls_back_to_raw_id():
    info = sysinfo.parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xfff\n",
                                 "aarch64")
    assert info["model"] == "CPU part 0xfff" and info["isa"] == ["asimd"]


def test_parse_nvpmodel_and_tegra_release():
    # `nvpmodel -q` on an Orin Nano Super, JetPack 6.2.1 (github.com/xulei-leon/particleML,
    # docs/engineering/jetson-orin-nano-debugging.md), and the last line of `jetson_clocks --show` on an
    # AGX Orin (github.com/catid/blog2022 content/posts/orin_opt.md).
    assert sysinfo.parse_nvpmodel("NV Power Mode: 25W\n1\n") == {"mode": "25W", "id": 1}
    assert sysinfo.parse_nvpmodel("FAN Dynamic Speed control=active hwmon2_pwm1=55\nNV Power Mode: MAXN\n") == {
        "mode": "MAXN", "id": None}
    assert sysinfo.parse_nvpmodel("nvpmodel: command not found") is None
    release = ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
               "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\n")  # same particleML doc
    assert sysinfo.parse_tegra_release(release) == {"l4t": "36.4.3", "board": "generic"}


def test_live_system_report_on_this_machine():
    report = sysinfo.system_report()
    assert set(report) == {"cpu", "gpu", "jetson", "os", "python", "libraries"}
    cpu = report["cpu"]
    assert cpu["logical_cores"] >= 1 and isinstance(cpu["isa"], list) and cpu["arch"]
    assert report["libraries"]["torch"] == torch.__version__.split("+")[0]
    if not torch.cuda.is_available():
        assert report["gpu"] is None
    if not Path("/etc/nv_tegra_release").exists():
        assert report["jetson"] is None
    assert "not-a-real-dist" not in sysinfo.library_versions(("numpy", "not-a-real-dist"))


# ----------------------------------------------------------------------------------------------- tegrastats


def _lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


@pytest.mark.parametrize("name", ["orin_nano.txt", "agx_orin.txt", "xavier_nx.txt", "nano.txt", "nano_devkit.txt"])
def test_every_real_line_parses(name: str):
    lines = _lines(name)
    assert lines[0].startswith("#")  # provenance header
    samples = [parse_line(line) for line in lines]
    real = [s for s in samples if s is not None]
    assert len(real) == sum(1 for line in lines if line.strip() and not line.startswith("#")) >= 1
    for s in real:
        assert s.ram_used_mb and s.rails and s.temps
        assert not {"RAM", "SWAP", "IRAM"} & set(s.rails)
        assert total_power_mw(s) > 0


def test_orin_nano_jetpack6_line():
    s = parse_line(_lines("orin_nano.txt")[3])
    assert s.timestamp == "07-29-2026 18:00:27" and (s.ram_used_mb, s.ram_total_mb) == (2272, 7620)
    assert (s.gpu_util, s.gpu_mhz) == (0, None)
    assert s.rails == {"VDD_IN": (4673, 4673), "VDD_CPU_GPU_CV": (527, 527), "VDD_SOC": (1339, 1339)}
    assert s.temps["tj"] == 56.656 and s.temps["cpu"] == 54.937 and len(s.temps) == 6
    assert total_power_rail(s) == "VDD_IN" and total_power_mw(s) == 4673


def test_agx_orin_line_sums_module_rails():
    s = parse_line(_lines("agx_orin.txt")[3])
    assert (s.gpu_util, s.gpu_mhz) == (0, 0)  # "GR3D_FREQ 0%@0"
    assert s.rails["VDD_GPU_SOC"] == (2399, 2399) and s.rails["VIN_SYS_5V0"] == (4032, 4032)
    assert s.rails["VDDQ_VDD2_1V8AO"] == (301, 301) and s.rails["NC"] == (0, 0)
    assert "CV0" not in s.temps and "GPU" not in s.temps and s.temps["tj"] == 42.593  # -256C = sensor off
    assert total_power_rail(s) == SUM_OF_RAILS and total_power_mw(s) == 2399 + 400 + 4032 + 301


def test_xavier_nx_jetpack4_line_without_mw_suffix():
    s = parse_line(_lines("xavier_nx.txt")[4])
    assert s.timestamp is None and s.gpu_util == 99 and s.gpu_mhz is None and s.ram_used_mb == 1749
    assert s.rails == {"VDD_IN": (14664, 13950), "VDD_CPU_GPU_CV": (10874, 10241), "VDD_SOC": (1442, 1412)}
    assert s.temps["thermal"] == 52.2 and total_power_mw(s) == 14664


def test_nano_pom_lines():
    s = parse_line(_lines("nano.txt")[3])
    assert s.rails == {"POM_5V_GPU": (8949, 8742), "POM_5V_IN": (3227, 3086), "POM_5V_CPU": (3148, 3134)}
    assert total_power_rail(s) == "POM_5V_IN" and s.gpu_util == 99
    dev = parse_line(_lines("nano_devkit.txt")[5])
    assert (dev.gpu_util, dev.gpu_mhz) == (16, 76) and dev.rails["POM_5V_IN"] == (2247, 2189)
    assert dev.temps["iwlwifi"] == 44.0 and "IRAM" not in dev.rails


def test_newer_three_value_rails_and_dual_temps_are_accepted():
    # JetPack 7-style fields (instant/average/max rails, "cpu@51.3C/51.3C" temperatures), trimmed line.
    s = parse_line("RAM 8182/62817MB (lfb 6x4MB) GR3D_FREQ 12%@[1300,1300] cpu@51.343C/51.343C "
                   "VDD_GPU_SOC 3588mW/3588mW/3588mW VDD_CPU_CV 797mW/797mW/797mW VIN_SYS_5V0 5148mW/5148mW/5148mW")
    assert (s.gpu_util, s.gpu_mhz) == (12, 1300) and s.temps == {"cpu": 51.343}
    assert s.rails["VIN_SYS_5V0"] == (5148, 5148) and total_power_mw(s) == 3588 + 797 + 5148


def test_comments_and_garbage():
    assert parse_line("# a comment") is None and parse_line("   ") is None
    with pytest.raises(ValueError):
        parse_line("NVPM WARN: fan mode is not set!")


def _series(powers_by_t: dict[float, float], rail: str = "VDD_IN") -> list[TegraSample]:
    return [TegraSample(t=t, ram_used_mb=1, gpu_util=0, gpu_mhz=None, rails={rail: (round(p), round(p))}, temps={})
            for t, p in powers_by_t.items()]


def test_energy_constant_power():
    samples = _series({i / 10: 5000 for i in range(31)})  # 5 W from t=0 to 3 s, every 100 ms
    e = energy_per_inference(samples, 100, 0.5, 2.5)  # 2 s window: 10 J over 100 inferences
    assert e["rail"] == "VDD_IN" and e["method"] == "trapezoid" and e["samples_in_window"] == 21
    assert e["mean_power_mw"] == pytest.approx(5000) and e["energy_j"] == pytest.approx(10.0)
    assert e["mj_per_inference"] == pytest.approx(100.0)
    assert (energy_per_inference(samples, 100, 0.5, 2.5, baseline_mw=3000)["dynamic_mj_per_inference"]
            == pytest.approx(40.0))


def test_energy_ramp_and_sub_interval_window():
    ramp = _series({i / 2: 1000 + 1000 * i / 2 for i in range(9)})  # P = 1000 + 1000 t mW, t in 0..4 s
    e = energy_per_inference(ramp, 4, 1.2, 3.1)  # edges fall between samples: mean = P(2.15)
    assert e["mean_power_mw"] == pytest.approx(3150) and e["energy_j"] == pytest.approx(3.15 * 1.9)
    sparse = _series({0.0: 5000, 1.0: 7000})
    e = energy_per_inference(sparse, 1, 0.25, 0.75)
    assert e["samples_in_window"] == 0 and e["method"].startswith("interpolated")
    assert e["mean_power_mw"] == pytest.approx(6000)


def test_energy_sum_of_rails_and_edge_cases():
    agx = parse_line(_lines("agx_orin.txt")[3])
    samples = [TegraSample(**{**agx.__dict__, "t": t}) for t in (0.0, 0.5, 1.0)]
    e = energy_per_inference(samples, 10, 0.0, 1.0)
    assert e["rail"] == SUM_OF_RAILS and "VIN_SYS_5V0" in e["rail_note"] and e["mean_power_mw"] == pytest.approx(7132)
    assert energy_per_inference([], 10, 0.0, 1.0)["mean_power_mw"] is None
    with pytest.raises(ValueError):
        energy_per_inference(samples, 0, 0.0, 1.0)
    with pytest.raises(ValueError):
        energy_per_inference(samples, 10, 1.0, 1.0)


def _fake_tegrastats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "line.txt").write_text(_lines("orin_nano.txt")[3] + "\n")
    script = bin_dir / "tegrastats"
    script.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args.txt"\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def test_sampler_with_fake_tegrastats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    tmp = _fake_tegrastats(tmp_path, monkeypatch, f'while true; do cat "{tmp_path}/line.txt"; sleep 0.05; done')
    with TegraStatsSampler(interval_ms=50) as sampler:
        time.sleep(0.15)
        t0 = sampler.now()
        time.sleep(0.5)
        t1 = sampler.now()
        assert sampler.alive
    assert not sampler.alive and sampler.returncode is not None  # terminated on exit
    assert (tmp / "args.txt").read_text().split() == ["--interval", "50"]
    ts = [s.t for s in sampler.samples]
    assert len(ts) >= 6 and ts == sorted(ts)
    e = energy_per_inference(sampler.samples, 50, t0, t1)
    assert e["rail"] == "VDD_IN" and e["samples_in_window"] >= 4 and e["mean_power_mw"] == pytest.approx(4673)
    assert e["mj_per_inference"] == pytest.approx(4.673 * (t1 - t0) / 50 * 1e3)


def test_sampler_survives_tegrastats_dying(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _fake_tegrastats(tmp_path, monkeypatch,
                     f'cat "{tmp_path}/line.txt"; echo "some warning"; cat "{tmp_path}/line.txt"; exit 3')
    with TegraStatsSampler(interval_ms=50) as sampler:
        deadline = time.monotonic() + 10
        while sampler.alive and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not sampler.alive
    assert sampler.returncode == 3 and len(sampler.samples) == 2 and sampler.errors == ["some warning"]


def test_sampler_without_tegrastats_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="Jetson"):
        with TegraStatsSampler():
            pass


# ------------------------------------------------------------------------------------------------- roofline


def test_count_macs_by_hand():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),  # 8x8 -> 4x4: 8*4*4 outputs * 3*3*3 = 128*27 = 3456
        nn.BatchNorm2d(8), nn.ReLU(),  # not counted
        nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise: 8*4*4 * (8/8)*3*3 = 128*9 = 1152
        nn.Conv2d(8, 16, 1, groups=2),  # grouped 1x1: 16*4*4 * (8/2)*1*1 = 256*4 = 1024
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, 10),  # 10 outputs * 16 = 160
    )
    model.train()
    assert roofline.count_macs(model, 8) == 3456 + 1152 + 1024 + 160
    assert model.training  # mode restored
    assert not any(m._forward_hooks for m in model.modules())  # hooks removed


def test_achieved():
    assert roofline.achieved(2e9, 10.0) == pytest.approx(2e11)


def test_gemm_peak_shapes():
    threads = torch.get_num_threads()
    fp32 = roofline.gemm_peak("fp32", threads=1, size=64, seconds=0.05)
    assert fp32["precision"] == "fp32" and fp32["backend"] in fp32["backends"] and fp32["threads"] == 1
    assert fp32["macs_per_s"] > 0 and fp32["gflops"] == pytest.approx(2 * fp32["macs_per_s"] / 1e9)
    int8 = roofline.gemm_peak("int8", threads=1, size=64, seconds=0.05)
    assert set(int8["backends"]) == {"torch._int_mm", "onnxruntime.MatMulInteger", "openvino.MatMul.int8"}
    assert int8["backend"] in int8["backends"] and int8["macs_per_s"] > 0 and int8["fp32_macs_per_s"] > 0
    assert int8["note"] is None or "(fp32)" in int8["note"]
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError):
        roofline.gemm_peak("fp8")
