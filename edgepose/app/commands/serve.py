"""``edgepose serve``: one Triton Inference Server for many cameras."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Serve a pose model (and optionally the person detector) with NVIDIA Triton Inference
Server (PyTriton), so many cameras share one machine's accelerator: Triton's dynamic
batcher joins the crops that several 'edgepose run --server' clients send at the same
time into one model call.

Reach it from each camera's machine with:
    edgepose run --source 0 --server grpc://THIS_HOST:8001        (or http://THIS_HOST:8000)
    edgepose predict photos/ --server grpc://THIS_HOST:8001
    edgepose.load(server="grpc://THIS_HOST:8001")
The pose model is served as 'edgepose_pose' (input 'image' (B, 3, H, W) float32, outputs
'coords' and 'scores'), its metadata as 'edgepose_pose_meta' (clients rebuild their
preprocessing from it); --detector adds 'person_detector' (cameras use it with
--detector grpc://THIS_HOST:8001/person_detector; give MODEL before --detector). Prometheus
metrics on --metrics-port. It listens on this machine only (127.0.0.1) unless --host says
otherwise: Triton has no authentication (see docs/serving.md). Ctrl-C, SIGTERM and SIGHUP stop
it gracefully (requests in flight finish); if tritonserver dies, it exits 2 and says so.

The server runs in its own venv made from the system Python (Triton's Python-backend
stub links the system libpython); create it once with:  edgepose serve --install
For a stock Triton container (no edgepose on the server) write a model repository with
'edgepose export MODEL --triton-repo DIR' instead.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from edgepose.app.serving.server import ServeOptions

    d = ServeOptions()
    p = subparsers.add_parser("serve", help="serve a model to many cameras with Triton "
                              "Inference Server", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default=None, metavar="MODEL.onnx",
                   help="the pose model (default: the bundled one)")
    p.add_argument("--detector", nargs="?", const="bundled", default=None, metavar="FILE",
                   help="also serve a person detector (no FILE: the bundled NanoDet)")
    p.add_argument("--host", default=d.host, metavar="ADDR",
                   help=f"address to listen on (default {d.host}: this machine only). Triton "
                        "has no authentication: give 0.0.0.0 to serve cameras on other "
                        "machines only on a network you trust, or behind a proxy that "
                        "authenticates (docs/serving.md)")
    p.add_argument("--http-port", type=int, default=d.http_port, help=f"default {d.http_port}")
    p.add_argument("--grpc-port", type=int, default=d.grpc_port, help=f"default {d.grpc_port}")
    p.add_argument("--metrics-port", type=int, default=d.metrics_port,
                   help=f"Prometheus metrics (default {d.metrics_port})")
    p.add_argument("--max-batch", type=int, default=d.max_batch, metavar="N",
                   help=f"largest batch Triton forms from waiting requests (default "
                        f"{d.max_batch}; about cameras x people per frame)")
    p.add_argument("--max-delay-us", type=int, default=d.max_delay_us, metavar="US",
                   help=f"how long a request may wait for others to join its batch "
                        f"(default {d.max_delay_us} us)")
    p.add_argument("--instances", type=int, default=d.instances, metavar="N",
                   help=f"model instances run in parallel (default {d.instances})")
    p.add_argument("--threads", type=int, default=d.threads, metavar="N",
                   help=f"ONNX Runtime threads per instance (default {d.threads})")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="cuda: ONNX Runtime's CUDA provider where the venv has it")
    p.add_argument("--log", metavar="FILE", help="Triton's own log (default: a temp file, "
                   "named at start)")
    p.add_argument("--install", action="store_true",
                   help="create the serving venv (system Python + nvidia-pytriton) and exit")
    return p


def run(args) -> int:
    import signal
    import sys
    import time

    from edgepose.app.serving.server import (DETECTOR_MODEL, POSE_MODEL, ServeOptions,
                                             TritonServer, install, serve_home)
    from edgepose.bundled import DEFAULT_MODEL
    from edgepose.errors import EdgeposeError

    if args.install:
        python = install(serve_home(), log=lambda m: print(f"edgepose serve: {m}"))
        print(f"edgepose serve: ready ({python})")
        return 0
    for name in ("max_batch", "instances", "threads"):
        if getattr(args, name) < 1:
            raise EdgeposeError(f"--{name.replace('_', '-')} must be >= 1")
    if args.max_delay_us < 0:
        raise EdgeposeError("--max-delay-us must be >= 0")
    detector = None
    if args.detector:
        from edgepose.engines.detector import DEFAULT_DETECTOR

        detector = DEFAULT_DETECTOR if args.detector == "bundled" else args.detector
    opts = ServeOptions(host=args.host, http_port=args.http_port, grpc_port=args.grpc_port,
                        metrics_port=args.metrics_port, max_batch=args.max_batch,
                        max_delay_us=args.max_delay_us, instances=args.instances,
                        threads=args.threads, device=args.device, log=args.log)
    server = TritonServer(args.model or DEFAULT_MODEL, detector, opts)
    stop = {"asked": False}

    def ask_stop(*_):
        stop["asked"] = True

    previous = {s: signal.signal(s, ask_stop)
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        server.start()
        models = POSE_MODEL + (f" and {DETECTOR_MODEL}" if detector else "")
        print(f"edgepose serve: {models} from {args.model or DEFAULT_MODEL} at "
              f"grpc://{opts.host}:{opts.grpc_port} and http://{opts.host}:{opts.http_port} "
              f"(batches up to {opts.max_batch}, waiting up to {opts.max_delay_us} us; "
              f"{opts.instances} instance(s)); Triton's log: {server.log_path}")
        where = ("this machine only (--host 0.0.0.0 serves other machines)"
                 if opts.host in ("127.0.0.1", "localhost", "::1") else
                 "every machine that can reach this one: Triton has no authentication")
        print(f"edgepose serve: listening for {where}; cameras connect with: edgepose run "
              f"--server grpc://HOST:{opts.grpc_port}; Ctrl-C stops", flush=True)
        while not stop["asked"] and server.running():
            time.sleep(0.2)
        if not server.running() and not stop["asked"]:
            raise EdgeposeError(f"the Triton server stopped (exit {server.proc.returncode}): "
                                f"{server.last_log_line()}")
        print("edgepose serve: stopping (requests in flight finish)", file=sys.stderr)
        code = server.stop()
        print(f"edgepose serve: stopped (exit {code})", file=sys.stderr)
        return 0
    finally:
        if server.running():
            server.kill()
        for s, h in previous.items():
            signal.signal(s, h)
