"""The person detector: the bundled NanoDet ONNX (``edgepose/assets/nanodet_person.onnx``).

``Detector(path)(image_bgr)`` -> (boxes (N, 4) [x, y, w, h] image px, scores (N,)), best
first. Everything the detector needs to be run correctly travels inside the file
(``metadata_props["edgepose_detector"]``: input size, mean/std, colour order, strides,
bins, thresholds, the crop padding its boxes want, source, licence), written by
``scripts/convert_detector.py``.

How a frame reaches the network (``resize`` in the metadata):

* ``keep_aspect`` (the bundled file, whose ONNX input height and width are free): the
  frame is scaled so its longer side is ``long_side`` (416; ``Detector(size=...)``
  overrides it), each side rounded to a multiple of 32 -- a 640 x 480 frame becomes
  416 x 320, not a stretched 416 x 416 (measured on the COCO val subsets: recall at
  IoU 0.5 0.68 -> 0.74 at the same threshold, 38 -> 26 ms; benchmarks/detector.py).
* an ONNX file or engine with a fixed input (a TensorRT engine is built at
  ``long_side`` square, :func:`static_copy`): letterboxed -- scaled to fit, aspect kept,
  padded at the right and bottom with the mean colour.
* ``stretch`` (detector files made before): resized to the fixed input, aspect lost.
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
from edgepose.coords import CROP_PADDING
from edgepose.engines.detection import decode_level, nms
from edgepose.errors import EngineError

DEFAULT_DETECTOR = ASSETS / "nanodet_person.onnx"
META_KEY = "edgepose_detector"


ENGINE_SUFFIXES = (".engine", ".plan")
MULTIPLE = 32  # the coarsest stride: the input sides must be multiples of it


def input_plan(image_hw, resize: str, long_side: int, fixed_hw=None,
               multiple: int = MULTIPLE) -> tuple[tuple[int, int], tuple[int, int], tuple[float, float]]:
    """How an image of ``image_hw`` enters the network: (network input (H, W), the resized
    image's (h, w) inside it (top-left; the rest is padding), (sx, sy) input px per image
    px). ``fixed_hw``: the network's fixed input, None when its H and W are free."""
    h, w = (int(v) for v in image_hw)
    if fixed_hw is None:
        s = long_side / max(h, w)
        ih = max(multiple, int(round(h * s / multiple)) * multiple)
        iw = max(multiple, int(round(w * s / multiple)) * multiple)
        return (ih, iw), (ih, iw), (iw / w, ih / h)
    fh, fw = (int(v) for v in fixed_hw)
    if resize == "stretch":
        return (fh, fw), (fh, fw), (fw / w, fh / h)
    s = min(fh / h, fw / w)
    rh, rw = min(fh, max(1, int(round(h * s)))), min(fw, max(1, int(round(w * s))))
    return (fh, fw), (rh, rw), (rw / w, rh / h)


def static_copy(src, dst, hw: tuple[int, int]) -> None:
    """A copy of the detector ONNX ``src`` with its free input height and width fixed to
    ``hw`` (what a TensorRT engine of it is built from; ``edgepose build`` does this)."""
    from edgepose.engines.meta_io import load_onnx

    model = load_onnx(src)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for d, v in zip(list(dims)[2:], hw):
        d.Clear()
        d.dim_value = int(v)
    for o in model.graph.output:  # cell counts follow from the input; let the parser infer
        for d in o.type.tensor_type.shape.dim:
            if d.dim_param:
                d.Clear()
    del model.graph.value_info[:]
    Path(dst).write_bytes(model.SerializeToString())


def fixed_input_hw(shape) -> tuple[int, int] | None:
    """(H, W) of an NCHW input shape whose H and W are numbers; None when either is free."""
    hw = list(shape)[2:4]
    return tuple(int(v) for v in hw) if all(isinstance(v, int) and v > 0 for v in hw) else None


def onnx_detector_spec(path) -> dict | None:
    """The detector metadata of an ONNX file (None when it is not a detector)."""
    from edgepose.engines.meta_io import load_onnx

    props = {p.key: p.value for p in load_onnx(path).metadata_props}
    return json.loads(props[META_KEY]) if META_KEY in props else None


