"""Triton serving on localhost: a real server (PyTriton's tritonserver, started by
``edgepose serve``'s own code in its venv) and the remote backend clients use.

Needs the serving venv (``edgepose serve --install``; CI makes it where it can) and
tritonclient; without them the server tests skip with the reason. Every wait is bounded.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.app.api import load
from edgepose.app.serving.server import (ServeOptions, TritonServer, free_ports,
                                         host_problem, interpreter_facts, serve_python)
from edgepose.bundled import DEFAULT_MODEL
from edgepose.engines.detector import DEFAULT_DETECTOR
from edgepose.errors import EngineError

ROOT = Path(__file__).resolve().parents[1]
MULTI = ROOT / "tests" / "assets" / "multi"
LSP = ROOT / "tests" / "assets" / "lsp"


def serving_python():
    pytest.importorskip("tritonclient.grpc", reason="tritonclient not installed "
                        "(pip install 'edgepose[serve]')")
    try:
        return serve_python()
    except EngineError as e:
        pytest.skip(f"no Triton serving venv here: {e}")


def start_server(max_delay_us: int = 20000, detector=None) -> TritonServer:
    http, grpc, metrics = free_ports(3)
    opts = ServeOptions(http_port=http, grpc_port=grpc, metrics_port=metrics,
                        max_delay_us=max_delay_us, startup_timeout_s=90)
    return TritonServer(DEFAULT_MODEL, detector, opts, serving_python()).start()


@pytest.fixture(scope="module")
def server():
    srv = start_server(detector=DEFAULT_DETECTOR)
    yield srv
    assert srv.stop() == 0, "graceful stop exits 0"


# ----------------------------------------------------------------------- no server needed


def test_this_interpreter_is_judged_as_triton_sees_it():
    """The stub links the system libpython: only a system build can host the models."""
    facts = interpreter_facts(sys.executable)
    problem = host_problem(facts)
    if facts["base_prefix"] != "/usr":
        assert "not the system build" in problem and "_recursion_count" in problem
    assert host_problem({**facts, "version": [3, 7]}).startswith("Python 3.7 has no")
    fake = {"version": [3, 11], "base_prefix": "/usr", "libdir": "/nonexistent",
            "ldlibrary": "", "multiarch": "nowhere"}
    assert "libpython3.11.so.1.0 is missing" in host_problem(fake)
    if Path("/usr/bin/python3").exists():
        sysfacts = interpreter_facts("/usr/bin/python3")
        lib = f"libpython{sysfacts['version'][0]}.{sysfacts['version'][1]}.so.1.0"
        has_lib = any(p.exists() for p in (Path(sysfacts["libdir"]) / lib,
                                           Path("/lib") / sysfacts["multiarch"] / lib))
        assert (host_problem(sysfacts) is None) == has_lib


def test_serve_without_its_venv_is_one_line(tmp_path, monkeypatch, capsys):
    from edgepose.app.cli import main

    monkeypatch.setenv("EDGEPOSE_SERVE_PYTHON", str(tmp_path / "nope" / "python"))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "edgepose serve --install" in err, err
    monkeypatch.setenv("EDGEPOSE_SERVE_PYTHON", sys.executable)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert ("system build" in err or "does not import" in err), err


def test_bad_server_urls_and_no_server_are_one_line():
    pytest.importorskip("tritonclient.grpc")
    from edgepose.engines.triton_backend import TritonBackend, parse_url

    assert parse_url("grpc://gpu-box:9001/other") == ("grpc", "gpu-box:9001", "other")
    assert parse_url("http://gpu-box") == ("http", "gpu-box:8000", "edgepose_pose")
    with pytest.raises(EngineError, match="expected grpc://HOST:PORT"):
        parse_url("ftp://x")
    (port,) = free_ports(1)
    t0 = time.monotonic()
    with pytest.raises(EngineError, match="cannot open the model on the server.*unreachable"):
        TritonBackend(f"grpc://127.0.0.1:{port}", timeout_s=1.0)
    assert time.monotonic() - t0 < 5


def test_serving_a_checkpoint_is_refused_with_the_fix(tmp_path):
    from edgepose.app.serving.server import model_entries

    with pytest.raises(EngineError, match="export it first"):
        model_entries(tmp_path / "m.pt", None, ServeOptions())


# ----------------------------------------------------------------------- a real server


def test_keypoints_through_the_server_equal_local_onnx_runtime(server):
    local = load(DEFAULT_MODEL, device="cpu", threads=1)
    gt = json.loads((MULTI / "person_keypoints.json").read_text())
    for url in (server.grpc_url, server.http_url):
        remote = load(server=url)
        assert remote.meta.to_dict() == local.meta.to_dict(), "metadata from the server"
        for im in gt["images"]:
            img = cv2.imread(str(MULTI / im["file_name"]))
            boxes = [a["bbox"] for a in gt["annotations"] if a["image_id"] == im["id"]
                     and a["num_keypoints"] > 0]
            a, b = local.predict(img, boxes), remote.predict(img, boxes)
            assert len(a) == len(b) == len(boxes) > 0
            for p, q in zip(a, b):
                assert np.abs(p.keypoints - q.keypoints).max() <= 1e-3
                assert np.abs(p.scores - q.scores).max() <= 1e-5
        remote.close()


def test_two_concurrent_clients_are_batched_together(server):
    from edgepose.engines.triton_backend import TritonBackend, batch_sizes

    crop = np.zeros((1, 3, *load(DEFAULT_MODEL).meta.input_size), np.float32)
    clients = [TritonBackend(server.grpc_url) for _ in range(2)]
    before = batch_sizes(clients[0].statistics())
    go = threading.Barrier(2)

    def send(c):
        for _ in range(15):
            go.wait(timeout=10)
            c(crop)

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    after = batch_sizes(clients[0].statistics())
    joined = {b: n - before.get(b, 0) for b, n in after.items() if b >= 2}
    assert sum(joined.values()) >= 1, f"Triton never joined two 1-crop requests: {after}"
    for c in clients:
        c.close()


def test_wrong_model_bad_request_and_mismatch_are_one_line(server, tmp_path):
    from edgepose.engines.triton_backend import TritonBackend

    with pytest.raises(EngineError, match="cannot open the model on the server") as e:
        TritonBackend(server.grpc_url + "/no_such_model")
    assert len(str(e.value).splitlines()) == 1
    remote = TritonBackend(server.grpc_url)
    with pytest.raises(EngineError, match=r"expected a batch of shape \(B, 3, 128, 128\)"):
        remote(np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(EngineError, match="refused inference") as e:
        remote.conn.infer("edgepose_pose", {"image": np.zeros((1, 3, 64, 64), np.float32)},
                          ["coords"])
    assert len(str(e.value).splitlines()) == 1
    remote.close()
    other = ROOT / "edgepose" / "assets" / "real_heatmap_64.onnx"
    with pytest.raises(EngineError, match="input_size") as e:
        load(other, server=server.grpc_url)
    assert len(str(e.value).splitlines()) == 1


def test_the_detector_through_the_server_finds_the_same_people(server):
    from edgepose.engines.triton_backend import TritonConnection

    conn = TritonConnection(server.grpc_url)
    meta = json.loads(conn.model_meta_text("person_detector"))
    assert meta["resize"] == "keep_aspect" and meta["licence"] == "Apache-2.0"
    from edgepose.engines.detector import Detector

    det = Detector(threads=1)
    img = cv2.imread(str(MULTI / "000000252219.jpg"))
    x, hw, _ = det.letterbox(img)
    names = [f"{k}_s{s}" for s in (8, 16, 32) for k in ("scores", "boxes")]
    got = conn.infer("person_detector", {"image": x}, names)
    want = det.session.run(names, {"image": x})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)
    conn.close()


def test_killed_server_one_line_fast_failures_and_reconnect(tmp_path, capsys):
    """The live pipeline on a real video through a server killed mid-stream: one line when
    it goes, one when it is back (same ports), frames counted as dropped meanwhile, no
    hang, and every keypoint-log line is valid JSON."""
    from edgepose.realtime.pipeline import PipelineOptions
    from edgepose.realtime.runner import RunOptions, run_app

    srv = start_server()
    video = tmp_path / "walk.avi"
    img = cv2.imread(str(LSP / "im1001.jpg"))
    img = cv2.resize(img, (img.shape[1] // 2 * 2, img.shape[0] // 2 * 2))
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, img.shape[1::-1])
    for _ in range(400):
        w.write(img)
    w.release()
    state = {"n": 0, "restarted": None, "killed_at": None, "thread": None}

    def on_frame(frame, people):
        state["n"] += 1
        if state["n"] == 15:
            srv.kill()
            state["killed_at"] = time.monotonic()

            def restart():
                state["restarted"] = TritonServer(DEFAULT_MODEL, None, srv.opts,
                                                  srv.python).start()

            state["thread"] = threading.Thread(target=restart, daemon=True)
            state["thread"].start()
        time.sleep(0.03)  # a camera's pace: 400 frames ~ 12 s, the restart fits inside

    from edgepose.engines.triton_backend import TritonBackend

    backend = TritonBackend(srv.grpc_url, timeout_s=1.0)
    kp = tmp_path / "poses.jsonl"
    opts = RunOptions(model=srv.grpc_url, source=str(video), headless=True, quiet=True,
                      keypoints=str(kp), pipeline=PipelineOptions(on_frame=on_frame))
    opts.capture.every_frame = True
    t0 = time.monotonic()
    try:
        run_app(opts, backend=backend)
    finally:
        backend.close()
        if state.get("thread") is not None:  # never leave a restarted server behind
            state["thread"].join(timeout=120)
        if state["restarted"] is not None:
            state["restarted"].stop()
        srv.kill()
    assert time.monotonic() - t0 < 60
    err = capsys.readouterr().err
    gone = [x for x in err.splitlines() if "unreachable" in x]
    back = [x for x in err.splitlines() if "is back after" in x]
    assert len(gone) == 1 and len(back) == 1, err
    lines = [json.loads(x) for x in kp.read_text().splitlines()]  # none corrupt
    assert len(lines) == 400
    with_people = [i for i, r in enumerate(lines) if r["people"]]
    empty = [i for i, r in enumerate(lines) if not r["people"]]
    assert with_people[0] < 15 and empty, "people before the kill, dropped frames after"
    assert with_people[-1] > empty[0], "people again once the server was back"
    assert backend.conn.failures >= len(empty)


def test_live_multi_with_the_served_detector_equals_the_local_one(server, tmp_path):
    """`edgepose run --multi --server URL --detector URL/person_detector`: the camera side
    runs neither network; people and keypoints equal the all-local run's."""
    from edgepose.app.cli import main

    img = cv2.imread(str(MULTI / "000000214753.jpg"))
    video = tmp_path / "still.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, img.shape[1::-1])
    for _ in range(5):
        w.write(img)
    w.release()
    runs = {}
    for name, extra in (("local", []), ("served", ["--server", server.grpc_url, "--detector",
                                                   server.grpc_url + "/person_detector"])):
        kp = tmp_path / f"{name}.jsonl"
        assert main(["run", "--source", str(video), "--multi", "--headless", "--quiet",
                     "--threads", "1", "--keypoints", str(kp), *extra]) == 0
        runs[name] = [json.loads(x) for x in kp.read_text().splitlines()]
    assert len(runs["local"]) == len(runs["served"]) == 5
    for a, b in zip(runs["local"], runs["served"]):
        assert len(a["people"]) == len(b["people"]) >= 2
        for p, q in zip(a["people"], b["people"]):
            np.testing.assert_allclose(np.array(p["raw"]), np.array(q["raw"]), atol=1e-3)


