"""``edgepose export``: checkpoint -> ONNX (decoding in the graph), verified against PyTorch."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX (decoding inside the graph) and check parity",
        description=(
            "Export a checkpoint to ONNX with input 'image' (B,3,H,W float32) and outputs "
            "'coords' (B,K,2, input pixels) and 'scores' (B,K). The model metadata goes into "
            "the ONNX metadata_props; the file is only written when onnx.checker and an ONNX "
            "Runtime vs PyTorch parity check (random inputs and synthetic images) pass. "
            "Given an .onnx file with --check-trt, only the TensorRT compatibility report "
            "is printed."
        ),
    )
    p.add_argument("checkpoint", help="checkpoint (.pt) to export, or an .onnx with --check-trt "
                   "or --triton-repo (or an .engine with --triton-repo)")
    p.add_argument("--out", "-o", help="output .onnx path (default: checkpoint name + .onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17; default 17)")
    p.add_argument("--static-batch", type=int, default=None, metavar="N",
                   help="fix the batch size to N (default: dynamic batch)")
    p.add_argument("--decoder", default=None, metavar="SPEC",
                   help="override the decoder, e.g. 'dense:64' or 'progressive:32,4,2,1' "
                        "(NerPE: coarse grid, refinement r, overlap, steps)")
    p.add_argument("--simplify", action="store_true",
                   help="simplify the graph with onnxslim, then re-check parity")
    p.add_argument("--check-trt", action="store_true",
                   help="also print which ops TensorRT's ONNX parser supports (CPU-only check)")
    p.add_argument("--tol-px", type=float, default=1e-3,
                   help="max coords difference ONNX Runtime vs PyTorch in pixels (default 1e-3)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t = p.add_argument_group("Triton model repository (a stock Triton server serves it "
                             "without edgepose; clients: edgepose run --server URL)")
    t.add_argument("--triton-repo", metavar="DIR",
                   help="also write DIR/edgepose_pose/{config.pbtxt,1/model.onnx} (from a "
                        "checkpoint or .onnx) or 1/model.plan (from a TensorRT .engine)")
    t.add_argument("--max-batch", type=int, default=16, metavar="N",
                   help="Triton's largest dynamic batch (default 16)")
    t.add_argument("--max-delay-us", type=int, default=2000, metavar="US",
                   help="how long a request waits for others to join it (default 2000)")
    t.add_argument("--instances", type=int, default=1, metavar="N",
                   help="model instances (default 1)")
    t.add_argument("--instance-kind", choices=["cpu", "gpu"], default=None,
                   help="default: cpu for ONNX, gpu for an engine")
    return p


def write_triton_repo(args, model) -> None:
    from edgepose.engines.triton_repo import schema_available, write_repository

    kind = {"cpu": "KIND_CPU", "gpu": "KIND_GPU", None: None}[args.instance_kind]
    folder = write_repository(model, args.triton_repo, args.max_batch, args.max_delay_us,
                              args.instances, kind)
    checked = "checked against Triton's ModelConfig schema" if schema_available() else \
        "not checked: pip install 'edgepose[serve]' for Triton's schema"
    print(f"wrote the Triton model repository {folder} (config.pbtxt {checked}); serve it "
          f"with: tritonserver --model-repository {args.triton_repo}")


def run(args) -> int:
    from pathlib import Path

    from edgepose.engines import trt_compat

    src = Path(args.checkpoint)
    if args.triton_repo and src.suffix.lower() in (".onnx", ".engine", ".plan"):
        write_triton_repo(args, src)
        if not args.check_trt:
            return 0
    if src.suffix.lower() == ".onnx":
        if not args.check_trt:
            from edgepose.errors import EngineError

            raise EngineError(f"{src} is already ONNX; pass a checkpoint, or add --check-trt "
                              "to check it for TensorRT")
        report = trt_compat.check_onnx_file(src)
        print(report.format())
        return 0 if report.ok else 1

    from edgepose.engines.export import ExportOptions, export_checkpoint, parse_decoder_spec

    opts = ExportOptions(
        opset=args.opset, static_batch=args.static_batch, simplify=args.simplify,
        decoder=parse_decoder_spec(args.decoder) if args.decoder else None, tol_px=args.tol_px,
    )
    out = Path(args.out) if args.out else src.with_suffix(".onnx")
    rep = export_checkpoint(src, out, opts, progress=not args.no_progress)
    print(f"wrote {rep.path} ({rep.meta.name}, {rep.nodes} nodes"
          f"{', simplified' if rep.simplified else ''})")
    for r in rep.parity:
        print(f"  parity vs PyTorch on {r.inputs}: max coords diff {r.max_coord_px:.2e} px, "
              f"max scores diff {r.max_score:.2e}")
    if args.triton_repo:
        write_triton_repo(args, out)
    if args.check_trt:
        report = trt_compat.check_onnx_file(out)
        print(report.format())
        return 0 if report.ok else 1
    return 0
