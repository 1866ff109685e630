"""A pose model on a Triton Inference Server, used like any local runtime.

    backend = TritonBackend("grpc://gpu-server:8001")          # or http://host:8000
    backend = TritonBackend("grpc://gpu-server:8001/my_pose")  # another model name

``edgepose run --server URL`` / ``predict --server URL`` / ``load(server=URL)`` use it:
capture, tracking, smoothing and rendering stay on the camera's machine, the crops go to
the server (one request per frame, all of the frame's people in it; Triton's dynamic
batcher joins the requests of many cameras). The model's metadata comes from the server
(``edgepose serve`` serves it as a model ``NAME_meta``; a repository written by
``edgepose export --triton-repo`` carries it as the config parameter ``edgepose_meta``),
so preprocessing is rebuilt from what the server runs; ``expect=`` a local model's
metadata turns a mismatch into one line.

Failures are one line and never hang a caller: every request has a deadline
(``timeout_s``); a server that cannot be reached raises :class:`ServerUnavailable` and
the backend then refuses calls at once (no network wait) until its back-off delay has
passed (0.25 s, doubling to 2 s: a refused connection costs nothing, so a restarted
server is found within 2 s), when the next call tries the server again -- the live
pipeline counts those frames as dropped and carries on.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlparse

import numpy as np

from edgepose.engines.backend import Backend
from edgepose.errors import EngineError, ModelError
from edgepose.metadata import ModelMeta

META_PARAM = "edgepose_meta"  # the metadata as a model-config parameter (--triton-repo)
POSE_MODEL = "edgepose_pose"  # the names edgepose serve and --triton-repo give the models
DETECTOR_MODEL = "person_detector"
MAX_BACKOFF_S = 2.0
INSTALL_HINT = "pip install 'edgepose[serve]' (tritonclient)"


def server_reason(text: str) -> str:
    """The reason a PyTriton infer function gave (its exception's last line, e.g.
    ``ValueError: the request holds NaN ...``) inside the server's error text, or ""."""
    import re

    found = re.findall(r"(?:ValueError|PyTritonBadParameterError)\b[:\s]+([^\n\"']+)", text)
    return found[-1].strip()[:200] if found else ""


class ServerUnavailable(EngineError):
    """The server cannot be reached now (down, restarting, network); retry later."""


def parse_url(url: str, default_model: str = POSE_MODEL) -> tuple[str, str, str]:
    """``grpc://host:port[/model]`` or ``http://host:port[/model]`` -> (protocol,
    "host:port", model name, ``default_model`` when the URL names none)."""
    u = urlparse(url if "://" in url else "grpc://" + url)
    if u.scheme not in ("grpc", "http") or not u.hostname:
        raise EngineError(f"--server {url!r}: expected grpc://HOST:PORT or http://HOST:PORT "
                          "(optionally /MODEL)")
    port = u.port or (8001 if u.scheme == "grpc" else 8000)
    model = u.path.strip("/") or default_model
    return u.scheme, f"{u.hostname}:{port}", model


def client_module(protocol: str):
    try:
        if protocol == "grpc":
            import tritonclient.grpc as mod
        else:
            import tritonclient.http as mod
    except ImportError:
        raise EngineError(f"talking to a Triton server needs tritonclient: {INSTALL_HINT}") \
            from None
    return mod


def unavailable(e: BaseException) -> bool:
    """Is ``e`` (a tritonclient exception) the server being unreachable, rather than the
    server refusing the request?"""
    text = str(e)
    return any(s in text for s in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "Connection refused",
                                   "failed to connect", "Deadline Exceeded", "timed out",
                                   "Socket closed", "Broken pipe", "Connection reset",
                                   "RemoteDisconnected", "not ready"))