def test_a_port_in_use_is_one_line_before_anything_starts():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy = s.getsockname()[1]
        http, metrics = free_ports(2)
        srv = TritonServer(DEFAULT_MODEL, None, ServeOptions(http_port=http, grpc_port=busy,
                                                              metrics_port=metrics),
                           python=Path(sys.executable))
        with pytest.raises(EngineError, match=f"port {busy} is in use.*--grpc-port"):
            srv.start()
        assert srv.proc is None, "nothing was started"


def test_a_server_never_outlives_the_process_that_started_it(tmp_path):
    """A caller that dies without stopping its server (a crash: no atexit) takes it along:
    the worker watches its parent."""
    import os
    import subprocess

    serving_python()
    script = tmp_path / "crash.py"
    script.write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from edgepose.app.serving.server import TritonServer, ServeOptions, free_ports\n"
        "from edgepose.bundled import DEFAULT_MODEL\n"
        "h, g, m = free_ports(3)\n"
        "srv = TritonServer(DEFAULT_MODEL, None, ServeOptions(http_port=h, grpc_port=g, "
        "metrics_port=m, startup_timeout_s=90)).start()\n"
        "print(srv.proc.pid, flush=True)\n"
        "os._exit(0)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    pid = int(out.stdout.strip().splitlines()[-1])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(pid, 9)
    pytest.fail("the server worker outlived its parent")


