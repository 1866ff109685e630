#!/usr/bin/env python
"""Precompute the teacher's keypoint heatmaps for a COCO keypoint file (dense teacher targets).

    python scripts/teacher_maps.py data/real/lsp_train_mn.json ../shared/data/lsp/images \\
        ~/.cache/edgepose/teacher_maps/lsp_train_mn.maps

Name the folder in a training source (``{ann: ..., images: ..., maps: FOLDER}``) and set
``head_cfg.soft_weight`` to train on the teacher's maps beside the labels (issue 29 item 3).
A cut-short run continues where it stopped when started again with the same arguments.
"""

import argparse
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("ann", help="COCO person_keypoints JSON (17 joints)")
    p.add_argument("images", help="folder its file_name entries are relative to")
    p.add_argument("out", help="store folder to write (NAME.maps)")
    p.add_argument("--teacher", default="movenet_thunder",
                   choices=["movenet_thunder", "movenet_lightning"],
                   help="imported MoveNet (edgepose weights import movenet-thunder)")
    p.add_argument("--batch", type=int, default=16, help="crops per teacher call (16)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    p.add_argument("--limit", type=int, default=0, help="first N people only (0 = all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    from edgepose.engines.teacher_maps import write_store
    from edgepose.errors import EdgeposeError

    try:
        out = write_store(a.ann, a.images, a.out, a.teacher, a.batch, a.threads,
                          not a.no_progress, a.limit)
    except EdgeposeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
