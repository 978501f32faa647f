#!/bin/sh
# Export the Oxford 17 flowers student to every target x precision and prove each artifact
# (round trip on all 271 val images). Needs the runs of benchmarks/quantization/run_oxford17.sh:
#   runs/o17-bnrelu-kd (FP32 student), runs/o17-bnrelu-kd-qat-signed (INT8, signed activations),
#   runs/o17-bnrelu-kd-qat (INT8, NNCF's unsigned activations after ReLU).
# Then: .venv/bin/python benchmarks/export/report.py runs/o17-export > benchmarks/export/oxford17.md
set -e
cd "$(dirname "$0")/../.."
E=".venv/bin/edge-fgic export --check-images 0 --out runs/o17-export --overwrite"
for p in fp32 fp16; do
  $E -m runs/o17-bnrelu-kd/best.pt --target all --precision $p --name student
done
# signed activations: the TensorRT-legal graph, and the TFLite source
$E -m runs/o17-bnrelu-kd-qat-signed/best.pt --target all --precision int8 --name student-signed
# NNCF's unsigned activations after ReLU: onnxruntime's and OpenVINO's faster form on x86
$E -m runs/o17-bnrelu-kd-qat/best.pt --target onnx --precision int8 --name student-unsigned
$E -m runs/o17-bnrelu-kd-qat/best.pt --target openvino --precision int8 --name student-unsigned
$E -m runs/o17-bnrelu-kd-qat/best.pt --target tflite --precision int8 --name student-unsigned
