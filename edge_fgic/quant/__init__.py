"""The quantize stage (``edge-fgic quantize``: NNCF PTQ / QAT, :mod:`.nncf_quant`) and the ONNX Q/DQ
graph tools the exporters use (:mod:`.onnx_qdq`). The quantized model itself is :mod:`edge_fgic.models.quantized`.

May import: errors, fileio, progress, data, models, training (not runtime, bench, export).
"""
