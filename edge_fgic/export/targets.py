"""The table of export targets: one row per target, read by ``export``, ``bench``, ``doctor`` and
the docs (Ultralytics' ``export_formats()`` is the model). Adding a target = one module + one row."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from ..errors import UserError


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str              # the artifact's file suffix
    precisions: tuple[str, ...]
    runtime: str             # the runner that proves the artifact (edge_fgic.runtime)
    extra: str               # pip extra that installs the converter/runtime
    needs_gpu: bool          # to build the final artifact
    module: str              # edge_fgic.export.<module>.export(job) builds it
    packages: tuple[str, ...]  # importable modules the target needs
    description: str
    isolate: bool = False    # the converter can exit()/abort in native code: run it in a child process
    calibrates: bool = False  # its INT8 build calibrates again (the child gets the parent's calibration images)

    def build(self):
        """The function that builds this target from an ExportJob (in a child process where ``isolate``)."""
        if self.isolate:
            from .isolate import run_isolated
            return run_isolated
        return self.exporter()

    def missing(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]

    def exporter(self):
        return importlib.import_module(f"edge_fgic.export.{self.module}").export


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("onnx", ".onnx", ("fp32", "fp16", "int8"), "onnxruntime", "core", False, "onnx_export",
           ("onnx", "onnxruntime"),
           "ONNX opset 17; INT8 as explicit QuantizeLinear/DequantizeLinear (uint8 activations: onnxruntime's fast path on x86)"),
    Target("tensorrt", ".engine", ("fp32", "fp16", "int8"), "tensorrt", "tensorrt", True, "tensorrt_export",
           ("onnx", "onnxruntime"),
           "TensorRT-bound ONNX (strongly typed; INT8 = signed int8, zero-point 0 Q/DQ) + trtexec command; "
           "the .engine itself where TensorRT and a GPU exist, built in a process of its own (TensorRT's builder "
           "can abort or run out of memory in native code)", isolate=True),
    Target("tflite", ".tflite", ("fp32", "fp16", "int8"), "litert", "tflite", False, "tflite_export",
           ("litert_torch", "ai_edge_litert", "ai_edge_quantizer"),
           "LiteRT/TFLite flatbuffer (NHWC input, builtin ops only) via litert-torch; INT8 full-integer via "
           "ai-edge-quantizer with NNCF's activation ranges carried over; metadata + labels for Android; "
           "converted in a process of its own (the converter can exit() in native code)", isolate=True,
           calibrates=True),
    Target("openvino", ".xml", ("fp32", "fp16", "int8"), "openvino", "core", False, "openvino_export",
           ("openvino",),
           "OpenVINO IR (.xml + .bin) from the PyTorch/NNCF model; runs NNCF's INT8 in integer on x86; converted "
           "and compiled once for the CPU in a process of its own (a crash in OpenVINO's native code is one line)",
           isolate=True),
]}

PRECISIONS = ("fp32", "fp16", "int8")


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise UserError(f"unknown export target {name!r}; choose one of: {', '.join(TARGETS)}, all")
    return TARGETS[name]
