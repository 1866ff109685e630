"""Shared test fixtures.

Contract (owned by the data part; other test files may rely on it):

``synth_coco`` (session scope) -> :class:`SynthCoco`, a tiny synthetic COCO-format keypoint
dataset generated once per test session with ``edgepose.data.synthetic``:

    root          Path   dataset folder (inside pytest's tmp_path_factory)
    train_json    Path   root/annotations/person_keypoints_train.json  (48 images, 128x128)
    val_json      Path   root/annotations/person_keypoints_val.json    (16 images, 128x128)
    image_root(split) -> Path   root/images/<split>, the folder the JSON's file_name's are in
    size          (W, H) image size in pixels

Treat it as read-only (it is shared by every test); copy it into your own ``tmp_path`` if a
test must modify files.

The session also caps torch/OpenCV threads (the test machines are small and shared):
``EDGEPOSE_TEST_THREADS`` (default 1) threads each.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest

_THREADS = max(1, int(os.environ.get("EDGEPOSE_TEST_THREADS", "1")))

try:  # keep tests usable even where torch is broken; the torch tests will say why
    import torch

    torch.set_num_threads(_THREADS)
except Exception:  # pragma: no cover
    pass
try:
    import cv2

    cv2.setNumThreads(_THREADS)
except Exception:  # pragma: no cover
    pass

SYNTH_TRAIN = 48
SYNTH_VAL = 16
SYNTH_SIZE = (128, 128)
SYNTH_SEED = 0


class SynthCoco(NamedTuple):
    root: Path
    train_json: Path
    val_json: Path
    size: tuple[int, int] = SYNTH_SIZE

    def image_root(self, split: str) -> Path:
        return self.root / "images" / split


@pytest.fixture(scope="session")
def synth_coco(tmp_path_factory) -> SynthCoco:
    from edgepose.data.synthetic import generate_coco_dataset

    root = tmp_path_factory.mktemp("synth_coco")
    train = generate_coco_dataset(root, SYNTH_TRAIN, seed=SYNTH_SEED, image_size=SYNTH_SIZE,
                                  split="train", progress=False)
    val = generate_coco_dataset(root, SYNTH_VAL, seed=SYNTH_SEED, image_size=SYNTH_SIZE,
                                split="val", progress=False)
    return SynthCoco(root, train, val)
