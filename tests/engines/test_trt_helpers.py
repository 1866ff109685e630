"""TensorRT-side helpers that need no GPU: network flag bits, parser error text, the timing
cache fallback and the backend's I/O shape guard. TensorRT cannot be installed here, so the
few TensorRT objects these helpers touch are tiny stand-ins with the documented signatures
(IBuilderConfig.create_timing_cache(bytes) -> ITimingCache | None, set_timing_cache(cache,
ignore_mismatch) -> bool; ParserError.node()/node_name()/node_operator()/desc())."""

from __future__ import annotations

import enum

import pytest

from edgepose.errors import EngineError
from edgepose.engines.trt_backend import check_io_shapes
from edgepose.engines.trt_build import _load_timing_cache, network_flag_bits, parser_errors


class Flags8(enum.IntEnum):  # TensorRT 8.x numbering
    EXPLICIT_BATCH = 0
    EXPLICIT_PRECISION = 1


class Flags11(enum.IntEnum):  # TensorRT 11.x: EXPLICIT_BATCH gone, STRONGLY_TYPED is 0
    STRONGLY_TYPED = 0
    PREFER_AOT_PYTHON_PLUGINS = 1


class Trt:
    def __init__(self, flags):
        self.NetworkDefinitionCreationFlag = flags


def test_network_flag_bits_follow_the_enum_values():
    assert network_flag_bits(Trt(Flags8), ("EXPLICIT_BATCH",)) == 1
    assert network_flag_bits(Trt(Flags11), ("STRONGLY_TYPED",)) == 1
    assert network_flag_bits(Trt(Flags11), ("EXPLICIT_BATCH",)) == 0, "missing flag skipped"
    assert network_flag_bits(Trt(Flags8), ()) == 0


class Err:
    def __init__(self, node, desc, name=None, op=""):
        self._node, self._desc, self._name, self._op = node, desc, name, op
        if name is not None:  # 8.6+ only
            self.node_name = lambda: self._name
            self.node_operator = lambda: self._op

    def node(self):
        return self._node

    def desc(self):
        return self._desc


class Parser:
    def __init__(self, errors):
        self.errors = errors
        self.num_errors = len(errors)

    def get_error(self, i):
        return self.errors[i]


def test_parser_errors_name_node_or_graph():
    msg = parser_errors(Parser([Err(3, "bad attr", "Conv_3", "Conv"), Err(5, "no op"),
                                Err(-1, "cannot read file", ""), ]), "m.onnx")
    assert msg.startswith("m.onnx: TensorRT cannot parse the ONNX graph: ")
    assert "node 'Conv_3' (Conv): bad attr" in msg
    assert "node #5: no op" in msg
    assert "graph: cannot read file" in msg


class Config:
    """create_timing_cache returns None for a blob it cannot read; set_timing_cache
    returns False for a blob from another device."""

    def __init__(self, accept):
        self.accept, self.attached = accept, None

    def create_timing_cache(self, data):
        data = bytes(data)
        return None if data == b"corrupt" else ("cache", data)

    def set_timing_cache(self, cache, ignore_mismatch):
        assert ignore_mismatch is False
        ok = cache[1] == b"" or self.accept
        if ok:
            self.attached = cache
        return ok


@pytest.mark.parametrize("blob,accept,used", [
    (None, True, False), (b"good", True, True), (b"other-gpu", False, False),
    (b"corrupt", True, False)])
def test_timing_cache_falls_back_to_empty(tmp_path, blob, accept, used):
    path = tmp_path / "timing.cache"
    if blob is not None:
        path.write_bytes(blob)
    cfg = Config(accept)
    if blob is not None and not used:
        with pytest.warns(UserWarning, match="another TensorRT version or GPU"):
            got = _load_timing_cache(cfg, str(path))
    else:
        got = _load_timing_cache(cfg, str(path))
    assert got is used
    assert cfg.attached == ("cache", blob if used else b""), cfg.attached


def test_io_shape_guard():
    want = {"image": (4, 3, 64, 48), "coords": (4, 17, 2), "scores": (4, 17)}
    check_io_shapes("m.engine", {"image": (-1, 3, 64, 48), "coords": (-1, 17, 2),
                                 "scores": (-1, 17)}, want)
    check_io_shapes("m.engine", want, want)
    with pytest.raises(EngineError, match="'coords' has shape \\[-1, 16, 2\\]"):
        check_io_shapes("m.engine", {**want, "coords": (-1, 16, 2)}, want)
    with pytest.raises(EngineError, match="'scores'"):
        check_io_shapes("m.engine", {**want, "scores": (4, 17, 1)}, want)
