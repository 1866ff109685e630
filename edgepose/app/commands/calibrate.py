"""``edgepose calibrate``: FP32 ONNX -> symmetric Q/DQ INT8 ONNX, with an FP32-vs-INT8 report."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "calibrate",
        help="quantize an ONNX model to INT8 (Q/DQ) from calibration images",
        description=(
            "Calibrate activation ranges on real images passed through the model's own "
            "preprocessing and write a symmetric, per-channel INT8 Q/DQ ONNX. It runs INT8 "
            "on the CPU in ONNX Runtime and is what TensorRT 10/11 builds INT8 engines from "
            "('edgepose build model.int8.onnx'). The head's decoder stays float. With "
            "--eval-data, FP32 and INT8 are compared on a held-out set (PCK, mean error, "
            "batch-1 latency)."
        ),
    )
    p.add_argument("model", help="FP32 ONNX written by 'edgepose export'")
    p.add_argument("--data", required=True,
                   help="calibration images: a folder of images, a video file, or a COCO "
                        "keypoint .json (person crops from its boxes)")
    p.add_argument("--data-images", default=None,
                   help="image folder of a COCO --data file (default: found next to it)")
    p.add_argument("--out", default=None, help="INT8 ONNX to write (default: MODEL.int8.onnx)")
    p.add_argument("--method", choices=("minmax", "entropy", "percentile"),
                   default="minmax", help="activation range estimate (default: %(default)s)")
    p.add_argument("--percentile", type=float, default=99.999,
                   help="kept share of |activation| values for --method percentile "
                        "(default: %(default)s)")
    p.add_argument("--target", choices=("tensorrt", "cpu"), default="tensorrt",
                   help="tensorrt: symmetric int8 activations (zero-point 0), the file "
                        "TensorRT 10/11 builds INT8 from; it also runs on ONNX Runtime CPU. "
                        "cpu: asymmetric uint8 activations, which ONNX Runtime's x86 "
                        "kernels run faster, but TensorRT cannot use (default: %(default)s)")
    p.add_argument("--count", type=int, default=256,
                   help="calibration samples to use (default: %(default)s)")
    p.add_argument("--batch", type=int, default=8,
                   help="calibration batch size (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the sample selection (default: %(default)s)")
    p.add_argument("--quantize-neck", action="store_true",
                   help="also quantize the head's upsampling neck / grid adapter (so "
                        "TensorRT may run it in INT8; ONNX Runtime CPU has no INT8 "
                        "ConvTranspose, so there it only adds error); the head's last conv "
                        "and decoder stay float")
    p.add_argument("--quantize-head", action="store_true",
                   help="quantize the whole head too (not recommended: the decoder's "
                        "softmax / expectation loses accuracy in INT8)")
    p.add_argument("--eval-data", default=None,
                   help="held-out COCO keypoint .json to compare FP32 vs INT8 on")
    p.add_argument("--eval-images", default=None, help="image folder of --eval-data")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the comparison (default: all cores, at most 8)")
    p.add_argument("--runs", type=int, default=50,
                   help="timed batch-1 calls per model (default: %(default)s)")
    p.add_argument("--report", default=None, help="write the comparison as JSON here")
    p.add_argument("--no-compare", action="store_true", help="skip the FP32 vs INT8 comparison")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--quiet", dest="no_progress", action="store_true",
                   help=argparse.SUPPRESS)  # the old name, kept working
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import dataclasses

    from edgepose.calibration.qdq import quantize_qdq, target_config
    from edgepose.calibration.int8_report import ReportConfig, compare, format_report, save_json
    from edgepose.calibration.stream import CalibrationStream, StreamConfig
    from edgepose.engines.meta_io import read_meta

    from edgepose.errors import CalibrationError

    model = Path(args.model)
    if model.suffix.lower() != ".onnx":
        raise CalibrationError(f"{model}: calibrate takes an exported .onnx model; export a "
                               f"checkpoint first: edgepose export {model} --out model.onnx")
    out = Path(args.out) if args.out else model.with_suffix(".int8.onnx")
    meta = read_meta(model)
    base = target_config(args.target, args.method)
    qcfg = dataclasses.replace(base, percentile=args.percentile,
                               exclude_head=not args.quantize_head,
                               quantize_neck=args.quantize_neck)  # validated before the work
    stream = CalibrationStream(
        args.data, meta,
        StreamConfig(count=args.count, batch=args.batch, seed=args.seed,
                     progress=not args.no_progress),
        image_root=args.data_images,
    )
    summary = quantize_qdq(model, out, stream, meta, qcfg)
    print(f"wrote {out}: INT8 Q/DQ for {args.target} ({args.method}, {len(stream)} samples "
          f"from {args.data}, "
          f"{summary['quantize_linear_nodes']} quantizers, {len(summary['excluded_nodes'])} "
          "head nodes kept float)")
    if stream.skipped:
        print(f"skipped {len(stream.skipped)} unreadable file(s): {', '.join(stream.skipped[:5])}")
    if args.no_compare:
        return 0
    rcfg = ReportConfig(device="cpu", threads=args.threads, runs=args.runs,
                        progress=not args.no_progress)
    report = compare(model, out, rcfg, args.eval_data, args.eval_images)
    report["calibration"] = {"data": str(args.data), "count": len(stream), "seed": args.seed,
                             "method": args.method, "batch": args.batch,
                             "target": args.target}
    print(format_report(report))
    if args.report:
        save_json(report, args.report)
        print(f"wrote {args.report}")
    return 0
