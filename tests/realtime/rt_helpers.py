"""Helpers for the realtime tests: a numbered video file, a tiny real ONNX model, and small
stand-in backends / sources that compute checkable things (or fail on purpose)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np

from edgepose.engines.backend import Backend
from edgepose.metadata import ModelMeta
from meta_helpers import tiny_meta as _tiny_meta

BITS = 10
BLOCK = 12


def encode_index(image: np.ndarray, index: int) -> None:
    """Draw ``index`` as BITS white/black blocks along the top row (survives mp4v)."""
    for b in range(BITS):
        v = 255 if (index >> b) & 1 else 0
        x = 4 + b * (BLOCK + 4)
        image[4:4 + BLOCK, x:x + BLOCK] = v


def decode_index(image: np.ndarray) -> int:
    """Inverse of :func:`encode_index` (block means thresholded at 128)."""
    n = 0
    for b in range(BITS):
        x = 4 + b * (BLOCK + 4)
        if image[6:2 + BLOCK, x + 2:x + BLOCK - 2].mean() > 128:
            n |= 1 << b
    return n


def write_numbered_video(path: Path, n: int, size=(192, 144), fps: float = 30.0) -> Path:
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), f"cv2.VideoWriter could not open {path}"
    for i in range(n):
        img = np.full((h, w, 3), 90, np.uint8)
        encode_index(img, i)
        writer.write(img)
    writer.release()
    return path


def tiny_meta(input_size=(64, 48)) -> ModelMeta:
    return _tiny_meta("dsnt", "standin", input_size, name="standin")


class CentreBackend(Backend):
    """Stand-in model (a real :class:`Backend`): every joint at the crop centre, score
    ``score``.

    Mapped back through the crop affine, each person's joints land on their box centre,
    so where the app puts the keypoints is checkable. Records every batch shape.
    """

    name = "standin-centre"
    precision = "fp32"

    def __init__(self, meta: ModelMeta, score: float = 0.9):
        self.meta = meta
        self.score = score
        self.batches: list[tuple[int, ...]] = []

    def _infer(self, batch: np.ndarray) -> dict:
        h, w = self.meta.input_size
        self.batches.append(tuple(batch.shape))
        b, k = batch.shape[0], self.meta.num_joints
        coords = np.empty((b, k, 2), np.float32)
        coords[..., 0] = (w - 1) / 2.0
        coords[..., 1] = (h - 1) / 2.0
        # a spread so a keypoint box exists: joints on a small ring around the centre
        ang = np.linspace(0, 2 * np.pi, k, endpoint=False)
        coords[..., 0] += 0.3 * w * np.cos(ang)
        coords[..., 1] += 0.3 * h * np.sin(ang)
        return {"coords": coords, "scores": np.full((b, k), self.score, np.float32)}

    def warmup(self, n: int = 1) -> None:
        pass  # nothing to warm; keeps ``batches`` to the real frames

    def close(self) -> None:
        self.closed = True


class FailingBackend(CentreBackend):
    """Raises on call number ``fail_at`` (0-based)."""

    name = "standin-failing"

    def __init__(self, meta: ModelMeta, fail_at: int = 5):
        super().__init__(meta)
        self.fail_at = fail_at

    def _infer(self, batch):
        if len(self.batches) >= self.fail_at:
            raise RuntimeError("simulated inference failure (device lost)")
        return super()._infer(batch)


class ScriptedSource:
    """Synthetic numbered frames; then ends (``mode='end'``), raises (``'raise'``) or
    stalls until interrupted (``'stall'``). ``live`` sources may be reconnected."""

    def __init__(self, n: int, mode: str = "end", live: bool = False, size=(160, 120),
                 delay: float = 0.0):
        self.n, self.mode, self.live, self.size, self.delay = n, mode, live, size, delay
        self.name = f"scripted source ({mode})"
        self.fps = 30.0
        self.i = 0
        self.released = False
        self._interrupt = threading.Event()

    def read(self):
        if self.delay:
            time.sleep(self.delay)
        if self.i >= self.n:
            if self.mode == "raise":
                raise OSError("simulated device read error")
            if self.mode == "stall":
                self._interrupt.wait(30.0)
                return None
            return None
        w, h = self.size
        img = np.full((h, w, 3), 60, np.uint8)
        encode_index(img, self.i)
        self.i += 1
        return img

    def interrupt(self) -> None:
        self._interrupt.set()

    def release(self) -> None:
        self.released = True


def make_template_onnx(path: Path, meta: ModelMeta, score: float = 0.9) -> Path:
    """A real ONNX model (built with onnx.helper) following the edgepose graph contract:
    coords = a fixed (K, 2) template in input px for every batch item, scores = ``score``.
    Carries the metadata in ``metadata_props`` like an exported model."""
    import onnx
    from onnx import TensorProto, helper

    k = meta.num_joints
    h, w = meta.input_size
    ang = np.linspace(0, 2 * np.pi, k, endpoint=False)
    tmpl = np.stack([(w - 1) / 2 + 0.3 * w * np.cos(ang), (h - 1) / 2 + 0.3 * h * np.sin(ang)], -1)
    inits = [
        helper.make_tensor("tmpl", TensorProto.FLOAT, [1, k, 2], tmpl.astype(np.float32).ravel()),
        helper.make_tensor("sc", TensorProto.FLOAT, [1, k], np.full(k, score, np.float32)),
        helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("s3", TensorProto.INT64, [3], [-1, 1, 1]),
        helper.make_tensor("s2", TensorProto.INT64, [2], [-1, 1]),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["image", "axes"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Reshape", ["z", "s3"], ["z3"]),
        helper.make_node("Reshape", ["z", "s2"], ["z2"]),
        helper.make_node("Add", ["z3", "tmpl"], ["coords"]),
        helper.make_node("Add", ["z2", "sc"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "template",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 3, h, w])],
        [helper.make_tensor_value_info("coords", TensorProto.FLOAT, ["B", k, 2]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["B", k])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = "edgepose", meta.to_json()
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def pipeline_threads() -> list[str]:
    """Names of live edgepose pipeline threads."""
    return [t.name for t in threading.enumerate() if t.name.startswith("edgepose-")]


def count_video_frames(path) -> int:
    """Frames OpenCV can decode from a video file (0 for an unplayable one)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n
