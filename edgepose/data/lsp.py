"""Leeds Sports Pose (LSP) and LSP Extended (LSPe) -> COCO person-keypoint JSON.

Both datasets label 14 joints per image in one ``joints.mat``::

    LSP index  0 r_ankle  1 r_knee  2 r_hip  3 l_hip  4 l_knee  5 l_ankle
               6 r_wrist  7 r_elbow 8 r_shoulder 9 l_shoulder 10 l_elbow 11 l_wrist
              12 neck    13 head_top

Twelve of them are COCO-17 joints 5-16 (:data:`LSP_TO_COCO`); neck and head top have no
COCO joint and are dropped; COCO's nose, eyes and ears stay unlabelled (``v = 0``).
"Right" is the *person's* right, as in COCO.

The two files store different things in the same place:

=============  ===================  ==========================================
dataset        array shape          third value
=============  ===================  ==========================================
``lsp``        (3, 14, N)           1 = joint *occluded* (still labelled)
``lspet``      (14, 3, N)           1 = joint *labelled*; 0 = missing
=============  ===================  ==========================================

Mapped to COCO visibility: LSP occluded -> ``v = 1``, LSP not occluded -> ``v = 2``;
LSPe labelled -> ``v = 2``, LSPe missing -> ``v = 0`` (coordinates written as 0).

Coordinates are MATLAB's 1-based image coordinates (pixel centres on 1 .. W). In the
2,000 LSP images no x is below 1.0 and none above W - 1.2, so the labels are 1-based;
edgepose's convention (``edgepose/coords.py``) puts pixel centres on 0 .. W - 1, so the
converter subtracts :data:`MATLAB_OFFSET` = 1 from both axes.

LSP's standard split: ``im0001-im1000`` train, ``im1001-im2000`` test (every published
LSP number is on the test half). LSPe is training data only.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgepose.errors import DataError

LSP_JOINTS = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist", "neck", "head_top",
)
# LSP index -> COCO-17 index (neck and head top have no COCO joint).
LSP_TO_COCO = {0: 16, 1: 14, 2: 12, 3: 11, 4: 13, 5: 15,
               6: 10, 7: 8, 8: 6, 9: 5, 10: 7, 11: 9}
MATLAB_OFFSET = 1.0
SPLITS = {"train": (1, 1000), "test": (1001, 2000), "all": (1, 2000)}
BOX_MARGIN = 0.15  # bbox = labelled joints' extent grown by this fraction per side
FLICKR_LICENSES = {  # Flickr licence ids as they appear in LSP's JPEG comments
    4: ("Attribution License", "https://creativecommons.org/licenses/by/2.0/"),
}


def read_joints(mat_path, kind: str) -> np.ndarray:
    """``joints.mat`` -> (N, 14, 3) float64 [x, y, flag] in the file's own (1-based) pixels.

    ``kind`` is ``lsp`` or ``lspet`` and says which layout to expect (see module doc);
    a file with another key or shape raises DataError naming it.
    """
    from scipy.io import loadmat

    mat_path = Path(mat_path)
    if not mat_path.is_file():
        raise DataError(f"{mat_path}: joints.mat not found; pass the dataset folder that "
                        "holds joints.mat and images/")
    try:
        mat = loadmat(str(mat_path))
    except Exception as e:  # noqa: BLE001 - scipy raises several types for bad files
        raise DataError(f"{mat_path}: not a readable MATLAB file ({type(e).__name__})") from None
    if "joints" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{mat_path}: has no 'joints' array (keys: {keys}); is this LSP's "
                        "joints.mat?")
    j = np.asarray(mat["joints"], dtype=np.float64)
    if kind == "lsp":
        if j.ndim != 3 or j.shape[:2] != (3, 14):
            raise DataError(f"{mat_path}: 'joints' has shape {j.shape}; LSP's is (3, 14, N) "
                            "(for LSPe's (14, 3, N) use 'convert lspet')")
        return j.transpose(2, 1, 0).copy()
    if kind == "lspet":
        if j.ndim != 3 or j.shape[:2] != (14, 3):
            raise DataError(f"{mat_path}: 'joints' has shape {j.shape}; LSPe's is (14, 3, N) "
                            "(for LSP's (3, 14, N) use 'convert lsp')")
        return j.transpose(2, 0, 1).copy()
    raise ValueError(f"kind must be 'lsp' or 'lspet', not {kind!r}")


def coco_keypoints(joints14: np.ndarray, kind: str) -> np.ndarray:
    """(14, 3) LSP [x, y, flag] (1-based) -> (17, 3) COCO [x, y, v] in edgepose pixels."""
    out = np.zeros((17, 3), dtype=np.float64)
    for src, dst in LSP_TO_COCO.items():
        x, y, flag = joints14[src]
        if kind == "lsp":
            v = 1 if flag > 0.5 else 2
        else:
            v = 2 if flag > 0.5 else 0
        if v:
            out[dst] = (x - MATLAB_OFFSET, y - MATLAB_OFFSET, v)
    return out


def joint_box(kps: np.ndarray, width: int, height: int,
              margin: float = BOX_MARGIN) -> list[float] | None:
    """[x, y, w, h] around the labelled joints, grown by ``margin`` of the extent per side
    (at least 4 px), clipped to the image; None if no joint is labelled."""
    lab = kps[:, 2] > 0
    if not lab.any():
        return None
    lo, hi = kps[lab, :2].min(0), kps[lab, :2].max(0)
    pad = np.maximum((hi - lo) * margin, 4.0)
    x0, y0 = np.maximum(lo - pad, -0.5)
    x1 = min(hi[0] + pad[0], width - 0.5)
    y1 = min(hi[1] + pad[1], height - 0.5)
    # edges in edgepose pixels are at -0.5 and W - 0.5; COCO boxes start at the edge
    return [float(x0 + 0.5), float(y0 + 0.5), float(x1 - x0), float(y1 - y0)]


def jpeg_comments(path) -> list[str]:
    """The JPEG COM segments of ``path`` as text (LSP keeps its Flickr attribution there)."""
    data = Path(path).read_bytes()
    out, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker == 0xFE:
            out.append(data[i + 4:i + 2 + length].decode("latin-1").strip("\x00 "))
        if marker == 0xDA:  # start of scan: no more headers
            break
        i += 2 + length
    return out


def flickr_attribution(path) -> dict[str, Any]:
    """Flickr fields from LSP's JPEG comments: photo id, licence id, owner, URLs ({} if none)."""
    fields = {}
    for line in jpeg_comments(path):
        m = re.match(r"([A-Za-z ]+):\s*(.*)", line)
        if m:
            fields[m.group(1).strip().lower().replace(" ", "_")] = m.group(2).strip()
    if "license" in fields:
        try:
            fields["license"] = int(fields["license"])
        except ValueError:
            pass
    return fields