# ----------------------------------------------------------------------- issue 30: exposure


@pytest.mark.parametrize("ports,match", [
    ((70000, 8001, 8002), "--http-port 70000 is not a TCP port"),
    ((0, 8001, 8002), "--http-port 0 is not a TCP port"),
    ((18000, 18000, 18002), "--http-port and --grpc-port are both 18000"),
])
def test_bad_and_clashing_ports_are_one_line_before_anything_starts(ports, match):
    http, grpc, metrics = ports
    srv = TritonServer(DEFAULT_MODEL, None, ServeOptions(http_port=http, grpc_port=grpc,
                                                          metrics_port=metrics),
                       python=Path(sys.executable))
    with pytest.raises(EngineError, match=match) as e:
        srv.start()
    assert srv.proc is None and len(str(e.value).splitlines()) == 1


def test_serve_listens_on_loopback_unless_told():
    from edgepose.app.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["serve"]).host == "127.0.0.1" == ServeOptions().host
    assert parser.parse_args(["serve", "--host", "0.0.0.0"]).host == "0.0.0.0"
    serve = next(a for a in parser._subparsers._group_actions[0].choices.items()
                 if a[0] == "serve")[1]
    assert "no authentication" in serve.format_help()


def _non_loopback_ip() -> str | None:
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent: picks the outgoing address
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def test_the_default_server_is_not_reachable_from_the_network(server):
    """Bound to 127.0.0.1: the same port on this machine's network address refuses."""
    import socket

    ip = _non_loopback_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", server.opts.grpc_port)) == 0
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex((ip, server.opts.grpc_port)) != 0, f"gRPC port open on {ip}"


