"""``edgepose nerpe-map``: render a NerPE model's continuous heatmap at any resolution
(``edgepose heatmap``, its name before issue 31, is still accepted)."""

from __future__ import annotations

import argparse

HELP = """\
Render the continuous heatmap of one joint (or of all joints, max-projected) that a NerPE
model predicts for a person in an image, at any resolution, overlaid on the person crop,
and save it as a PNG. Because NerPE's head is a function of the query position, the map
is computed directly at --res (e.g. 256 or 1024) from one backbone pass - no upsampling.
Example:
  edgepose nerpe-map runs/nerpe/best.pt person.jpg --joint left_wrist --res 256 --out heat.png
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    # "heatmap" was its name until issue 31; it read as the heatmap head's command
    p = subparsers.add_parser("nerpe-map", aliases=["heatmap"],
                              help="render a NerPE model's heatmap at any resolution",
                              description=HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", help="NerPE checkpoint (.pt)")
    p.add_argument("image", metavar="IMAGE", help="image file (anything OpenCV reads)")
    p.add_argument("--joint", default="all",
                   help="joint name (e.g. left_wrist) or index; 'all' = max over joints "
                        "(default all)")
    p.add_argument("--res", type=int, default=256,
                   help="heatmap height in pixels; width follows the model's aspect (256)")
    p.add_argument("--box", type=float, nargs=4, metavar=("X", "Y", "W", "H"),
                   help="person box in image pixels (default: the whole image)")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="heatmap opacity over the crop, 0 to 1 (default 0.5)")
    p.add_argument("--out", default="heatmap.png", help="output PNG (default heatmap.png)")
    p.add_argument("--npy", help="also save the raw float heatmap as a .npy file")
    return p


def run(args) -> int:
    from pathlib import Path

    import cv2
    import numpy as np

    from edgepose.checkpoint import load_model
    from edgepose.coords import CROP_PADDING, whole_image_box
    from edgepose.errors import DataError
    from edgepose.nerpe_maps import crop_at, overlay, render_heatmap

    if not Path(args.image).is_file():
        raise DataError(f"{args.image}: image not found")
    image = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{args.image}: OpenCV cannot read this image; use a PNG or JPEG file")
    if args.res < 1 or args.res > 4096:
        raise DataError(f"--res {args.res} is out of range; use 1 to 4096")
    if args.box is not None and (args.box[2] <= 0 or args.box[3] <= 0):
        raise DataError(f"--box {args.box}: width and height must be positive")
    if args.box is not None:
        x, y, w, h = args.box
        if x >= image.shape[1] or y >= image.shape[0] or x + w <= 0 or y + h <= 0:
            raise DataError(f"--box {args.box} lies entirely outside the {image.shape[1]}x"
                            f"{image.shape[0]} image; give X Y W H in image pixels")
    if not 0.0 <= args.alpha <= 1.0:
        raise DataError(f"--alpha {args.alpha}: use an opacity between 0 and 1")
    out = Path(args.out)
    from edgepose.data.files import is_image_file

    if not is_image_file(out):
        raise DataError(f"--out {out}: give an image file name with its suffix, e.g. "
                        f"{out.with_suffix('.png') if out.suffix else str(out) + '.png'}")
    model, meta = load_model(args.checkpoint)
    box, padding = (args.box, CROP_PADDING) if args.box is not None \
        else whole_image_box(image.shape[1], image.shape[0])
    heat = render_heatmap(model, image, box, args.joint, args.res, padding)
    crop = crop_at(image, box, meta.input_size, heat.shape, padding)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), overlay(crop, heat, args.alpha)):
        raise DataError(f"{out}: could not write the PNG; check the folder and the .png suffix")
    if args.npy:
        np.save(args.npy, heat)
    py, px = np.unravel_index(int(np.argmax(heat)), heat.shape)
    print(f"wrote {out} ({heat.shape[1]}x{heat.shape[0]}, joint {args.joint}); "
          f"peak {heat.max():.3f} at heatmap pixel ({px}, {py})")
    return 0
