"""MediaPipe BlazePose worker: runs inside the *teacher's own* virtual environment.

mediapipe 0.10.21 pins ``numpy<2`` and brings ``opencv-contrib-python`` 4.x, which cannot
share an environment with edgepose's numpy 2 / OpenCV 5. So the teacher lives in its own
venv (``edgepose label --install-teacher`` makes it) and this file is its whole program:
it imports nothing from edgepose, reads one JSON request per line on stdin and answers one
JSON line per request on stdout (:mod:`edgepose.engines.blazepose` is the other side).

Request:  {"path": "img.jpg", "box": [x, y, w, h] or null}
          (a box: the person is cropped as a square of PAD x its longer side, centred on
          the box, edges replicated; no box: the whole image)
Answer:   {"ok": true, "landmarks": [[x, y, visibility], ... 33], "ms": t} in *image* pixels
          with edgepose's convention (pixel centres on integers), or {"ok": false, "why":
          "..."}; ``ms`` is the time of MediaPipe's ``process`` call alone.
The first line written is {"ready": true, "mediapipe": version, "complexity": n}.
"""

import json
import sys
import time

# The ground-truth box padding (edgepose.coords.CROP_PADDING). This worker runs in
# MediaPipe's own venv and must import nothing from edgepose, so the value is repeated here;
# a request's "pad" (a detector's own padding, edgepose.topdown's policy) overrides it.
PAD = 1.25


def main() -> int:
    import cv2
    import mediapipe as mp
    import numpy as np

    complexity = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=complexity,
                                  enable_segmentation=False, min_detection_confidence=0.3)
    out = sys.stdout
    out.write(json.dumps({"ready": True, "mediapipe": mp.__version__,
                          "complexity": complexity}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        img = cv2.imread(req["path"], cv2.IMREAD_COLOR)
        if img is None:
            out.write(json.dumps({"ok": False, "why": "image cannot be read"}) + "\n")
            out.flush()
            continue
        h, w = img.shape[:2]
        box = req.get("box")
        if box:
            x, y, bw, bh = (float(v) for v in box)
            side = max(bw, bh) * float(req.get("pad", PAD))
            cx, cy = x + bw / 2 - 0.5, y + bh / 2 - 0.5  # box centre in pixel-centre coords
            x0, y0 = cx - (side - 1) / 2, cy - (side - 1) / 2
            size = max(int(round(side)), 16)
            # crop px = (image px - origin) * size / side; sample with edge replication
            m = np.array([[size / side, 0, -x0 * size / side],
                          [0, size / side, -y0 * size / side]], dtype=np.float64)
            crop = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
            scale, ox, oy, cw, ch = side / size, x0, y0, size, size
        else:
            crop, scale, ox, oy, cw, ch = img, 1.0, 0.0, 0.0, w, h
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        t0 = time.perf_counter()
        res = pose.process(rgb)
        ms = (time.perf_counter() - t0) * 1000.0
        if res.pose_landmarks is None:
            out.write(json.dumps({"ok": False, "why": "no person found", "ms": ms}) + "\n")
            out.flush()
            continue
        lms = []
        for lm in res.pose_landmarks.landmark:
            # MediaPipe's normalised coordinates put pixel edges at 0 and 1
            px, py = lm.x * cw - 0.5, lm.y * ch - 0.5
            lms.append([px * scale + ox, py * scale + oy, float(lm.visibility)])
        out.write(json.dumps({"ok": True, "landmarks": lms, "ms": ms}) + "\n")
        out.flush()
    pose.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
