"""Build the small real-image test fixtures under tests/assets/ from ../shared/data.

    python scripts/make_test_assets.py [--shared ../shared/data]

* tests/assets/lsp/: LSP *test-split* images im1001-im1012 (never trained on; Flickr,
  CC BY 2.0, attribution read from each JPEG's comments into ATTRIBUTION.md) and
  joints_subset.json, their rows of joints.mat ([x, y, occluded] x 14, MATLAB 1-based)
  read with scipy, so tests can check the converter without the full dataset.
* tests/assets/coco/: COCO val2017 photos with a CC BY (licence 4) or CC BY-SA
  (licence 5) Flickr licence, resized to at most 320 px (the licences allow adaptation
  with attribution), and their person keypoints scaled alike in
  person_keypoints.json (COCO format, one image id per photo).

* tests/assets/clip/vtest_16.mp4: 16 frames (every 48th, 768x576) of OpenCV's sample
  video vtest.avi (a fixed camera, people walking) for the ``edgepose adapt`` tests, from
  Debian's opencv-doc package (``apt-get download opencv-doc``; pass ``--vtest`` to the
  extracted examples/data/vtest.avi). Licence: Apache-2.0 AND BSD-3-Clause (the package's
  ``Files: *`` stanza).

Run once; the outputs are committed. Total size stays around 1.3 MB.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

LSP_TEST = list(range(1001, 1013))
# (subset, file) — picked for an obvious ImageNet class too (weights import test)
COCO_PHOTOS = [
    ("coco-mini", "000000160012.jpg"),  # pizza, CC BY
    ("coco-mini", "000000519208.jpg"),  # elephant, CC BY
    ("coco-mini", "000000229358.jpg"),  # medicine cabinet, CC BY, 2 people
    ("tiny-coco", "000000565778.jpg"),  # passenger car, CC BY
]
MAX_SIDE = 320
# Multi-person photos for the detector and --multi (CC BY 2.0, full resolution, unmodified)
MULTI_PHOTOS = [
    ("coco-mini", "val2017", "000000214753.jpg"),
    ("tiny-coco", "val2017", "000000252219.jpg"),
    ("coco-mini", "train2017", "000000000790.jpg"),
]


def lsp_assets(shared: Path, out: Path) -> None:
    from scipy.io import loadmat

    from edgepose.data.lsp import flickr_attribution

    out.mkdir(parents=True, exist_ok=True)
    joints = loadmat(str(shared / "lsp" / "joints.mat"))["joints"]  # (3, 14, 2000)
    rows, lines = {}, ["# LSP test images (im1001-im1012)", "",
                       "From Leeds Sports Pose (Johnson & Everingham, BMVC 2010), test split. "
                       "Flickr photos under CC BY 2.0 "
                       "(https://creativecommons.org/licenses/by/2.0/); unmodified.", "",
                       "| file | owner | photo |", "| --- | --- | --- |"]
    for n in LSP_TEST:
        name = f"im{n:04d}.jpg"
        shutil.copyfile(shared / "lsp" / "images" / name, out / name)
        rows[name] = joints[:, :, n - 1].T.round(6).tolist()
        a = flickr_attribution(out / name)
        lines.append(f"| {name} | {a.get('owner_name', '?')} | {a.get('photo_url', '?')} |")
    (out / "joints_subset.json").write_text(json.dumps(rows, indent=1))
    (out / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n")


def coco_assets(shared: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    images, anns, lines = [], [], [
        "# COCO val2017 / tiny-coco photos", "",
        "Images from COCO 2017 (annotations CC BY 4.0, cocodataset.org); each photo's own "
        "Flickr licence below. **Resized** to at most 320 px on the longer side; keypoints "
        "scaled alike.", "", "| file | licence | Flickr URL |", "| --- | --- | --- |"]
    for subset, name in COCO_PHOTOS:
        split = "val2017"
        data = json.loads((shared / subset / "annotations" /
                           f"person_keypoints_{split}.json").read_text())
        lic = {entry["id"]: entry for entry in data["licenses"]}
        im = next(i for i in data["images"] if i["file_name"] == name)
        assert im["license"] in (4, 5), f"{name}: licence {im['license']} is not CC BY/BY-SA"
        img = cv2.imread(str(shared / subset / split / name))
        s = MAX_SIDE / max(img.shape[:2])
        small = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)),
                           interpolation=cv2.INTER_AREA)
        sx, sy = small.shape[1] / img.shape[1], small.shape[0] / img.shape[0]
        cv2.imwrite(str(out / name), small, [cv2.IMWRITE_JPEG_QUALITY, 88])
        images.append({"id": im["id"], "file_name": name, "width": small.shape[1],
                       "height": small.shape[0], "license": im["license"],
                       "flickr_url": im.get("flickr_url", "")})
        for a in data["annotations"]:
            if a["image_id"] != im["id"]:
                continue
            k = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
            # pixel centres on integers: x' = (x + 0.5) * s - 0.5
            k[:, 0] = np.where(k[:, 2] > 0, (k[:, 0] + 0.5) * sx - 0.5, 0)
            k[:, 1] = np.where(k[:, 2] > 0, (k[:, 1] + 0.5) * sy - 0.5, 0)
            x, y, w, h = a["bbox"]
            anns.append({**{key: a[key] for key in ("id", "image_id", "category_id", "iscrowd",
                                                    "num_keypoints")},
                         "keypoints": k.reshape(-1).round(2).tolist(),
                         "bbox": [round(x * sx, 2), round(y * sy, 2), round(w * sx, 2),
                                  round(h * sy, 2)],
                         "area": round(a["area"] * sx * sy, 2)})
        url = lic[im["license"]]["url"].replace("\\/", "/")
        lines.append(f"| {name} | {lic[im['license']]['name']} ({url}) "
                     f"| {im.get('flickr_url', '')} |")
    cats = data["categories"]
    (out / "person_keypoints.json").write_text(json.dumps(
        {"info": {"description": "edgepose test photos (COCO val2017 subset, resized)"},
         "licenses": data["licenses"], "images": images, "annotations": anns,
         "categories": cats}))
    (out / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n")


def multi_assets(shared: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    images, anns, lines, cats, lic_all = [], [], [
        "# Multi-person COCO 2017 photos (detector and --multi tests)", "",
        "Images from COCO 2017 (annotations CC BY 4.0, cocodataset.org), unmodified; each "
        "photo's own Flickr licence below.", "", "| file | licence | Flickr URL |",
        "| --- | --- | --- |"], None, None
    for subset, split, name in MULTI_PHOTOS:
        data = json.loads((shared / subset / "annotations" /
                           f"person_keypoints_{split}.json").read_text())
        lic = {entry["id"]: entry for entry in data["licenses"]}
        im = next(i for i in data["images"] if i["file_name"] == name)
        assert im["license"] in (4, 5), f"{name}: licence {im['license']} is not CC BY/BY-SA"
        shutil.copyfile(shared / subset / split / name, out / name)
        images.append({k: im[k] for k in ("id", "file_name", "width", "height", "license",
                                          "flickr_url") if k in im})
        anns += [a for a in data["annotations"] if a["image_id"] == im["id"]]
        url = lic[im["license"]]["url"].replace("\\/", "/")
        lines.append(f"| {name} | {lic[im['license']]['name']} ({url}) | "
                     f"{im.get('flickr_url', '')} |")
        cats, lic_all = data["categories"], data["licenses"]
    (out / "person_keypoints.json").write_text(json.dumps(
        {"info": {"description": "edgepose multi-person test photos (COCO 2017)"},
         "licenses": lic_all, "images": images, "annotations": anns, "categories": cats}))
    (out / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n")


VTEST_EVERY, VTEST_FRAMES = 48, 16


def clip_assets(vtest: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(vtest))
    if not cap.isOpened():
        raise SystemExit(f"{vtest}: cannot open; apt-get download opencv-doc and extract it")
    writer = cv2.VideoWriter(str(out / "vtest_16.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                             10.0, (int(cap.get(3)), int(cap.get(4))))
    i = n = 0
    while n < VTEST_FRAMES:
        ok, frame = cap.read()
        if not ok:
            break
        if i % VTEST_EVERY == 0:
            writer.write(frame)
            n += 1
        i += 1
    writer.release()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default="../shared/data", type=Path)
    ap.add_argument("--out", default="tests/assets", type=Path)
    ap.add_argument("--vtest", type=Path, default=Path(
        "/usr/share/doc/opencv-doc/examples/data/vtest.avi"), help="OpenCV's vtest.avi")
    args = ap.parse_args()
    lsp_assets(args.shared, args.out / "lsp")
    coco_assets(args.shared, args.out / "coco")
    multi_assets(args.shared, args.out / "multi")
    clip_assets(args.vtest, args.out / "clip")
    print(f"wrote {args.out}/lsp, coco, multi and clip")


if __name__ == "__main__":
    main()
