"""``--keypoints poses.jsonl``: one JSON line per rendered frame with every person's keypoints.

    {"frame": 12, "t": 0.412, "people": [{"track_id": 1, "box": [x, y, w, h],
      "score": 0.61, "box_score": 0.83, "keypoints": [[x, y, score], ... K],
      "raw": [[x, y], ... K]}]}

``score`` is the person score of ``predict`` (mean joint score, times ``box_score`` -- the
score of the detection that placed the track -- where a detector found the person;
``box_score`` is left out otherwise); ``box`` is the box this frame was cropped from.

``t`` is the frame's time in seconds since the first frame: the video's own clock for a file
(frame index / frame rate), the capture clock for a live source; coordinates are frame
pixels (edgepose convention: pixel centres on integers); ``keypoints`` are smoothed (One
Euro), ``raw`` the model's output for that frame. Each line is flushed as it is written, so
the file is complete up to the last rendered frame on every exit path (end of stream,
``--frames``, Ctrl-C, an error).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def person_record(p) -> dict:
    kp = np.concatenate([np.asarray(p.keypoints, np.float64),
                         np.asarray(p.scores, np.float64)[:, None]], axis=1)
    rec = {"track_id": int(p.track_id),
           "box": [round(float(v), 2) for v in p.box], "score": round(float(p.score), 4)}
    if p.box_score is not None:
        rec["box_score"] = round(float(p.box_score), 4)
    return {**rec,
            "keypoints": np.round(kp, 3).tolist(),
            "raw": np.round(np.asarray(p.raw, np.float64), 3).tolist()}


class KeypointLog:
    """Append one line per frame to ``path`` (created; its folder must exist)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._f = open(self.path, "w", buffering=1)
        self._t0: float | None = None
        self.lines = 0

    def write(self, frame, people) -> None:
        if self._f is None:
            return
        if self._t0 is None:
            self._t0 = frame.t
        rec = {"frame": int(frame.id), "t": round(frame.t - self._t0, 4),
               "people": [person_record(p) for p in people]}
        self._f.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self.lines += 1

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