def test_nan_and_oversized_requests_are_refused_and_the_server_keeps_serving(server):
    from edgepose.engines.triton_backend import TritonBackend, TritonConnection

    remote = TritonBackend(server.grpc_url)
    x = np.zeros((1, 3, 128, 128), np.float32)
    x[0, 0, 5, 5] = np.nan
    with pytest.raises(EngineError, match="NaN or infinite") as e:
        remote.conn.infer("edgepose_pose", {"image": x}, ["coords"])
    assert len(str(e.value).splitlines()) == 1
    conn = TritonConnection(server.grpc_url)
    with pytest.raises(EngineError, match="at most 1280 px a side"):
        conn.infer("person_detector", {"image": np.zeros((1, 3, 2048, 1024), np.float32)},
                   ["scores_s8"])
    good = remote(np.zeros((1, 3, 128, 128), np.float32))
    assert np.isfinite(good["coords"]).all()
    remote.close()
    conn.close()


def test_serve_exits_2_when_tritonserver_dies(tmp_path):
    """Kill the tritonserver process under a running `edgepose serve`: it stops with one
    line and exit 2 instead of running on with nothing listening."""
    import os
    import signal
    import subprocess
    import time

    serving_python()
    http, grpc, metrics = free_ports(3)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "edgepose", "serve", "--http-port", str(http),
                             "--grpc-port", str(grpc), "--metrics-port", str(metrics)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        line = ""
        while time.time() < deadline and "listening" not in line:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                pytest.fail(f"serve did not start: {proc.stderr.read()[-500:]}")
        out = subprocess.run(["pgrep", "-f", f"tritonserver.*{grpc}"], capture_output=True,
                             text=True).stdout.split()
        assert out, "no tritonserver process found"
        for pid in out:
            os.kill(int(pid), signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err[-600:]
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert "the Triton server stopped" in lines[-1] and "Traceback" not in err, err[-600:]