class Detector:
    """A person detector in ONNX Runtime, or a TensorRT engine of it (``.engine``, built
    by ``edgepose build nanodet_person.onnx``). ``threshold`` / ``iou`` override the file's;
    ``size`` the longer input side of a file whose input size is free (multiple of 32).
    ``crop_padding``: how much to pad its boxes for a pose crop (the file's measured value).
    ``offline=True`` (``predict --multi``, ``eval``: people ranked by score, nothing tracked)
    uses the file's ``offline_threshold``, lower than the live one. ``path`` may also be a
    server URL (``grpc://HOST:8001/person_detector``, what ``edgepose serve --detector``
    serves): the network then runs there, decoding here."""

    def __init__(self, path: str | Path | None = None, device: str = "cpu",
                 threads: int | None = None, threshold: float | None = None,
                 iou: float | None = None, max_people: int = 16, size: int | None = None,
                 offline: bool = False):
        from edgepose.engines.backend import is_server_url

        if is_server_url(path):  # served by edgepose serve --detector
            from edgepose.engines.triton_backend import TritonSession

            self.path = path
            self.session = TritonSession(path)
            self.spec = self.session.detector_spec
            names = set(self.session.outputs)
            self.fixed_hw = None
        else:
            self.path = Path(path) if path else DEFAULT_DETECTOR
            names = self._open_file(path is None, device, threads)
        self.resize = str(self.spec.get("resize", "stretch"))
        self.long_side = int(size or self.spec.get("long_side", max(self.spec["input_size"])))
        if self.long_side < MULTIPLE or self.long_side % MULTIPLE:
            raise EngineError(f"detector size {self.long_side}: must be a multiple of "
                              f"{MULTIPLE} (e.g. 320, 416, 512)")
        if size is not None and self.fixed_hw is not None:
            raise EngineError(f"{self.path}: this detector's input is fixed at "
                              f"{list(self.fixed_hw)}; a size can only be chosen for a detector "
                              "ONNX with a free input size (the bundled one)")
        if self.fixed_hw is None and self.resize == "stretch":
            raise EngineError(f"{self.path}: a stretch-resize detector needs a fixed input size")
        self.crop_padding = float(self.spec.get("crop_padding", CROP_PADDING))
        # a confident person: live tracking starts tracks at this score; people scoring it
        # are hidden in each other's crops (edgepose.topdown) whatever ``threshold`` keeps
        self.live_threshold = float(self.spec["score_threshold"])
        default = self.spec.get("offline_threshold", self.live_threshold) if offline \
            else self.live_threshold
        self.threshold = float(default if threshold is None else threshold)
        self.iou = float(self.spec["nms_iou"] if iou is None else iou)
        self.max_people = int(max_people)
        self._mean = np.asarray(self.spec["mean"], np.float32)
        self._std = np.asarray(self.spec["std"], np.float32)
        self._outputs = [(s, f"scores_s{s}", f"boxes_s{s}") for s in self.spec["strides"]]
        missing = {n for _, a, b in self._outputs for n in (a, b)} - names
        if missing:
            raise EngineError(f"{self.path}: detector outputs {sorted(missing)} are missing")

    def _open_file(self, bundled: bool, device: str, threads: int | None) -> set[str]:
        """Open an ONNX file or a TensorRT engine; returns its output names."""
        if not self.path.is_file():
            raise EngineError(f"{self.path}: person detector file not found"
                              + ("; reinstall edgepose" if bundled else ""))
        if self.path.suffix.lower() in ENGINE_SUFFIXES:
            from edgepose.engines.trt_session import TrtSession

            self.session = TrtSession(self.path)
            self.spec = self.session.detector_spec
            self.fixed_hw = fixed_input_hw(self.session.input_shape("image"))
            return set(self.session.outputs)
        self.session, self.spec = self._onnx_session(device, threads)
        self.fixed_hw = fixed_input_hw(self.session.get_inputs()[0].shape)
        return {o.name for o in self.session.get_outputs()}

    def _onnx_session(self, device: str, threads: int | None):
        from edgepose.engines.ort_session import make_session

        session = make_session(self.path, device, threads, "a person detector")
        props = session.get_modelmeta().custom_metadata_map
        if META_KEY not in props:
            raise EngineError(f"{self.path}: ONNX file has no {META_KEY!r} metadata; make the "
                              "detector with scripts/convert_detector.py")
        return session, json.loads(props[META_KEY])

    def close(self) -> None:
        if hasattr(self.session, "close"):
            self.session.close()

    def letterbox(self, image_bgr: np.ndarray):
        """Resize as the metadata says (module docstring), normalise: ((1, 3, H, W) float32,
        network input (H, W), (sx, sy) input px per image px)."""
        (ih, iw), (rh, rw), scale = input_plan(image_bgr.shape[:2], self.resize,
                                               self.long_side, self.fixed_hw)
        img = cv2.resize(image_bgr, (rw, rh), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        if self.spec.get("color", "BGR") == "RGB":
            img = img[..., ::-1]
        x = np.zeros((3, ih, iw), np.float32)  # zero after normalising = the mean colour
        x[:, :rh, :rw] = ((img - self._mean) / self._std).transpose(2, 0, 1)
        return x[None], (ih, iw), scale

    def __call__(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if image_bgr is None or image_bgr.ndim != 3:
            raise EngineError("the detector needs an (H, W, 3) BGR image")
        names = [n for _, a, b in self._outputs for n in (a, b)]
        x, input_hw, (sx, sy) = self.letterbox(image_bgr)
        out = dict(zip(names, self.session.run(names, {"image": x})))
        boxes, scores = [], []
        for stride, s_name, b_name in self._outputs:
            b, s = decode_level(out[s_name][0], out[b_name][0], input_hw, stride,
                                int(self.spec["reg_max"]), int(self.spec["person_class"]),
                                self.threshold)
            boxes.append(b)
            scores.append(s)
        boxes, scores = np.concatenate(boxes), np.concatenate(scores)
        keep = nms(boxes, scores, self.iou)[: self.max_people]
        boxes, scores = boxes[keep], scores[keep]
        ih, iw = image_bgr.shape[:2]
        boxes = boxes / [sx, sy, sx, sy]  # back to image px; edges at 0
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, iw)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, ih)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        ok = (xywh[:, 2] > 1) & (xywh[:, 3] > 1)
        return xywh[ok], scores[ok]
