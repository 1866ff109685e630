"""Accuracy and speed on REAL people with ground-truth boxes, every model side by side.

    python benchmarks/real_accuracy.py \
        --model dsnt-128=edgepose/assets/real_heatmap_128.onnx \
        --model nerpe-dense-64=runs/real_mnv2_nerpe_64/best.pt@dense:64 \
        --teacher full --teacher heavy [--shared ../shared/data] [--threads 1]

Sets (never the teacher's labels): LSP test im1001-im2000 (PCK@0.2, torso normaliser, the
12 limb joints, and per joint) and the COCO val subsets coco-mini + tiny-coco val2017
(OKS AP with pycocotools, PCK@0.1 of the box's longer side, all 17 joints).

A model is ``LABEL=PATH`` with PATH an .onnx or a checkpoint (.pt, exported here, with
``@DECODER`` such as ``@dense:64`` / ``@progressive`` to override NerPE's decoder), and
``%N`` to give it only N pixels of information across each crop (the image is shrunk
so that the crop is N px wide, then enlarged back: "MoveNet fed a 64-px crop"). MoveNet
Lightning / Thunder imported by ``edgepose weights import`` are edgepose ONNX files too.
Per-person latency: ONNX Runtime, ``--threads`` threads, batch 1, median over
``--latency-crops`` real crops after warm-up. MediaPipe BlazePose (``--teacher``) runs on
the same boxes (its worker crops a square of 1.25x the box, like our crops) and reports
the time of its own ``process`` call. Writes ``results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgepose.data.real_sets import coco_val, lsp_test  # noqa: E402
from edgepose.evaluate import LSP_LIMBS, coco_keypoint_ap, torso_pck_hits  # noqa: E402
from edgepose.skeleton import COCO_JOINTS  # noqa: E402

LIMBS = list(LSP_LIMBS)


# ----------------------------------------------------------------------------- predictors


class OnnxPredictor:
    """An exported model through edgepose's Python API (ONNX Runtime): person boxes ->
    (N, 17, 2) image px, (N, 17) scores, the crops batched across images."""

    def __init__(self, path: Path, threads: int, info_px: int = 0):
        from edgepose.app.api import load

        self.model = load(path, device="cpu", threads=threads)
        self.backend, self.meta = self.model.backend, self.model.meta
        self.info_px = info_px

    def degrade(self, img: np.ndarray, box) -> np.ndarray:
        """The image with only ``info_px`` pixels across the person's crop (1.25x the box's
        longer side): down with INTER_AREA, back up bilinearly (the model still sees its
        own input size)."""
        f = min(1.0, self.info_px / (1.25 * max(box[2], box[3])))
        h, w = img.shape[:2]
        small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))),
                           interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

    def __call__(self, people, batch: int = 16):
        cache: dict[Path, np.ndarray] = {}
        images = [cache.setdefault(p.image, cv2.imread(str(p.image))) for p in people]
        if self.info_px:
            images = [self.degrade(img, p.box) for img, p in zip(images, people)]
        poses = self.model.predict_many(images, [[p.box] for p in people], batch=batch)
        return (np.stack([ps[0].keypoints for ps in poses]),
                np.stack([ps[0].scores for ps in poses]))

    def latency(self, people, n: int) -> float:
        from edgepose.preprocess import preprocess

        xs = [preprocess(cv2.imread(str(p.image)), p.box, self.meta)[0][None]
              for p in people[:n]]
        from edgepose.engines.timing import latency_stats, time_each

        for x in xs[:5]:  # warm-up, untimed
            self.backend(x)
        crops = iter(xs)  # each timed call on the next real crop (engines/timing)
        return latency_stats(time_each(lambda: self.backend(next(crops)), len(xs)))["median"]


class TeacherPredictor:
    """MediaPipe BlazePose in its own venv (edgepose.engines.teacher), on the same boxes."""

    def __init__(self, name: str):
        from edgepose.engines.teacher import Teacher

        self.teacher = Teacher(name).__enter__()
        self.ms: list[float] = []

    def __call__(self, people, batch: int = 0):
        from edgepose.engines.teacher import to_coco17

        coords, scores = [], []
        for p in people:
            lm = self.teacher.landmarks(p.image, p.box)
            if self.teacher.last_ms is not None:
                self.ms.append(self.teacher.last_ms)
            if lm is None:  # no person found: every joint is a miss
                coords.append(np.full((17, 2), np.nan))
                scores.append(np.zeros(17))
                continue
            kps, conf = to_coco17(lm, threshold=0.0)
            coords.append(kps[:, :2])
            scores.append(conf)
        return np.stack(coords), np.stack(scores)

    def latency(self, people, n: int) -> float:
        return statistics.median(self.ms[-n:]) if self.ms else float("nan")

    def close(self):
        self.teacher.__exit__(None, None, None)


# ----------------------------------------------------------------------------- metrics


def lsp_metrics(people, coords) -> dict:
    gt = np.stack([p.keypoints for p in people])
    hits, counts = torso_pck_hits(coords, gt, 0.2)
    hits1, counts1 = torso_pck_hits(coords, gt, 0.1)
    hits05, counts05 = torso_pck_hits(coords, gt, 0.05)
    per = {COCO_JOINTS[j]: float(hits[j] / counts[j]) for j in LIMBS if counts[j]}
    return {"pck@0.2_torso": float(hits[LIMBS].sum() / counts[LIMBS].sum()),
            "pck@0.1_torso": float(hits1[LIMBS].sum() / counts1[LIMBS].sum()),
            "pck@0.05_torso": float(hits05[LIMBS].sum() / counts05[LIMBS].sum()),
            "per_joint": per, "people": len(people)}


def coco_metrics(people, coords, scores, gt: dict) -> dict:
    hits = hits05 = counts = 0
    results = []
    for p, c, s in zip(people, coords, scores):
        lab = p.keypoints[:, 2] > 0
        err = np.nan_to_num(np.linalg.norm(c - p.keypoints[:, :2], axis=1), nan=np.inf)
        hits += int(((err <= 0.1 * max(p.box[2], p.box[3])) & lab).sum())
        hits05 += int(((err <= 0.05 * max(p.box[2], p.box[3])) & lab).sum())
        counts += int(lab.sum())
        if np.isfinite(c).all():
            kp = np.concatenate([c, s[:, None]], axis=1).reshape(-1)
            results.append({"image_id": p.image_id, "category_id": 1,
                            "keypoints": [float(v) for v in kp], "score": float(np.mean(s))})
    with tempfile.TemporaryDirectory() as tmp:
        ann = Path(tmp) / "gt.json"
        ann.write_text(json.dumps(gt))
        ids = sorted({p.image_id for p in people})
        ap = coco_keypoint_ap(ann, results, image_ids=ids)["AP"] if results else 0.0
    return {"pck@0.1_box": hits / max(counts, 1), "pck@0.05_box": hits05 / max(counts, 1),
            "oks_ap": ap, "people": len(people)}


# ----------------------------------------------------------------------------- models


def prepare_model(spec: str, tmp: Path) -> tuple[str, Path, dict]:
    """``LABEL=PATH[@decoder][%INFO_PX]`` -> (label, ONNX path, complexity info)."""
    import onnx

    label, _, rest = spec.partition("=")
    rest, _, info_px = rest.partition("%")
    path, _, decoder = rest.partition("@")
    path = Path(path).expanduser()
    info: dict = {}
    if path.suffix in (".pt", ".pth"):
        import dataclasses

        from edgepose.checkpoint import load_checkpoint
        from edgepose.engines.export import ExportOptions, export_checkpoint, parse_decoder_spec
        from edgepose.models import build_model
        from edgepose.models.complexity import measure

        # 0.01 px: an untrained start (flat DSNT maps on random inputs) is as sensitive to
        # float order as it gets; the export default (0.001) is for shipped models
        opts = ExportOptions(decoder=parse_decoder_spec(decoder) if decoder else {}, tol_px=0.01)
        onnx_path = tmp / f"{label}.onnx"
        export_checkpoint(path, onnx_path, opts, progress=False)
        payload = load_checkpoint(path)
        meta = dataclasses.replace(payload["meta"],
                                   decoder={**payload["meta"].decoder, **opts.decoder})
        model = build_model(meta)
        model.load_state_dict(payload["model"])
        c = measure(model.eval(), meta.input_size)
        info = {"params_m": c.params / 1e6, "gflops": c.gflops,
                "head_mmacs": (c.head_gflops or 0.0) / 2 * 1e3}
        path = onnx_path
    else:
        from edgepose.engines.meta_io import read_meta
        from edgepose.models import build_model
        from edgepose.models.complexity import measure

        g = onnx.load(str(path)).graph
        # weights of every precision; a Q/DQ file's scales and zero points are tiny extras
        info = {"params_m": sum(int(np.prod(t.dims)) for t in g.initializer) / 1e6}
        meta = read_meta(path)  # the architecture's FLOPs (weights do not matter)
        c = measure(build_model(meta).eval(), meta.input_size)
        info["gflops"] = c.gflops
        info["head_mmacs"] = (c.head_gflops or 0.0) / 2 * 1e3
    info["info_px"] = int(info_px or 0)
    return label, path, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=PATH[@DECODER]")
    ap.add_argument("--teacher", action="append", default=[], choices=("full", "heavy"),
                    help="MediaPipe BlazePose rows (its own venv); MoveNet rows are plain "
                         "--model LABEL=~/.cache/edgepose/movenet/movenet_thunder.onnx, "
                         "with %%64 for a 64-px-information crop")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--latency-crops", type=int, default=60)
    ap.add_argument("--limit", type=int, default=0, help="first N people per set (smoke runs)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "real_accuracy")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    lsp = lsp_test(args.shared, args.limit)
    coco, gt = coco_val(args.shared, args.limit)
    print(f"LSP test: {len(lsp)} people; COCO val subsets: {len(coco)} people", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        todo = [("model", s) for s in args.model] + [("teacher", t) for t in args.teacher]
        for kind, spec in todo:
            if kind == "model":
                label, path, info = prepare_model(spec, Path(tmp))
                if not info.get("info_px"):  # which file: the model card finds shipped rows
                    import hashlib

                    info["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                pred = OnnxPredictor(path, args.threads, info.get("info_px", 0))
                size = "x".join(map(str, pred.meta.input_size))
                if info.get("info_px"):
                    size += f" ({info['info_px']} px info)"
                info.update(head=pred.meta.head, backbone=pred.meta.backbone,
                            decoder=pred.meta.decoder.get("mode", ""))
            else:
                label, pred, size = f"MediaPipe BlazePose {spec}", TeacherPredictor(spec), "256x256"
                info = {"head": "BlazePose (reference)"}
            t0 = time.perf_counter()
            lc, _ = pred(lsp)
            cc, cs = pred(coco)
            row = {"label": label, "input": size, **info,
                   "lsp": lsp_metrics(lsp, lc), "coco": coco_metrics(coco, cc, cs, gt),
                   "ms_per_person": pred.latency(coco + lsp, args.latency_crops),
                   "eval_s": time.perf_counter() - t0}
            if kind == "teacher":
                pred.close()
            rows.append(row)
            print(f"{label}: LSP PCK@0.2 {row['lsp']['pck@0.2_torso']:.3f}  "
                  f"@0.1 {row['lsp']['pck@0.1_torso']:.3f}  COCO AP "
                  f"{row['coco']['oks_ap']:.3f}  PCK@0.1 {row['coco']['pck@0.1_box']:.3f}  "
                  f"@0.05 {row['coco']['pck@0.05_box']:.3f}  "
                  f"{row['ms_per_person']:.2f} ms/person", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores"
    result = {"machine": machine, "threads": args.threads, "lsp_people": len(lsp),
              "coco_people": len(coco), "rows": rows}
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    lines = [f"Real people, ground-truth boxes; LSP test {r['lsp_people']} people, COCO val "
             f"subsets {r['coco_people']} people; ONNX Runtime {r['threads']} thread(s), batch 1; "
             f"{r['machine']}.", "",
             "| model | input | params (M) | GFLOPs | head + decoder MMACs | ms / person | "
             "LSP PCK@0.2 (torso) | LSP PCK@0.1 | COCO OKS AP | COCO PCK@0.1 | COCO PCK@0.05 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        p = f"{row['params_m']:.2f}" if "params_m" in row else "-"
        g = f"{row['gflops']:.3f}" if "gflops" in row else "-"
        hm = f"{row['head_mmacs']:.1f}" if "head_mmacs" in row else "-"
        lines.append(f"| {row['label']} | {row['input']} | {p} | {g} | {hm} | "
                     f"{row['ms_per_person']:.2f} | {row['lsp']['pck@0.2_torso']:.3f} | "
                     f"{row['lsp'].get('pck@0.1_torso', float('nan')):.3f} | "
                     f"{row['coco']['oks_ap']:.3f} | {row['coco']['pck@0.1_box']:.3f} | "
                     f"{row['coco'].get('pck@0.05_box', float('nan')):.3f} |")
    names = [COCO_JOINTS[j] for j in LIMBS]
    lines += ["", "LSP test PCK@0.2 per joint:", "",
              "| model | " + " | ".join(n.replace("_", " ") for n in names) + " |",
              "|---|" + "---|" * len(names)]
    for row in r["rows"]:
        per = row["lsp"]["per_joint"]
        lines.append(f"| {row['label']} | " + " | ".join(f"{per.get(n, float('nan')):.2f}"
                                                       for n in names) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
