"""load_backend: runtime choice by suffix, input validation, and bad files."""

import numpy as np
import onnx
import pytest

from edgepose.errors import EngineError
from edgepose.engines import backend as bk
from edgepose.engines.ort_session import choose_providers

from engine_helpers import HEADS, INPUT_HW, tiny_meta


def test_unknown_suffix(tmp_path):
    p = tmp_path / "model.tflite"
    p.write_bytes(b"x")
    with pytest.raises(EngineError, match=r"model.tflite: unknown model file type '.tflite'"):
        bk.load_backend(p)


def test_missing_file(tmp_path):
    with pytest.raises(EngineError, match="not found"):
        bk.load_backend(tmp_path / "gone.onnx")


def test_unknown_device():
    with pytest.raises(EngineError, match="unknown device 'tpu'"):
        bk.BackendOptions(device="tpu")


def test_corrupt_onnx(tmp_path):
    p = tmp_path / "corrupt.onnx"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(EngineError, match=r"corrupt.onnx: ONNX Runtime cannot load.*re-export"):
        bk.load_backend(p)


def test_truncated_onnx(tmp_path, exported):
    _, onnx_path, _, _ = exported(HEADS[0])
    data = onnx_path.read_bytes()
    p = tmp_path / "truncated.onnx"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(EngineError, match=r"truncated.onnx: ONNX Runtime cannot load"):
        bk.load_backend(p)


def test_onnx_without_metadata(tmp_path, exported):
    _, onnx_path, _, _ = exported(HEADS[0])
    proto = onnx.load(str(onnx_path))
    del proto.metadata_props[:]
    p = tmp_path / "plain.onnx"
    onnx.save(proto, str(p))
    with pytest.raises(EngineError, match="plain.onnx: ONNX file has no edgepose metadata"):
        bk.load_backend(p)


def test_engine_needs_tensorrt_or_valid_header(tmp_path):
    p = tmp_path / "model.engine"
    p.write_bytes(b"not an engine")
    with pytest.raises(EngineError) as e:
        bk.load_backend(p)
    msg = str(e.value)
    assert "pip install 'edgepose[trt]'" in msg or "no edgepose header" in msg or \
        "GPU" in msg, msg


@pytest.mark.parametrize("head", HEADS)
def test_picks_runtime_by_suffix(exported, head):
    ckpt, onnx_path, _, _ = exported(head)
    with bk.load_backend(ckpt, device="cpu") as a, bk.load_backend(onnx_path, threads=1) as b:
        assert type(a).__name__ == "TorchBackend" and a.name == "torch-cpu"
        assert type(b).__name__ == "OrtBackend" and b.name == "onnxruntime-cpu"
        assert b.session.get_session_options().intra_op_num_threads == 1


def test_batch_validation_messages(exported):
    _, onnx_path, _, _ = exported(HEADS[0])
    h, w = INPUT_HW
    with bk.load_backend(onnx_path, device="cpu") as b:
        cases = [
            (np.zeros((3, h, w), np.float32), r"expected a batch of shape \(B, 3, 64, 48\).*got "
                                              r"shape \(3, 64, 48\)"),
            (np.zeros((1, 1, h, w), np.float32), r"got shape \(1, 1, 64, 48\)"),
            (np.zeros((1, 3, w, h), np.float32), r"got shape \(1, 3, 48, 64\)"),
            (np.zeros((1, 3, h, w), np.float64), "expected dtype float32, got float64"),
            ([[0.0]], "expected a numpy array, got list"),
        ]
        for x, pattern in cases:
            with pytest.raises(EngineError, match=pattern):
                b(x)
        with pytest.raises(EngineError, match=r"empty batch \(0 crops\)"):
            b(np.zeros((0, 3, h, w), np.float32))
        out = b(np.zeros((2, 3, h, w), np.float32))
        assert out["coords"].shape == (2, b.meta.num_joints, 2)
        b.warmup(2)


class CropMean(bk.Backend):
    """A runtime accepting only ``batch_range``; each crop's joints depend on that crop
    alone (its mean + the joint index). Records the batch size of every run."""

    def __init__(self, batch_range: tuple[int, int]):
        self.meta, self.batch_range = tiny_meta("dsnt"), batch_range
        self.name, self.source, self.ran = "crop-mean", "fake", []

    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        lo, hi = self.batch_range
        assert lo <= len(batch) <= hi, f"runtime got batch {len(batch)} outside {lo}-{hi}"
        self.ran.append(len(batch))
        k = self.meta.num_joints
        mean = batch.reshape(len(batch), -1).mean(1)
        coords = mean[:, None, None] + np.arange(k)[None, :, None] + np.zeros((1, 1, 2))
        return {"coords": coords, "scores": np.repeat(mean[:, None], k, axis=1)}


@pytest.mark.parametrize("batch_range", [(1, 4), (2, 2), (3, 5), (1, 1), (2, 1 << 30)])
def test_any_batch_size_gives_each_crop_the_same_output(batch_range, rng):
    """One chunking rule (Backend.__call__): 1 crop, the maximum, and more than the
    maximum give every crop what it gets alone; the runtime only ever sees sizes in its
    range (static batches and profile minimums padded, the padding's outputs dropped)."""
    be = CropMean(batch_range)
    lo, hi = batch_range
    most = hi if hi < 64 else 4
    x = rng.normal(size=(2 * most + 1, 3, *INPUT_HW)).astype(np.float32)
    alone = [be(x[i:i + 1]) for i in range(len(x))]
    for n in (1, most, most + 1, 2 * most + 1):
        be.ran.clear()
        out = be(x[:n])
        assert out["coords"].shape == (n, 17, 2) and out["coords"].dtype == np.float32
        for i in range(n):
            np.testing.assert_array_equal(out["coords"][i], alone[i]["coords"][0])
            np.testing.assert_array_equal(out["scores"][i], alone[i]["scores"][0])
        assert len(be.ran) == -(-n // hi), f"{n} crops in {be.ran}: chunks of at most {hi}"


def test_choose_providers():
    cpu_only = ["AzureExecutionProvider", "CPUExecutionProvider"]
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("auto", cpu_only) == ["CPUExecutionProvider"]
    assert choose_providers("auto", gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers("tensorrt", gpu)[0] == "TensorrtExecutionProvider"
    assert choose_providers("cpu", gpu) == ["CPUExecutionProvider"]
    with pytest.raises(EngineError, match="onnxruntime-gpu"):
        choose_providers("cuda", cpu_only)


def test_torch_backend_refuses_missing_cuda(exported):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    ckpt, _, _, _ = exported(HEADS[0])
    with pytest.raises(EngineError, match="no CUDA GPU"):
        bk.load_backend(ckpt, device="cuda")
