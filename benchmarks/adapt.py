"""``edgepose adapt`` on real footage: agreement with the teacher before / after, forgetting.

    python benchmarks/adapt.py [--vtest /usr/share/doc/opencv-doc/examples/data/vtest.avi]
                               [--shared ../shared/data] [--epochs 10] [--threads 1]

Clips (real, never trained on by the base models):

* ``vtest``: OpenCV's sample video vtest.avi (Debian ``opencv-doc``; 795 frames, 10 FPS,
  768x576, a fixed camera over a hall with people walking) — the adapt use case.
* ``coco-val-seq``: an image sequence of the COCO val subsets' photos with people
  (coco-mini + tiny-coco val2017, sorted by file name): many scenes, one photo domain.

Models: the bundled 128x128 and 64x64 real models (their .onnx is the "before"; the .pt
beside each is fine-tuned), or ``--model-128`` / ``--model-64`` (a training checkpoint is
exported for the "before"). For each (clip, model) one ``adapt`` run with the defaults
(scene-change sampling, last 20 % of each clip held out in time, replay of the base
recipe's real training sources at ratio 1), reporting held-out agreement with the teacher
(PCK@0.05/0.1 of the box), LSP test PCK@0.2 (torso, all 1000 people) before and after,
CPU minutes, and batch-1 latency. Goal (issue 15): close >= half of the student-teacher
gap on the held-out frames, lose <= 2 points on LSP test.
Writes benchmarks/results/adapt/results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgepose.app.adapting.job import adapt  # noqa: E402
from edgepose.app.adapting.options import AdaptOptions  # noqa: E402
from edgepose.data.footage import SamplingOptions  # noqa: E402
from edgepose.bundled import ASSETS  # noqa: E402

# the base recipe's own augmentation (what adapt used before ADAPT_AUG became its default)
RECIPE_AUG = {"scale": 0.5, "rotation": 30.0, "half_body_prob": 0.15, "occluder_prob": 0.1}
# light augmentation: now adapt's default (edgepose.app.adapting.options.ADAPT_AUG)
LIGHT_AUG = {"scale": 0.25, "rotation": 15.0, "half_body_prob": 0.0, "occluder_prob": 0.0}
VARIANTS = {"default": {}, "freeze-bn": {"freeze_bn": True}, "replay2": {"replay_ratio": 2.0},
            "replay0.5": {"replay_ratio": 0.5}, "lr5e-4": {"lr": 5e-4},
            "lr5e-4-freeze-bn": {"lr": 5e-4, "freeze_bn": True}, "light-aug": {"aug": LIGHT_AUG},
            "dense-sampling": {"sampling": SamplingOptions(min_gap=2)},
            "recipe-aug-gap5": {"aug": RECIPE_AUG, "sampling": SamplingOptions(min_gap=5)},
            "footage-only": {"replay_ratio": 0.0}}
MODELS = {"128x128": ASSETS / "real_heatmap_128.onnx", "64x64": ASSETS / "real_heatmap_64.onnx"}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the teacher worker)."""
    import resource

    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + c.ru_utime + c.ru_stime