def _image_size(path: Path) -> tuple[int, int]:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        what = "is missing" if not path.exists() else "cannot be decoded"
        raise DataError(f"{path}: image {what}; the dataset folder looks incomplete")
    return img.shape[1], img.shape[0]


def convert(root, kind: str, split: str = "all", progress: bool = True,
            numbers: list[int] | None = None) -> dict[str, Any]:
    """Build the COCO dict for ``root`` (a folder with ``joints.mat`` and ``images/``).

    ``kind``: ``lsp`` (``split`` = train / test / all) or ``lspet`` (always all).
    ``numbers``: convert only these image numbers (each must lie in the split).
    Image ids are the image numbers (``im0042.jpg`` -> 42) plus 100000 for LSPe, so the
    two can be trained together without id clashes.
    """
    from tqdm import tqdm

    root = Path(root)
    joints = read_joints(root / "joints.mat", kind)
    n = len(joints)
    if kind == "lsp":
        if split not in SPLITS:
            raise DataError(f"--split {split!r}: use one of {sorted(SPLITS)}")
        first, last = SPLITS[split]
        if n < last:
            raise DataError(f"{root / 'joints.mat'}: has {n} people; LSP has 2000")
        name, id_base = "im{:04d}.jpg", 0
    else:
        first, last = 1, n
        name, id_base = "im{:05d}.jpg", 100000
    split_numbers = range(first, last + 1)
    if numbers is None:
        numbers = split_numbers
    elif any(k not in split_numbers for k in numbers):
        raise ValueError(f"image numbers outside {kind} split {split!r}: "
                         f"{[k for k in numbers if k not in split_numbers][:5]}")
    images, annotations, licenses = [], [], {}
    for num in tqdm(numbers, desc=f"convert {kind}", disable=not progress, unit="img"):
        file_name = name.format(num)
        path = root / "images" / file_name
        w, h = _image_size(path)
        kps = coco_keypoints(joints[num - 1], kind)
        image: dict[str, Any] = {"id": id_base + num, "file_name": file_name,
                                 "width": w, "height": h}
        attr = flickr_attribution(path) if kind == "lsp" else {}
        if "license" in attr:
            image["license"] = attr["license"]
            licenses.setdefault(attr["license"], FLICKR_LICENSES.get(attr["license"]))
            image["flickr_url"] = attr.get("photo_url", "")
            image["attribution"] = attr.get("owner_name", "")
        images.append(image)
        box = joint_box(kps, w, h)
        if box is None:
            continue
        annotations.append({
            "id": id_base + num, "image_id": id_base + num, "category_id": 1, "iscrowd": 0,
            "keypoints": [round(float(v), 3) for v in kps.reshape(-1)],
            "num_keypoints": int((kps[:, 2] > 0).sum()),
            "bbox": [round(v, 2) for v in box], "area": round(box[2] * box[3], 2),
        })
    from edgepose.skeleton import coco_person_category, get_skeleton

    sk = get_skeleton("coco17")
    source = {"lsp": "Leeds Sports Pose (Johnson & Everingham, BMVC 2010)",
              "lspet": "LSP Extended (Johnson & Everingham, CVPR 2011)"}[kind]
    return {
        "info": {"description": f"{source}, split {split}, converted by edgepose convert",
                 "joint_origin": "edgepose pixel centres (MATLAB 1-based labels minus 1)"},
        "licenses": [{"id": k, "name": v[0], "url": v[1]} for k, v in licenses.items() if v],
        "images": images,
        "annotations": annotations,
        "categories": [coco_person_category(sk)],
    }