class TritonConnection:
    """One server, one protocol: requests with a deadline, back-off after a failure."""

    def __init__(self, url: str, timeout_s: float = 2.0, default_model: str = POSE_MODEL):
        self.url = url
        self.protocol, self.address, self.model = parse_url(url, default_model)
        self.timeout_s = float(timeout_s)
        grpc = self.protocol == "grpc"
        # every gRPC call carries the deadline (the HTTP client has it from its constructor);
        # gRPC answers config and statistics queries as JSON only when asked
        self._deadline = {"client_timeout": self.timeout_s} if grpc else {}
        self._query = {"as_json": True, **self._deadline} if grpc else {}
        self.mod = client_module(self.protocol)
        self.client = self._new_client()
        self.retry_at = 0.0  # monotonic time before which calls fail at once
        self.backoff_s = 0.0
        self.failures = 0  # requests refused or failed while the server was away
        self.served: set[str] = set()  # models that answered once

    def _new_client(self):
        if self.protocol == "grpc":
            return self.mod.InferenceServerClient(self.address)
        return self.mod.InferenceServerClient(self.address, connection_timeout=self.timeout_s,
                                              network_timeout=self.timeout_s)

    def call(self, what: str, fn, model: str | None = None):
        """Run ``fn(client)``; ServerUnavailable (one line) when the server is away -- or
        when ``model``, served before, is unknown: a server restarting, models loading."""
        now = time.monotonic()
        if now < self.retry_at:
            self.failures += 1
            raise ServerUnavailable(f"Triton server {self.url} unreachable; retrying in "
                                    f"{self.retry_at - now:.1f} s")
        try:
            out = fn(self.client)
        except Exception as e:  # noqa: BLE001 - tritonclient raises its own and grpc's types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            restarting = model in self.served and ("unknown model" in str(e)
                                                    or "not found" in str(e))
            if unavailable(e) or restarting:
                self.failures += 1
                self.backoff_s = min(MAX_BACKOFF_S, max(0.25, self.backoff_s * 2))
                self.retry_at = time.monotonic() + self.backoff_s
                if self.protocol == "http":  # a fresh connection pool after a drop
                    self.client = self._new_client()
                raise ServerUnavailable(f"Triton server {self.url} unreachable during {what} "
                                        f"({first})") from None
            raise EngineError(f"Triton server {self.url} refused {what}: "
                              f"{server_reason(str(e)) or first}") from None
        self.backoff_s, self.retry_at = 0.0, 0.0
        if model is not None:
            self.served.add(model)
        return out

    def infer(self, model: str, inputs: dict[str, np.ndarray], outputs: list[str]):
        def run(c):
            ins = []
            for name, arr in inputs.items():
                dtype = "BYTES" if arr.dtype == np.object_ else "FP32"
                i = self.mod.InferInput(name, list(arr.shape), dtype)
                i.set_data_from_numpy(arr)
                ins.append(i)
            outs = [self.mod.InferRequestedOutput(n) for n in outputs]
            res = c.infer(model, ins, outputs=outs, **self._deadline)
            return [res.as_numpy(n) for n in outputs]

        return self.call(f"inference on {model!r}", run, model)

    def model_config(self, model: str) -> dict:
        """``model``'s Triton config (JSON form)."""
        cfg = self.call(f"reading {model!r}'s config",
                        lambda c: c.get_model_config(model, **self._query))
        return cfg.get("config", cfg)

    def model_meta_text(self, model: str, config: dict | None = None) -> str:
        """The metadata JSON the server holds for ``model``: its config parameter
        (a ``--triton-repo`` repository) or its ``MODEL_meta`` companion (``edgepose serve``).
        ``config``: the model's config when the caller has already read it."""
        cfg = self.model_config(model) if config is None else config
        param = (cfg.get("parameters") or {}).get(META_PARAM)
        if param:
            return param.get("string_value") or param.get("stringValue")
        (text,) = self.infer(model + "_meta", {"request": np.array([b"meta"], np.object_)},
                             ["meta"])
        return text.reshape(-1)[0].decode()

    def statistics(self, model: str) -> dict:
        """Triton's inference statistics of ``model`` as a dict (JSON form)."""
        return self.call("statistics",
                         lambda c: c.get_inference_statistics(model, **self._query))

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a dead channel
            pass


class TritonBackend(Backend):
    """The pose model ``URL`` names, run by a Triton server (see the module docstring)."""

    def __init__(self, url: str, timeout_s: float = 2.0, expect: ModelMeta | None = None):
        self.conn = TritonConnection(url, timeout_s)
        self.model = self.conn.model
        try:
            text = self.conn.model_meta_text(self.model)
        except EngineError as e:
            self.conn.close()
            raise EngineError(f"cannot open the model on the server: {e}") from None
        self.meta = ModelMeta.from_json(text, source=f"{url} ({self.model})")
        if expect is not None:
            try:  # local first: "(input_size: (64, 64) vs (128, 128))" reads local vs server
                expect.check_matches(self.meta, f"the model on {url}")
            except ModelError as e:
                self.conn.close()
                raise EngineError(str(e)) from None
        self.name = f"triton-{self.conn.protocol}"
        self.precision = self.meta.precision
        self.source = url
        self.batch_range = (1, 1 << 30)  # the server's max batch is its concern

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        coords, scores = self.conn.infer(self.model, {"image": batch}, ["coords", "scores"])
        return {"coords": coords, "scores": scores}

    def statistics(self) -> dict:
        return self.conn.statistics(self.model)

    def close(self) -> None:
        self.conn.close()


class TritonSession:
    """The person detector on a server, with the part of ONNX Runtime's session API that
    :class:`edgepose.engines.detector.Detector` uses (``run``), and its metadata."""

    def __init__(self, url: str, timeout_s: float = 2.0, default_model: str = DETECTOR_MODEL):
        self.conn = TritonConnection(url, timeout_s, default_model)
        self.model = self.conn.model
        try:
            config = self.conn.model_config(self.model)
            self.detector_spec = json.loads(self.conn.model_meta_text(self.model, config))
        except (EngineError, ValueError) as e:
            self.conn.close()
            raise EngineError(f"cannot open the detector on the server: {e}") from None
        self.outputs = [o["name"] for o in config.get("output", [])]  # what it really serves

    def run(self, output_names, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.conn.infer(self.model, feeds, list(output_names))

    def close(self) -> None:
        self.conn.close()


def batch_counts(stats: dict) -> tuple[int, int]:
    """(inferences, executions) of a model's Triton statistics: their ratio is the mean
    batch the dynamic batcher formed."""
    ms = stats.get("model_stats", [stats])[0]
    return int(ms.get("inference_count", 0)), int(ms.get("execution_count", 0))


def batch_sizes(stats: dict) -> dict[int, int]:
    """{batch size: executions} Triton ran for a model."""
    ms = stats.get("model_stats", [stats])[0]
    out = {}
    for b in ms.get("batch_stats", []):
        n = int((b.get("compute_infer") or {}).get("count", 0))
        out[int(b["batch_size"])] = n
    return out
