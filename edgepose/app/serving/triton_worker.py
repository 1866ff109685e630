"""The Triton server process of ``edgepose serve`` (run by the serving venv's python).

    python triton_worker.py CONFIG.json

Stand-alone on purpose: it imports only the standard library, numpy, onnxruntime and
PyTriton (``nvidia-pytriton``), so the serving venv -- made from the system interpreter,
the one whose ``libpython`` Triton's Python-backend stub links -- needs nothing else and no
edgepose install. ``edgepose serve`` (:mod:`edgepose.app.serving.server`) writes CONFIG.json:

    {"host": "127.0.0.1", "http_port": 8000, "grpc_port": 8001, "metrics_port": 8002,
     "max_delay_us": 2000,
     "ready_file": "...",
     "models": [{"name": "edgepose_pose", "onnx": "...", "kind": "pose", "meta": "{...}",
                 "input_size": [128, 128], "num_joints": 17, "max_batch": 16,
                 "instances": 1, "threads": 1, "device": "cpu"},
                {"name": "person_detector", "onnx": "...", "kind": "detector", ...}]}

Per model it binds ``NAME`` (pose: input ``image`` (3, H, W) float32, outputs ``coords``
(K, 2) and ``scores`` (K,), dynamic batching up to ``max_batch`` with ``max_delay_us``;
detector: no batching, input ``image`` (1, 3, h, w) with h, w free, NanoDet's six level
outputs) and ``NAME_meta`` (input ``request`` bytes (1,), output ``meta`` bytes (1,): the
model's metadata JSON, so a client rebuilds preprocessing from the server). One ONNX
Runtime session per instance. Writes ``{"ready": true, "models": [...]}`` to ``ready_file``
once Triton serves (stdout is Triton's log); SIGTERM / SIGINT stop Triton and exit 0, and
so does the death of the process that started it (it is never left serving alone). If
``tritonserver`` itself dies the worker exits 3, so ``edgepose serve`` stops with an error
instead of running on with nothing listening.

Requests are checked before any model runs: a non-finite value (NaN / inf) and a detector
image larger than ``max_side`` pixels on a side are refused with an error reply (a 4096 x
2048 request once grew the server by 2.3 GB that it never gave back).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading


def ort_session(path: str, threads: int, device: str):
    """A copy of engines.ort_session.make_session's rules in short: this worker runs in the
    serving venv, where edgepose is not installed, so it cannot import it."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers = ["CUDAExecutionProvider", *providers]
    return ort.InferenceSession(path, so, providers=providers)


TRITON_DIED = 3
DETECTOR_MAX_SIDE = 1280  # the detector runs at 320-640 px; clients letterbox to that


def check_finite(image) -> None:
    import numpy as np

    if not np.isfinite(image).all():
        raise ValueError("the request holds NaN or infinite values; send finite pixels")


def check_detector_size(image, max_side: int) -> None:
    if image.ndim != 4 or max(image.shape[-2:]) > max_side:
        raise ValueError(f"detector image {tuple(image.shape)} refused: at most "
                         f"{max_side} px a side (clients letterbox to the detector's size)")


def pose_infer_fn(session):
    """A batched infer function: Triton's dynamic batcher hands it the requests it joined."""
    from pytriton.decorators import batch

    @batch
    def infer(image):
        check_finite(image)
        coords, scores = session.run(["coords", "scores"], {"image": image.astype("float32")})
        return {"coords": coords.astype("float32"), "scores": scores.astype("float32")}

    return infer


def detector_infer_fn(session, outputs):
    def infer(requests):
        replies = []
        for req in requests:
            image = req.data["image"]
            check_detector_size(image, DETECTOR_MAX_SIDE)
            check_finite(image)
            got = session.run(outputs, {"image": image.astype("float32")})
            replies.append(dict(zip(outputs, got)))
        return replies

    return infer


def meta_infer_fn(text: str):
    import numpy as np

    def infer(requests):
        return [{"meta": np.array([text.encode()], dtype=np.object_)} for _ in requests]

    return infer


def bind_all(triton, cfg: dict) -> list[str]:
    import numpy as np
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    names = []
    for m in cfg["models"]:
        sessions = [ort_session(m["onnx"], m.get("threads", 1), m.get("device", "cpu"))
                    for _ in range(max(1, int(m.get("instances", 1))))]
        s0 = sessions[0]
        if m["kind"] == "pose":
            (h, w), k, c = m["input_size"], m["num_joints"], 3
            triton.bind(
                model_name=m["name"], infer_func=[pose_infer_fn(s) for s in sessions],
                inputs=[Tensor(name="image", dtype=np.float32, shape=(int(c), int(h), int(w)))],
                outputs=[Tensor(name="coords", dtype=np.float32, shape=(int(k), 2)),
                         Tensor(name="scores", dtype=np.float32, shape=(int(k),))],
                config=ModelConfig(max_batch_size=int(m["max_batch"]), batcher=DynamicBatcher(
                    max_queue_delay_microseconds=int(cfg.get("max_delay_us", 0)))),
                strict=False)
        else:
            outs = [o.name for o in s0.get_outputs()]
            triton.bind(
                model_name=m["name"], infer_func=[detector_infer_fn(s, outs) for s in sessions],
                inputs=[Tensor(name="image", dtype=np.float32, shape=(1, 3, -1, -1))],
                outputs=[Tensor(name=n, dtype=np.float32, shape=(1, -1, -1)) for n in outs],
                config=ModelConfig(batching=False), strict=False)
        triton.bind(model_name=m["name"] + "_meta", infer_func=meta_infer_fn(m["meta"]),
                    inputs=[Tensor(name="request", dtype=np.bytes_, shape=(1,))],
                    outputs=[Tensor(name="meta", dtype=np.bytes_, shape=(1,))],
                    config=ModelConfig(batching=False))
        names.append(m["name"])
    return names


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        cfg = json.load(f)
    from pytriton.triton import DEFAULT_PROTECTED_ENDPOINTS, Triton, TritonConfig, \
        TritonSecurityConfig

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    host = cfg.get("host", "127.0.0.1")
    tc = TritonConfig(http_port=int(cfg["http_port"]), grpc_port=int(cfg["grpc_port"]),
                      metrics_port=int(cfg["metrics_port"]), http_address=host,
                      grpc_address=host, metrics_address=host,
                      log_verbose=int(cfg.get("log_verbose", 0)))
    # statistics stay open (clients and benchmarks read the batch sizes Triton formed);
    # the repository, shared-memory, trace and logging endpoints keep PyTriton's token
    security = TritonSecurityConfig(restricted_endpoints=[
        e for e in DEFAULT_PROTECTED_ENDPOINTS if e != "statistics"])
    with Triton(config=tc, security_config=security) as triton:
        names = bind_all(triton, cfg)
        triton.run()
        with open(cfg["ready_file"] + ".tmp", "w") as f:
            json.dump({"ready": True, "models": names}, f)
        os.replace(cfg["ready_file"] + ".tmp", cfg["ready_file"])
        parent = os.getppid()
        ticks = 0
        while not stop.wait(0.2):
            if os.getppid() != parent:  # edgepose serve is gone: do not outlive it
                break
            ticks += 1
            if ticks % 10 == 0 and not triton.is_alive():
                print("edgepose worker: error: tritonserver is no longer running",
                      file=sys.stderr, flush=True)
                return TRITON_DIED
    return 0


if __name__ == "__main__":
    sys.exit(main())
