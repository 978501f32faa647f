"""The benchmark harness (``edge-fgic bench``): every artifact and checkpoint on the same images, accuracy
against the FP32 reference with confidence intervals (:mod:`.stats`), latency in a worker process per
artifact (:mod:`.worker`), the machine record (:mod:`.sysinfo`, :mod:`.tegrastats`), the report
(:mod:`.report`), the reference numbers (:mod:`.reference`), roofline and ARM64/x86 emulation.

May import: errors, fileio, progress, targets, data, manifest, models, runtime (not training, quant, export).
"""
