"""TensorRT engines (``.engine``), on a CUDA GPU or a Jetson.

I/O buffers are torch CUDA tensors (torch is already a dependency, so no pycuda); the engine runs
with ``execute_async_v3`` on torch's current stream. Engines are specific to the GPU and the
TensorRT version that built them: build them on the device (``edge-fgic export --target tensorrt``
there, or the ``trtexec`` command written next to the ONNX).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .base import Runner


def tensorrt_available() -> tuple[bool, str]:
    """(True, version) when engines can be built and run here, else (False, why)."""
    try:
        import tensorrt as trt
    except ImportError:
        return False, ("the `tensorrt` Python package is not installed "
                       "(JetPack ships it on Jetson; on a GPU host `pip install tensorrt`)")
    try:
        import torch
        if not torch.cuda.is_available():
            return False, "no CUDA GPU visible to torch"
    except ImportError:  # pragma: no cover - torch is a core dependency
        return False, "torch is missing"
    return True, trt.__version__


class TensorRTRunner(Runner):
    backend = "tensorrt"

    @classmethod
    def version(cls) -> str:
        import tensorrt as trt
        return trt.__version__

    def _load(self) -> None:
        ok, why = tensorrt_available()
        if not ok:
            raise UserError(f"{self.path}: cannot run a TensorRT engine here: {why}")
        import tensorrt as trt
        import torch
        self._torch = torch
        self.logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(self.logger)
        self.engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise UserError(f"{self.path}: TensorRT could not deserialize the engine (built by another TensorRT "
                            "version or GPU?); rebuild it on this device")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        # by name: an engine built from an `export --embedding` ONNX has a second output, "embedding"
        self.logits_name = "logits" if "logits" in self.outputs else self.outputs[0]
        shape = tuple(self.engine.get_tensor_shape(self.inputs[0]))
        self.batch = shape[0] if shape[0] > 0 else None
        self.device_index = 0 if self.device in ("cpu", "cuda", "auto") else int(self.device.split(":")[-1])

    def _io_shapes(self):
        return (list(self.engine.get_tensor_shape(self.inputs[0])),
                list(self.engine.get_tensor_shape(self.logits_name)))

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self._run_outputs(x)["logits"]

    def _run_outputs(self, x: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        dev = torch.device("cuda", self.device_index)
        name = self.inputs[0]
        xin = torch.from_numpy(x).pin_memory().to(dev, non_blocking=True)
        self.context.set_input_shape(name, tuple(xin.shape))
        self.context.set_tensor_address(name, xin.data_ptr())
        outs = {}
        for out_name in self.outputs:  # every output needs an address, whichever the caller reads
            outs[out_name] = torch.empty(tuple(self.context.get_tensor_shape(out_name)), dtype=torch.float32,
                                         device=dev)
            self.context.set_tensor_address(out_name, outs[out_name].data_ptr())
        stream = torch.cuda.current_stream(dev)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(stream)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise UserError(f"{self.path}: TensorRT execution failed")
        end.record(stream)
        stream.synchronize()
        self.last_gpu_ms = start.elapsed_time(end)  # the engine alone, without the host<->device copies
        result = {n: t.cpu().numpy() for n, t in outs.items()}
        result["logits"] = result[self.logits_name]
        return result
