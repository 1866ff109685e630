"""``edgepose serve``: one Triton Inference Server (PyTriton) for many cameras.

The server process is :mod:`edgepose.app.serving.triton_worker`, run by the python of a
**serving venv made from the system interpreter**. Why: PyTriton's ``tritonserver`` runs
Python models through Triton's Python-backend stub, and the stub for Python 3.X links the
*system* ``libpython3.X.so`` (``/lib/<arch>/libpython3.11.so.1.0`` on Debian 12). A venv
made from another CPython 3.11 build (pyenv, conda, uv's) hands that embedded 3.11.2
runtime its own standard library, and loading a model fails inside ``multiprocessing``
with ``AttributeError: '_thread.RLock' object has no attribute '_recursion_count'``.
:func:`host_problem` detects that before starting; :func:`install` makes the right venv:

    edgepose serve --install      # ~/.cache/edgepose/serve (or $EDGEPOSE_SERVE_HOME)

(``$EDGEPOSE_SERVE_PYTHON`` names another python to use.) The venv holds only
``nvidia-pytriton`` (which bundles ``tritonserver`` 2.51), ONNX Runtime and numpy: the
worker imports nothing from edgepose, so the model's metadata and settings reach it as a
JSON file written here.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.engines.triton_backend import DETECTOR_MODEL, POSE_MODEL
from edgepose.errors import EngineError, last_line
from edgepose.fileio import cache_dir

PYTRITON = "nvidia-pytriton==0.7.0"
SERVE_PINS = [PYTRITON, "onnxruntime>=1.17", "numpy>=1.24"]
WORKER = Path(__file__).with_name("triton_worker.py")
STUB_VERSIONS = ((3, 8), (3, 9), (3, 10), (3, 11), (3, 12), (3, 13))  # nvidia-pytriton 0.7.0


def serve_home() -> Path:
    """``$EDGEPOSE_SERVE_HOME`` or ``~/.cache/edgepose/serve``."""
    return cache_dir("serve", "EDGEPOSE_SERVE_HOME")


PROBE = ("import json, sys, sysconfig, os; print(json.dumps({'version': list(sys.version_info[:2]),"
         " 'base_prefix': sys.base_prefix, 'libdir': sysconfig.get_config_var('LIBDIR') or '',"
         " 'ldlibrary': sysconfig.get_config_var('LDLIBRARY') or '',"
         " 'multiarch': sysconfig.get_config_var('MULTIARCH') or ''}))")


def interpreter_facts(python) -> dict:
    r = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True)
    if r.returncode != 0:
        raise EngineError(f"{python}: cannot run it ({last_line(r.stderr)})")
    return json.loads(r.stdout)


def host_problem(facts: dict) -> str | None:
    """Why an interpreter (:func:`interpreter_facts`) cannot host PyTriton's models, or
    None. It must be a system build (``base_prefix`` /usr) of a Python the stubs exist for,
    with its shared ``libpython`` installed: the stub links that library."""
    major, minor = facts["version"]
    if (major, minor) not in STUB_VERSIONS:
        return (f"Python {major}.{minor} has no Triton Python-backend stub in {PYTRITON} "
                "(3.8-3.13)")
    if facts["base_prefix"] != "/usr":
        return (f"Python {major}.{minor} from {facts['base_prefix']} is not the system build "
                f"whose libpython{major}.{minor} Triton's stub links (models fail to load with "
                "'_thread.RLock' object has no attribute '_recursion_count')")
    lib = f"libpython{major}.{minor}.so.1.0"
    dirs = [Path(facts["libdir"]), Path("/usr/lib") / facts["multiarch"], Path("/lib") /
            facts["multiarch"]]
    if not any((d / lib).exists() for d in dirs if str(d)):
        return (f"the system's {lib} is missing (Triton's stub links it); install it, e.g. "
                f"apt install libpython{major}.{minor}")
    return None


def system_python() -> Path:
    """The system interpreter a serving venv is made from (/usr/bin/python3)."""
    for name in ("/usr/bin/python3", "/usr/bin/python3.11", "/usr/bin/python3.12",
                 "/usr/bin/python3.10"):
        if Path(name).exists():
            return Path(name)
    raise EngineError("no system Python (/usr/bin/python3) to make the serving venv from; "
                      "Triton's Python-backend stub needs the system interpreter")


def install(home: Path | None = None, log=print) -> Path:
    """Create the serving venv from the system interpreter and pip install
    :data:`SERVE_PINS` into it. Returns its python."""
    home = Path(home or serve_home())
    base = system_python()
    problem = host_problem(interpreter_facts(base))
    if problem:
        raise EngineError(f"{base}: {problem}")
    python = home / "bin" / "python"
    if not python.exists():
        log(f"creating the serving venv in {home} from {base}")
        subprocess.run([str(base), "-m", "venv", str(home)], check=True)
    log(f"pip install {' '.join(SERVE_PINS)} (in the serving venv only; ~450 MB)")
    r = subprocess.run([str(python), "-m", "pip", "install", "-q", *SERVE_PINS],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise EngineError(f"pip could not install {PYTRITON} in {home} "
                          f"({last_line(r.stderr)})")
    return python


def serve_python() -> Path:
    """The python that runs the server; EngineError (one line, with the fix) when there is
    none or it cannot host PyTriton's models."""
    env = os.environ.get("EDGEPOSE_SERVE_PYTHON")
    python = Path(env) if env else serve_home() / "bin" / "python"
    if not python.exists():
        where = f"$EDGEPOSE_SERVE_PYTHON={env}" if env else str(python)
        raise EngineError(f"the Triton server's venv is missing ({where} not found); create "
                          "it with: edgepose serve --install")
    problem = host_problem(interpreter_facts(python))
    if problem:
        raise EngineError(f"{python}: {problem}; make the serving venv from the system "
                          "Python with: edgepose serve --install")
    r = subprocess.run([str(python), "-c", "import pytriton, onnxruntime"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise EngineError(f"{python}: PyTriton or ONNX Runtime does not import there "
                          f"({last_line(r.stderr)}); reinstall with: "
                          "edgepose serve --install")
    return python


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports free on localhost now (the OS's choice; tests and benchmarks)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, int(port)))
        except OSError:
            return True
    return False


def check_ports(o: "ServeOptions") -> None:
    """Before the server starts: each port in 1-65535, the three different, each free on
    ``o.host`` (Triton would otherwise fail -- or wait -- deep in its start-up)."""
    ports = (("--http-port", o.http_port), ("--grpc-port", o.grpc_port),
             ("--metrics-port", o.metrics_port))
    for name, port in ports:
        if not 1 <= int(port) <= 65535:
            raise EngineError(f"{name} {port} is not a TCP port (1-65535)")
    seen: dict[int, str] = {}
    for name, port in ports:
        if port in seen:
            raise EngineError(f"{seen[port]} and {name} are both {port}; give each its own port")
        seen[port] = name
    for name, port in ports:
        if port_in_use(port, o.host or "0.0.0.0"):
            raise EngineError(f"port {port} is in use on {o.host} (another server?); choose "
                              f"another with {name}")


@dataclass
class ServeOptions:
    """What ``edgepose serve`` sets; ports as Triton's defaults."""

    # Loopback unless told otherwise: Triton has no authentication, so a server reachable
    # from the network serves (and can be flooded by) anyone who can reach the port.
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 16
    max_delay_us: int = 2000
    instances: int = 1
    threads: int = 1
    device: str = "cpu"
    startup_timeout_s: float = 120.0
    log: str | None = None  # Triton's own log (default: a file next to the config)
    extra: dict = field(default_factory=dict)


def model_entries(model: Path, detector: Path | None, opts: ServeOptions) -> list[dict]:
    """The worker's model list: the pose ONNX (and the detector's), with their metadata."""
    from edgepose.engines.detector import onnx_detector_spec
    from edgepose.engines.meta_io import read_meta

    model = Path(model)
    if model.suffix.lower() != ".onnx":
        raise EngineError(f"{model}: edgepose serve runs ONNX models (ONNX Runtime inside "
                          "Triton); export it first (edgepose export), or write a Triton "
                          "repository for a TensorRT engine with: edgepose export --triton-repo")
    meta = read_meta(model)  # also checks the graph's input against the metadata
    common = {"instances": opts.instances, "threads": opts.threads, "device": opts.device}
    out = [{"name": POSE_MODEL, "onnx": str(model.resolve()), "kind": "pose",
            "meta": meta.to_json(), "input_size": list(meta.input_size),
            "num_joints": meta.num_joints, "max_batch": opts.max_batch, **common}]
    if detector is not None:
        dspec = onnx_detector_spec(detector)
        if dspec is None:
            raise EngineError(f"{detector}: not a person detector ONNX (no detector metadata)")
        out.append({"name": DETECTOR_MODEL, "onnx": str(Path(detector).resolve()),
                    "kind": "detector", "meta": json.dumps(dspec), **common})
    return out


class TritonServer:
    """A running ``edgepose serve`` worker (context manager). ``start()`` returns once
    Triton serves every model; ``stop()`` asks it to shut down gracefully (SIGTERM), then
    kills what is left after ``grace_s``; ``kill()`` kills it at once (tests, benchmarks)."""

    def __init__(self, model, detector=None, opts: ServeOptions | None = None,
                 python: Path | None = None):
        self.opts = opts or ServeOptions()
        self.models = model_entries(Path(model), Path(detector) if detector else None,
                                    self.opts)
        self.python = Path(python) if python else serve_python()
        self.proc: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="edgepose-serve-")
        self.log_path = Path(self.opts.log or Path(self._tmp.name) / "triton.log")

    @property
    def grpc_url(self) -> str:
        return f"grpc://localhost:{self.opts.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://localhost:{self.opts.http_port}"

    def start(self) -> "TritonServer":
        o = self.opts
        check_ports(o)
        ready = Path(self._tmp.name) / "ready.json"
        cfg = {"host": o.host, "http_port": o.http_port, "grpc_port": o.grpc_port,
               "metrics_port": o.metrics_port, "max_delay_us": o.max_delay_us,
               "ready_file": str(ready), "models": self.models, **o.extra}
        cfg_path = Path(self._tmp.name) / "config.json"
        cfg_path.write_text(json.dumps(cfg))
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([str(self.python), str(WORKER), str(cfg_path)],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        atexit.register(self.stop, 10.0)  # an exiting caller takes its server along
        t0 = time.monotonic()
        while not ready.exists():
            if self.proc.poll() is not None:
                raise EngineError(f"the Triton server stopped while starting (exit "
                                  f"{self.proc.returncode}): {self.last_log_line()} "
                                  f"(log: {self.log_path})")
            if time.monotonic() - t0 > o.startup_timeout_s:
                self.kill()
                raise EngineError(f"the Triton server did not start within "
                                  f"{o.startup_timeout_s:.0f} s (log: {self.log_path})")
            time.sleep(0.1)
        return self

    def last_log_line(self) -> str:
        try:
            lines = [x for x in self.log_path.read_text(errors="replace").splitlines()
                     if x.strip()]
        except OSError:
            return "?"
        errors = [x for x in lines if "Error" in x or "error" in x]
        return (errors or lines or ["?"])[-1].strip()[:300]

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self) -> int:
        return self.proc.wait() if self.proc is not None else 0

    def stop(self, grace_s: float = 30.0) -> int | None:
        """Graceful shutdown (Triton finishes in-flight requests); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # whatever is left in its session (all of it, past the grace period)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the worker and everything it started (tritonserver, stubs)."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._tmp.cleanup()