def coco_sequence(shared: Path, dest: Path) -> Path:
    """Copy the COCO val subsets' photos that have a labelled person into one folder."""
    dest.mkdir(parents=True, exist_ok=True)
    for sub in ("coco-mini", "tiny-coco"):
        d = json.loads((shared / sub / "annotations" / "person_keypoints_val2017.json")
                       .read_text())
        with_people = {a["image_id"] for a in d["annotations"] if a.get("num_keypoints", 0)}
        for im in d["images"]:
            if im["id"] in with_people and not (dest / im["file_name"]).exists():
                shutil.copyfile(shared / sub / "val2017" / im["file_name"],
                                dest / im["file_name"])
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vtest", type=Path,
                    default=Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi"))
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "adapt_bench")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "adapt")
    ap.add_argument("--model-128", type=Path, default=MODELS["128x128"],
                    help="the 128x128 model to adapt (.pt, or .onnx with its .pt beside it)")
    ap.add_argument("--model-64", type=Path, default=MODELS["64x64"])
    ap.add_argument("--only", default="", help="comma list of clip:model to run, e.g. vtest:64x64")
    ap.add_argument("--variants", default="default",
                    help=f"comma list of settings to compare: {', '.join(VARIANTS)}")
    args = ap.parse_args()
    if not args.vtest.is_file():
        raise SystemExit(f"{args.vtest}: not found; apt-get download opencv-doc, extract it "
                         "with dpkg-deb -x and pass --vtest .../examples/data/vtest.avi")
    MODELS.update({"128x128": args.model_128, "64x64": args.model_64})
    clips = {"vtest": args.vtest,
             "coco-val-seq": coco_sequence(args.shared, args.work / "coco_val_seq")}
    rows = []
    for clip, footage, size, model, variant in [
            (c, f, s, m, v) for c, f in clips.items() for s, m in MODELS.items()
            for v in args.variants.split(",")]:
        if args.only and f"{clip}:{size}" not in args.only.split(","):
            continue
        out = args.work / f"{clip}_{size}_{variant}" / "adapted.onnx"
        t0, c0 = time.perf_counter(), cpu_seconds()
        r = adapt(AdaptOptions(footage=[str(footage)], out=str(out), model=str(model),
                               epochs=args.epochs, threads=args.threads, fresh=True,
                               progress=False, **VARIANTS[variant]))
        b, a = r["before"], r["after"]
        gap = 1 - b["teacher_agreement"]["pck@0.1"]
        rows.append({
            "clip": clip, "model": size, "variant": variant, "frames": r["frames"],
            "train_people": r["train_people"], "holdout_people": r["holdout_people"],
            "agree05_before": b["teacher_agreement"]["pck@0.05"],
            "agree05_after": a["teacher_agreement"]["pck@0.05"],
            "agree10_before": b["teacher_agreement"]["pck@0.1"],
            "agree10_after": a["teacher_agreement"]["pck@0.1"],
            "gap_closed": (a["teacher_agreement"]["pck@0.1"]
                           - b["teacher_agreement"]["pck@0.1"]) / gap if gap else None,
            "fit10_before": b.get("train_agreement", {}).get("pck@0.1"),
            "fit10_after": a.get("train_agreement", {}).get("pck@0.1"),
            "lsp_before": b.get("check_pck@0.2_torso"),
            "lsp_after": a.get("check_pck@0.2_torso"),
            "ms_before": b["latency_ms"], "ms_after": a["latency_ms"],
            "label_min": r["label_s"] / 60, "train_min": r["train_s"] / 60,
            "wall_min": (time.perf_counter() - t0) / 60,
            "cpu_min": (cpu_seconds() - c0) / 60,  # ours + the teacher worker's
        })
        print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.processor() or platform.machine()}, {args.threads} thread(s)"
    (args.out / "results.json").write_text(json.dumps(
        {"machine": machine, "epochs": args.epochs, "rows": rows}, indent=1))
    (args.out / "results.md").write_text(to_markdown(rows, args.epochs))
    print(to_markdown(rows, args.epochs))


def to_markdown(rows, epochs: int) -> str:
    def pct(v):
        return "–" if v is None else f"{100 * v:.1f}"

    lines = [f"`edgepose adapt`, {epochs} epochs, defaults otherwise. Agreement = PCK of the "
             "model against the teacher on held-out people (box's longer side); LSP = "
             "PCK@0.2 (torso) on LSP test, 1000 people.", "",
             "| clip | model | settings | frames | people train / held out | agreement @0.05 before → after "
             "| @0.1 before → after | gap closed | training frames @0.1 before → after | LSP before → after | label + train min "
             "| ms/person before / after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['clip']} | {r['model']} | {r.get('variant', 'default')} | {r['frames']} | {r['train_people']} / "
            f"{r['holdout_people']} | {pct(r['agree05_before'])} → {pct(r['agree05_after'])} "
            f"| {pct(r['agree10_before'])} → {pct(r['agree10_after'])} | "
            f"{pct(r['gap_closed'])} % | {pct(r.get('fit10_before'))} → "
            f"{pct(r.get('fit10_after'))} | {pct(r['lsp_before'])} → {pct(r['lsp_after'])} | "
            f"{r['label_min']:.1f} + {r['train_min']:.1f} | {r['ms_before']:.2f} / "
            f"{r['ms_after']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
