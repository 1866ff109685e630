"""Drawing: skeleton limbs + joints (coloured by confidence), person box, HUD; window and
video file outputs.

Joint colour goes from red (score = ``conf``) to green (score 1); joints and limbs below
``conf`` are not drawn. Joint dots and limbs are sized to the person (their box), not the
frame: on a 90-px walker a dot is ~3 px wide, on a 400-px person ~13 px; a tracked person's
id is drawn at their box. The HUD goes to the corner of the frame that covers the fewest
people. Joint names and limbs come from the model's metadata, so any joint set the model
was trained on renders correctly.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import cv2
import numpy as np

from edgepose.errors import EdgeposeError

BOX_COLOR = (255, 200, 0)  # BGR
HUD_BG = (0, 0, 0)
HUD_FG = (255, 255, 255)


@dataclass
class RenderOptions:
    conf: float = 0.3
    draw_box: bool = True
    draw_hud: bool = True
    joint_radius: int | None = None  # px; None = from the person's size
    limb_thickness: int | None = None
    draw_ids: bool = True


def person_sizes(box, image_shape, opts: RenderOptions) -> tuple[int, int]:
    """(joint radius, limb thickness) px for a person of ``box`` (xywh; None: the frame's
    shorter side stands in): radius = height / 64 within 1..9, limbs half as thick."""
    h = float(box[3]) if box is not None else float(min(image_shape[:2]))
    radius = opts.joint_radius or int(np.clip(round(h / 64.0), 1, 9))
    thick = opts.limb_thickness or int(np.clip(round(h / 128.0), 1, 5))
    return radius, thick


def confidence_color(score: float, conf: float) -> tuple[int, int, int]:
    """BGR colour for a score: red at ``conf``, green at 1.0 (linear in between)."""
    t = 1.0 if conf >= 1.0 else float(np.clip((score - conf) / (1.0 - conf), 0.0, 1.0))
    return (0, int(round(255 * t)), int(round(255 * (1.0 - t))))


def _pt(xy, shift: int = 4) -> tuple[int, int]:
    """Sub-pixel point for OpenCV drawing with ``shift`` fractional bits."""
    s = 1 << shift
    return int(round(float(xy[0]) * s)), int(round(float(xy[1]) * s))


class Renderer:
    """Draws people and the HUD onto a BGR frame in place."""

    def __init__(self, limbs, opts: RenderOptions | None = None):
        self.limbs = [tuple(int(i) for i in limb) for limb in limbs]
        self.opts = opts or RenderOptions()

    def draw_person(self, image: np.ndarray, coords: np.ndarray, scores: np.ndarray,
                    box: np.ndarray | None = None, track_id: int | None = None) -> None:
        """``coords`` (K, 2) frame px, ``scores`` (K,); ``box`` xywh or None; ``track_id``
        drawn at the box's top-left corner when given."""
        o = self.opts
        radius, thick = person_sizes(box, image.shape, o)
        if box is not None and o.draw_box:
            x, y, w, h = (float(v) for v in box)
            cv2.rectangle(image, _pt((x, y)), _pt((x + w - 1, y + h - 1)), BOX_COLOR, 1,
                          cv2.LINE_AA, 4)
        if box is not None and track_id is not None and o.draw_ids:
            scale = float(np.clip(box[3] / 250.0, 0.35, 0.8))
            org = (int(box[0]) + 2, max(int(box[1]) - 3, 10))
            cv2.putText(image, f"#{int(track_id)}", org, cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(image, f"#{int(track_id)}", org, cv2.FONT_HERSHEY_SIMPLEX, scale,
                        BOX_COLOR, 1, cv2.LINE_AA)
        k = len(scores)
        for a, b in self.limbs:
            if a >= k or b >= k or scores[a] < o.conf or scores[b] < o.conf:
                continue
            color = confidence_color(min(scores[a], scores[b]), o.conf)
            cv2.line(image, _pt(coords[a]), _pt(coords[b]), color, thick, cv2.LINE_AA, 4)
        for j in range(k):
            if scores[j] < o.conf or not np.all(np.isfinite(coords[j])):
                continue
            color = confidence_color(scores[j], o.conf)
            cv2.circle(image, _pt(coords[j]), radius << 4, color, -1, cv2.LINE_AA, 4)

    def draw_hud(self, image: np.ndarray, lines: list[str], avoid=()) -> tuple[int, int]:
        """Text lines on a black band in the frame corner that overlaps the boxes in
        ``avoid`` (xywh, the people drawn) least -- top-left when nobody is in the way.
        Returns the band's top-left corner (x, y)."""
        if not self.opts.draw_hud or not lines:
            return (0, 0)
        scale = max(0.35, min(image.shape[1] / 1280.0, 1.0))
        font = cv2.FONT_HERSHEY_SIMPLEX
        sizes = [cv2.getTextSize(s, font, scale, 1)[0] for s in lines]
        line_h = max(h for _, h in sizes) + 6
        width = max(w for w, _ in sizes) + 8
        height = line_h * len(lines) + 4
        ih, iw = image.shape[:2]
        corners = [(0, 0), (iw - width, 0), (0, ih - height), (iw - width, ih - height)]

        def covered(c) -> float:
            x0, y0 = c
            total = 0.0
            for b in avoid:
                ow = min(x0 + width, b[0] + b[2]) - max(x0, b[0])
                oh = min(y0 + height, b[1] + b[3]) - max(y0, b[1])
                total += max(ow, 0.0) * max(oh, 0.0)
            return total

        x0, y0 = min(corners, key=covered)  # ties: the first, top-left
        x0, y0 = max(int(x0), 0), max(int(y0), 0)
        cv2.rectangle(image, (x0, y0), (x0 + width, y0 + height), HUD_BG, -1)
        for i, s in enumerate(lines):
            cv2.putText(image, s, (x0 + 4, y0 + line_h * (i + 1)), font, scale, HUD_FG, 1,
                        cv2.LINE_AA)
        return x0, y0


def hud_lines(fps: float, stage_ms: dict[str, float], dropped: int, backend: str,
              precision: str, input_hw: tuple[int, int], people: int) -> list[str]:
    """The HUD text: rolling FPS, per-stage ms, drops, backend / precision / input size."""
    stages = " ".join(f"{k} {v:.1f}" for k, v in stage_ms.items())
    return [
        f"FPS {fps:5.1f}  people {people}  dropped {dropped}",
        f"ms: {stages}",
        f"{backend} {precision} {input_hw[1]}x{input_hw[0]}",
    ]


def gui_available() -> bool:
    """Whether an OpenCV window can be shown: a GUI backend compiled in, and on Linux a
    display to draw on."""
    import os
    import re

    m = re.search(r"GUI:\s*(\S+)", cv2.getBuildInformation())
    if m is None or m.group(1).upper() == "NONE":
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class Display:
    """An OpenCV window when the build has a GUI; otherwise headless, said once."""

    def __init__(self, enabled: bool, title: str = "edgepose", saving: bool = False):
        self.enabled = enabled
        self.title = title
        self.opened = False
        self.saving = saving  # a video is being written: no need to suggest --save

    def show(self, image: np.ndarray) -> bool:
        """Show a frame; False when the user pressed q or Esc (or closed the window)."""
        if not self.enabled:
            return True
        try:
            cv2.imshow(self.title, image)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error:
            self.enabled = False
            hint = "" if self.saving else " (use --save out.mp4 to keep the video)"
            print("edgepose: this OpenCV has no GUI support (headless build); running "
                  f"without a window{hint}", file=sys.stderr)
            return True
        self.opened = True
        if key in (ord("q"), 27):
            return False
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return False
        except cv2.error:
            pass
        return True

    def close(self) -> None:
        if self.opened:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self.opened = False


# Containers a recording may use. MP4 writes its index (moov) when the file is closed: a
# run stopped by Ctrl-C, SIGTERM or SIGHUP closes it, but after kill -9 / power loss the
# file is unplayable. Matroska and AVI are readable up to the last frames the writer had
# flushed (measured: kill -9 at frame 201 of a 320x240 clip left 126-129 frames readable;
# the rest sat in OpenCV's 256 KB write buffer): use them for unattended recording.
VIDEO_SUFFIXES_CRASH_SAFE = (".mkv", ".avi")
VIDEO_SUFFIXES_WRITABLE = (".mp4",) + VIDEO_SUFFIXES_CRASH_SAFE


class VideoSink:
    """mp4v video writer (.mp4, or crash-safe .mkv / .avi), opened on the first frame (its
    size fixes the video's)."""

    def __init__(self, path: str, fps: float | None = None):
        from pathlib import Path

        if Path(path).suffix.lower() not in VIDEO_SUFFIXES_WRITABLE:
            raise EdgeposeError(f"cannot write video {path}: name it .mp4, or .mkv / .avi to "
                                "keep what was recorded if the process is killed")
        self.path = str(path)
        # None: the pipeline sets the source's rate when it knows it (30 if unknown)
        self.fps = float(fps) if fps and fps > 0 else None
        self.writer = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if self.writer is None:
            h, w = image.shape[:2]
            fps = self.fps or 30.0
            writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            if not writer.isOpened():
                raise EdgeposeError(
                    f"cannot write video {self.path}; check the folder exists and is writable"
                )
            self.writer = writer
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
