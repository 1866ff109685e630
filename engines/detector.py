"""The person detector: the bundled NanoDet ONNX (``edgepose/assets/nanodet_person.onnx``).

``Detector(path)(image_bgr)`` -> (boxes (N, 4) [x, y, w, h] image px, scores (N,)), best
first. Everything the detector needs to be run correctly travels inside the file
(``metadata_props["edgepose_detector"]``: input size, mean/std, colour order, strides,
bins, thresholds, source, licence), written by ``scripts/convert_detector.py``.
Runs in ONNX Runtime (CPU, or CUDA where the provider exists) or as a TensorRT engine
(``edgepose build edgepose/assets/nanodet_person.onnx --out detector.engine``, run by
:class:`edgepose.engines.trt_session.TrtSession`); decoding is numpy
(:mod:`edgepose.engines.detection`) either way.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edgepose.bundled import ASSETS
from edgepose.engines.detection import decode_level, nms
from edgepose.errors import EngineError

DEFAULT_DETECTOR = ASSETS / "nanodet_person.onnx"
META_KEY = "edgepose_detector"


ENGINE_SUFFIXES = (".engine", ".plan")


def onnx_detector_meta(path) -> dict | None:
    """The detector metadata of an ONNX file (None when it is not a detector)."""
    from edgepose.engines.meta_io import load_onnx

    props = {p.key: p.value for p in load_onnx(path).metadata_props}
    return json.loads(props[META_KEY]) if META_KEY in props else None


class Detector:
    """A person detector in ONNX Runtime, or a TensorRT engine of it (``.engine``, built
    by ``edgepose build nanodet_person.onnx``). ``threshold`` / ``iou`` override the file's."""

    def __init__(self, path: str | Path | None = None, device: str = "cpu",
                 threads: int | None = None, threshold: float | None = None,
                 iou: float | None = None, max_people: int = 16):
        self.path = Path(path) if path else DEFAULT_DETECTOR
        if not self.path.is_file():
            raise EngineError(f"{self.path}: person detector file not found"
                              + ("; reinstall edgepose" if path is None else ""))
        if self.path.suffix.lower() in ENGINE_SUFFIXES:
            from edgepose.engines.trt_session import TrtSession

            self.session = TrtSession(self.path)
            self.meta = self.session.detector_meta
            names = set(self.session.outputs)
        else:
            self.session, self.meta = self._onnx_session(device, threads)
            names = {o.name for o in self.session.get_outputs()}
        self.input_hw = tuple(int(v) for v in self.meta["input_size"])
        self.threshold = float(self.meta["score_threshold"] if threshold is None else threshold)
        self.iou = float(self.meta["nms_iou"] if iou is None else iou)
        self.max_people = int(max_people)
        self._mean = np.asarray(self.meta["mean"], np.float32)
        self._std = np.asarray(self.meta["std"], np.float32)
        self._outputs = [(s, f"scores_s{s}", f"boxes_s{s}") for s in self.meta["strides"]]
        missing = {n for _, a, b in self._outputs for n in (a, b)} - names
        if missing:
            raise EngineError(f"{self.path}: detector outputs {sorted(missing)} are missing")

    def _onnx_session(self, device: str, threads: int | None):
        import onnxruntime as ort

        from edgepose.engines.backend import default_threads
        from edgepose.engines.ort_backend import choose_providers

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or default_threads())
        try:
            session = ort.InferenceSession(
                str(self.path), so, providers=choose_providers(device, ort.get_available_providers()))
        except Exception as e:  # noqa: BLE001 - ORT raises several types for a bad file
            raise EngineError(f"{self.path}: not a readable ONNX detector "
                              f"({type(e).__name__}: {str(e)[:120]})") from None
        props = session.get_modelmeta().custom_metadata_map
        if META_KEY not in props:
            raise EngineError(f"{self.path}: ONNX file has no {META_KEY!r} metadata; make the "
                              "detector with scripts/convert_detector.py")
        return session, json.loads(props[META_KEY])

    def close(self) -> None:
        if hasattr(self.session, "close"):
            self.session.close()

    def preprocess(self, image_bgr: np.ndarray) -> np.ndarray:
        """Stretch-resize to the input size, normalise, (1, 3, H, W) float32."""
        h, w = self.input_hw
        img = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        if self.meta.get("color", "BGR") == "RGB":
            img = img[..., ::-1]
        return ((img - self._mean) / self._std).transpose(2, 0, 1)[None].copy()

    def __call__(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if image_bgr is None or image_bgr.ndim != 3:
            raise EngineError("the detector needs an (H, W, 3) BGR image")
        names = [n for _, a, b in self._outputs for n in (a, b)]
        out = dict(zip(names, self.session.run(names, {"image": self.preprocess(image_bgr)})))
        boxes, scores = [], []
        for stride, s_name, b_name in self._outputs:
            b, s = decode_level(out[s_name][0], out[b_name][0], self.input_hw, stride,
                                int(self.meta["reg_max"]), int(self.meta["person_class"]),
                                self.threshold)
            boxes.append(b)
            scores.append(s)
        boxes, scores = np.concatenate(boxes), np.concatenate(scores)
        keep = nms(boxes, scores, self.iou)[: self.max_people]
        boxes, scores = boxes[keep], scores[keep]
        ih, iw = image_bgr.shape[:2]
        h, w = self.input_hw
        boxes = boxes * [iw / w, ih / h, iw / w, ih / h]  # stretch back; edges at 0
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, iw)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, ih)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        ok = (xywh[:, 2] > 1) & (xywh[:, 3] > 1)
        return xywh[ok], scores[ok]
