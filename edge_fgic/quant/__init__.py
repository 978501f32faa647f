"""INT8 quantization (NNCF PTQ / QAT) and its ONNX Q/DQ tools."""
