"""N cameras through one Triton server vs N independent ``edgepose run`` processes, and a
server killed mid-stream.

    python benchmarks/serve.py [--frames 150] [--streams 1 4 8] [--instances 2]
        [--out benchmarks/results/serve]

Each stream is a real ``edgepose run`` process (headless, every frame of a 640x480 video
with one real person -- an LSP test photo --, FPS log on) started at the same moment:
either with ``--model`` (ONNX Runtime, 1 thread, its own copy of the model) or with
``--server grpc://localhost:PORT`` against one ``edgepose serve`` (same model, dynamic
batching up to 16 crops, 2 ms queue delay, ``--instances`` model instances of 1 thread).
Reported: aggregate FPS (the streams' own FPS, first to last frame, summed: start-up
is not counted; the streams run side by side), per-frame
latency p50 / p99 (capture -> rendered, from the FPS logs) and the mean batch Triton formed
(its inference / execution counts over the run).

Fault run: 4 streams at a camera's pace (``--realtime``, 30 FPS) through the server; the
server is SIGKILLed after 4 s and started again on the same ports. Reported per stream:
seconds from the kill to its one-line report, whether it said the server was back,
frames dropped meanwhile, and whether every keypoint-log line parses.
Writes ``serve.json`` and ``serve.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgepose.app.serving.server import ServeOptions, TritonServer, free_ports  # noqa: E402
from edgepose.bundled import DEFAULT_MODEL  # noqa: E402
from edgepose.engines.timing import Stopwatch, latency_stats, time_each  # noqa: E402


def make_video(path: Path, frames: int) -> Path:
    img = cv2.imread(str(ROOT / "tests" / "assets" / "lsp" / "im1001.jpg"))
    canvas = np.full((480, 640, 3), 90, np.uint8)
    s = min(600 / img.shape[1], 440 / img.shape[0])
    small = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)))
    canvas[20:20 + small.shape[0], 20:20 + small.shape[1]] = small
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for _ in range(frames):
        w.write(canvas)
    w.release()
    return path


def client_cmd(video: Path, log: Path, server: str | None, extra=()) -> list[str]:
    cmd = [sys.executable, "-m", "edgepose", "run", "--source", str(video), "--headless",
           "--log", str(log), "--threads", "1", *extra]
    if server:
        cmd += ["--server", server]
    else:
        cmd += ["--model", str(DEFAULT_MODEL)]
    return cmd


def run_streams(n: int, video: Path, tmp: Path, server: str | None) -> dict:
    logs = [tmp / f"{'srv' if server else 'loc'}{n}_{i}.jsonl" for i in range(n)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with Stopwatch() as sw:
        procs = [subprocess.Popen(client_cmd(video, log, server, ["--every-frame", "--quiet"]),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                                  text=True) for log in logs]
        errs = [p.communicate()[1] for p in procs]
    wall = sw.seconds[-1]
    bad = [e.strip().splitlines()[-1] for p, e in zip(procs, errs) if p.returncode != 0]
    if bad:
        raise RuntimeError(f"a stream failed: {bad[0]}")
    recs = [json.loads(x) for log in logs for x in log.read_text().splitlines()]
    lat = [r["latency_ms"] for r in recs]
    # each stream's own FPS over its frames (FPS-log summary: first to last frame, so
    # process start-up and model loading are not counted), summed over the streams
    fps = sum(json.loads(log.with_name(log.name + ".summary.json").read_text())["fps_mean"]
              for log in logs)
    return {"streams": n, "frames": len(recs), "wall_s": wall, "fps": fps,
            "latency_p50_ms": float(np.percentile(lat, 50)),
            "latency_p99_ms": float(np.percentile(lat, 99))}


def counts(url: str) -> tuple[int, int]:
    from edgepose.engines.triton_backend import TritonConnection, batch_counts

    conn = TritonConnection(url)
    try:
        return batch_counts(conn.statistics("edgepose_pose"))
    finally:
        conn.close()


def throughput(streams: list[int], frames: int, instances: int, tmp: Path) -> list[dict]:
    video = make_video(tmp / "one_person.avi", frames)
    rows = []
    http, grpc, metrics = free_ports(3)
    opts = ServeOptions(http_port=http, grpc_port=grpc, metrics_port=metrics,
                        instances=instances, threads=1)
    with TritonServer(DEFAULT_MODEL, None, opts) as srv:
        for n in streams:
            local = run_streams(n, video, tmp, None)
            i0, e0 = counts(srv.grpc_url)
            remote = run_streams(n, video, tmp, srv.grpc_url)
            i1, e1 = counts(srv.grpc_url)
            remote["mean_batch"] = (i1 - i0) / max(e1 - e0, 1)
            rows.append({"streams": n, "local": local, "server": remote})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def round_trip(tmp: Path, instances: int, n: int = 200) -> list[dict]:
    """Median ms per call, one caller, batch 1 and 8: local ONNX Runtime (1 thread) vs the
    same model through the server (gRPC): the per-request cost batching has to win back."""
    from edgepose.engines.backend import load_backend
    from edgepose.engines.triton_backend import TritonBackend

    local = load_backend(DEFAULT_MODEL, device="cpu", threads=1)
    http, grpc, metrics = free_ports(3)
    opts = ServeOptions(http_port=http, grpc_port=grpc, metrics_port=metrics,
                        instances=instances, threads=1)
    rows = []
    with TritonServer(DEFAULT_MODEL, None, opts) as srv:
        remote = TritonBackend(srv.grpc_url)
        for b in (1, 8):
            x = np.random.default_rng(0).standard_normal(
                (b, 3, *local.meta.input_size)).astype(np.float32)
            row = {"batch": b}
            for name, be in (("local", local), ("server", remote)):
                be(x)
                row[name] = latency_stats(time_each(lambda: be(x), n // b))["median"]
            rows.append(row)
        remote.close()
    local.close()
    return rows


def fault_run(tmp: Path, streams: int = 4, kill_after_s: float = 4.0) -> dict:
    video = make_video(tmp / "fault.avi", 450)  # 15 s at 30 FPS
    http, grpc, metrics = free_ports(3)
    opts = ServeOptions(http_port=http, grpc_port=grpc, metrics_port=metrics, threads=1)
    srv = TritonServer(DEFAULT_MODEL, None, opts).start()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    events: list[list[tuple[float, str]]] = [[] for _ in range(streams)]
    kps = [tmp / f"fault_kp{i}.jsonl" for i in range(streams)]
    procs = []
    for i in range(streams):
        cmd = client_cmd(video, tmp / f"fault{i}.jsonl", srv.grpc_url,
                         ["--realtime", "--keypoints", str(kps[i])])
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      env=env, text=True, bufsize=1))

    def read(i):
        for line in procs[i].stderr:
            events[i].append((time.monotonic(), line.rstrip()))

    readers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(streams)]
    for t in readers:
        t.start()
    time.sleep(kill_after_s)
    srv.kill()
    killed = time.monotonic()
    t_restart = time.monotonic()
    srv2 = TritonServer(DEFAULT_MODEL, None, opts, srv.python).start()
    restarted_after = time.monotonic() - t_restart
    for p in procs:
        p.wait(timeout=120)
    for t in readers:
        t.join(timeout=5)
    srv2.stop()
    rows = []
    for i in range(streams):
        gone = [t for t, x in events[i] if "unreachable" in x]
        back = [x.split("edgepose: ")[-1] for _, x in events[i] if "is back after" in x]
        lines = kps[i].read_text().splitlines()
        valid = sum(1 for x in lines if _parses(x))
        dropped = [x for x in back]
        rows.append({"stream": i, "report_s": (gone[0] - killed) if gone else None,
                     "reports": len(gone), "back": len(back) == 1,
                     "back_line": dropped[0] if dropped else "",
                     "keypoint_lines": len(lines), "valid_lines": valid,
                     "exit": procs[i].returncode})
    return {"streams": streams, "restart_s": restarted_after, "rows": rows}


def _parses(line: str) -> bool:
    try:
        json.loads(line)
        return True
    except ValueError:
        return False


def report(res: dict) -> str:
    md = [f"Triton serving vs independent processes ({res['machine']}; localhost; one run; "
          f"server: PyTriton {res['pytriton']}, ONNX Runtime, {res['instances']} instance(s) x "
          "1 thread, dynamic batching <= 16, 2 ms delay; each stream a real `edgepose run` "
          f"of {res['frames']} frames, 1 person, ONNX Runtime 1 thread when local).", "",
          "| streams | local: aggregate FPS | local: latency p50 / p99 ms | server: aggregate "
          "FPS | server: latency p50 / p99 ms | server: mean batch formed | server / local FPS |",
          "|---|---|---|---|---|---|---|"]
    for r in res["throughput"]:
        lo, sv = r["local"], r["server"]
        md.append(f"| {r['streams']} | {lo['fps']:.1f} | {lo['latency_p50_ms']:.1f} / "
                  f"{lo['latency_p99_ms']:.1f} | {sv['fps']:.1f} | {sv['latency_p50_ms']:.1f} / "
                  f"{sv['latency_p99_ms']:.1f} | {sv['mean_batch']:.2f} | "
                  f"{sv['fps'] / lo['fps']:.2f} |")
    md += ["", "One caller, one call at a time (median ms per call; gRPC on localhost):", "",
           "| batch | local ONNX Runtime | through the server | server overhead per call |",
           "|---|---|---|---|"]
    for r in res["round_trip"]:
        md.append(f"| {r['batch']} | {r['local']:.2f} | {r['server']:.2f} | "
                  f"{r['server'] - r['local']:.2f} |")
    f = res["fault"]
    md += ["", f"Fault run: {f['streams']} streams at 30 FPS (`--realtime`), server SIGKILLed "
           f"after 4 s, restarted on the same ports (ready again {f['restart_s']:.1f} s later).",
           "", "| stream | reported after (s) | reports | said it was back | keypoint lines "
           "(valid) | exit |", "|---|---|---|---|---|---|"]
    for r in f["rows"]:
        rep = "never" if r["report_s"] is None else f"{max(r['report_s'], 0.0):.2f}"
        md.append(f"| {r['stream']} | {rep} | {r['reports']} | {r['back']} ({r['back_line']}) | "
                  f"{r['keypoint_lines']} ({r['valid_lines']}) | {r['exit']} |")
    return "\n".join(md) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve")
    args = ap.parse_args()
    from importlib.metadata import version

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    res = {"machine": machine, "frames": args.frames, "instances": args.instances}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        res["round_trip"] = round_trip(tmp, args.instances)
        res["throughput"] = throughput(args.streams, args.frames, args.instances, tmp)
        res["fault"] = fault_run(tmp)
    try:
        from edgepose.app.serving.server import serve_python

        out = subprocess.run([str(serve_python()), "-c", "import importlib.metadata as m; "
                              "print(m.version('nvidia-pytriton'))"], capture_output=True,
                             text=True)
        res["pytriton"] = out.stdout.strip()
    except Exception:  # noqa: BLE001 - a label only
        res["pytriton"] = "?"
    res["tritonclient"] = version("tritonclient")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / "serve.md").write_text(report(res))
    print(report(res))


if __name__ == "__main__":
    main()
