"""``edgepose convert``: LSP / LSPe keypoint labels -> a COCO person-keypoint JSON."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "convert",
        help="convert LSP / LSP Extended labels to a COCO keypoint JSON",
        description=(
            "Write a standard COCO person_keypoints JSON from Leeds Sports Pose (lsp) or LSP "
            "Extended (lspet): 17 COCO joints (the 12 limb joints; nose, eyes and ears "
            "unlabelled, v=0), LSP's occluded flag -> v=1, visible -> v=2, LSPe's missing "
            "joints -> v=0, a bbox around the labelled joints, image sizes read from the "
            "files and the Flickr licence/attribution LSP's JPEGs carry. Coordinates move "
            "from MATLAB's 1-based pixels to edgepose's (pixel centres on 0..W-1)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("kind", choices=("lsp", "lspet"), help="which dataset DIR holds")
    p.add_argument("dir", metavar="DIR", help="dataset folder with joints.mat and images/")
    p.add_argument("--split", default="all", choices=("train", "test", "all"),
                   help="LSP only: im0001-1000 = train, im1001-2000 = test (never train on it)")
    p.add_argument("--out", required=True, metavar="FILE.json", help="output JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args) -> int:
    import json

    from edgepose.data.lsp import convert
    from edgepose.errors import DataError
    from edgepose.fileio import atomic_write_bytes

    if args.kind == "lspet" and args.split != "all":
        raise DataError("--split is for LSP; LSP Extended is training data only (omit --split)")
    data = convert(args.dir, args.kind, args.split, progress=not args.no_progress)
    text = json.dumps(data, separators=(",", ":")).encode()
    atomic_write_bytes(args.out, lambda f: f.write(text))
    labelled = sum(a["num_keypoints"] for a in data["annotations"])
    print(f"wrote {args.out}: {len(data['images'])} images, {len(data['annotations'])} people, "
          f"{labelled} labelled joints")
    return 0
