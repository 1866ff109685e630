"""The README's runnable Python example (the squat counter) runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]


def test_squat_counter_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    example = next(b for b in blocks if "squats" in b and "def angle" in b)
    script = tmp_path / "squats.py"
    script.write_text(example)
    clip = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 240))
    for name in ("im1001.jpg", "im1004.jpg"):
        frame = cv2.resize(cv2.imread(str(ROOT / "tests" / "assets" / "lsp" / name)), (160, 240))
        for _ in range(5):
            w.write(frame)
    w.release()
    r = subprocess.run([sys.executable, str(script), str(clip)], capture_output=True,
                       text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.fullmatch(r"squats: \d+\n", r.stdout), r.stdout
