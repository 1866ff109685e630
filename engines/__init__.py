"""Deployment engines: ONNX export (decoding in the graph), one Backend interface over
PyTorch / ONNX Runtime / TensorRT, and the TensorRT engine builder.

    from edgepose.engines import load_backend
    with load_backend("model.onnx") as backend:
        out = backend(batch)  # {"coords": (B, K, 2) px, "scores": (B, K)}

TensorRT and pycuda are imported only when a ``.engine`` is opened or built.
"""

from edgepose.engines.backend import Backend, BackendOptions, load_backend

__all__ = ["Backend", "BackendOptions", "load_backend"]
