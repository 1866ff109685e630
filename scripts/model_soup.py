"""Average the weights of several trainings of one recipe into one checkpoint (a uniform
model soup), then export it like any checkpoint.

    python scripts/model_soup.py --out soup.pt RUN_SEED0/best.pt RUN_SEED1/best.pt ...
    edgepose export soup.pt --out model.onnx

The trainings must be of one network started from the same weights (the configs here start
from MoveNet's trunk and head: seeds of one config qualify); the shipped dsnt-64 is the soup
of configs/real_movenet_dsnt_64_soft.yaml trained with seeds 0-3 (scripts/make_real_model.sh).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    from edgepose.checkpoint import soup_checkpoints
    from edgepose.errors import EdgeposeError

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", type=Path, help="best.pt / last.pt of each run")
    ap.add_argument("--out", type=Path, required=True, help="the soup's checkpoint (.pt)")
    args = ap.parse_args(argv)
    try:
        info = soup_checkpoints(args.checkpoints, args.out)
    except EdgeposeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: the mean of {info['ingredients']} checkpoints "
          f"({info['tensors']} tensors)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
