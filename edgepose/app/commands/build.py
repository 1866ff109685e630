"""``edgepose build``: ONNX -> TensorRT engine (needs an NVIDIA GPU and edgepose[trt])."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "build",
        help="build a TensorRT engine from an exported ONNX (on the target GPU)",
        description=(
            "Build a TensorRT engine (TensorRT 8.5 - 11) from an ONNX written by "
            "'edgepose export'. The engine file carries the model metadata in a header, and "
            "only runs on the TensorRT version and GPU it was built on. fp16 uses the builder "
            "flag on TensorRT 8.5-10.x and an FP16 ONNX (strongly typed) on 11.x. int8 needs "
            "either a Q/DQ ONNX from 'edgepose calibrate' or --calib-data: TensorRT 8.5-9.x "
            "then calibrates with an entropy calibrator (cached in --calib-cache), 10.x/11.x "
            "build from a Q/DQ ONNX made on the fly. Needs: pip install 'edgepose[trt]'."
        ),
    )
    p.add_argument("onnx", help="ONNX model from 'edgepose export'")
    p.add_argument("--out", "-o", help="engine path (default: ONNX name + .<precision>.engine)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32",
                   help="engine precision (default fp32)")
    p.add_argument("--workspace-mb", type=int, default=1024,
                   help="builder workspace limit in MiB (default 1024)")
    p.add_argument("--min-batch", type=int, default=1,
                   help="smallest batch the engine accepts (default 1)")
    p.add_argument("--opt-batch", type=int, default=1,
                   help="batch size TensorRT tunes for (default 1)")
    p.add_argument("--max-batch", type=int, default=4,
                   help="largest batch the engine accepts (default 4; people per model call)")
    p.add_argument("--timing-cache", default=None, metavar="PATH",
                   help="timing cache file, read before and updated after the build")
    p.add_argument("--calib-data", default=None, metavar="PATH",
                   help="int8 only: calibration images - a folder of images, a video file or "
                        "a COCO keypoint .json (person crops), passed through the model's own "
                        "preprocessing; not needed when ONNX is already a Q/DQ ONNX from "
                        "'edgepose calibrate'")
    p.add_argument("--calib-cache", default=None, metavar="PATH",
                   help="int8 with --calib-data on TensorRT 8.5-9.x: entropy calibration "
                        "cache, reused when it matches the model and data, else an error "
                        "(default: ONNX name + .calib)")
    p.add_argument("--verbose", action="store_true", help="verbose TensorRT log")
    p.add_argument("--no-progress", action="store_true", help="hide the progress display")
    return p


def run(args) -> int:
    from pathlib import Path

    from edgepose.calibration.trt_calibrator import check_calib_options, plan_int8
    from edgepose.engines.meta_io import read_meta
    from edgepose.engines.trt_build import BuildOptions, build_engine, import_tensorrt

    check_calib_options(args.precision.lower(), args.calib_data, args.calib_cache, False)
    src = Path(args.onnx)
    if not src.is_file():
        from edgepose.errors import EngineError

        raise EngineError(f"{src}: ONNX file not found")
    plan = None
    if args.calib_data:  # calibrate for this TensorRT version (needs it installed)
        trt = import_tensorrt()
        plan = plan_int8(src, trt.__version__, read_meta(src), calib_data=args.calib_data,
                         calib_cache=args.calib_cache, progress=not args.no_progress)
    try:
        opts = BuildOptions(
            precision=args.precision, workspace_mb=args.workspace_mb,
            min_batch=args.min_batch, opt_batch=args.opt_batch, max_batch=args.max_batch,
            timing_cache=args.timing_cache, int8=plan, verbose=args.verbose,
        )
        out = Path(args.out) if args.out else src.with_suffix(f".{opts.precision}.engine")
        info = build_engine(src, out, opts, progress=not args.no_progress)
    finally:
        if plan is not None:
            plan.close()
    route = f" ({info['int8_route']})" if "int8_route" in info else ""
    print(f"wrote {out} (TensorRT {info['tensorrt']} on {info['device']}, {opts.precision} "
          f"via {info['precision_path']}{route}, batch {info['batch_range'][0]}-"
          f"{info['batch_range'][1]})")
    return 0
