"""The README stays true: its squat-counter example runs as written, every command block
parses with the real CLI, and the runnable commands work pasted in order."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_squat_counter_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    example = next(b for b in blocks if "squats" in b and "def angle" in b)
    script = tmp_path / "squats.py"
    script.write_text(example)
    clip = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 240))
    for name in ("im1001.jpg", "im1004.jpg"):
        frame = cv2.resize(cv2.imread(str(ROOT / "tests" / "assets" / "lsp" / name)), (160, 240))
        for _ in range(5):
            w.write(frame)
    w.release()
    r = subprocess.run([sys.executable, str(script), str(clip)], capture_output=True,
                       text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.fullmatch(r"squats: \d+\n", r.stdout), r.stdout


# ----------------------------------------------------------------------------- command blocks

# Subcommands the chain below runs for real (at tiny sizes); the others need a camera, a
# GPU, TensorRT, the network, ../shared/data or minutes, and are only parsed.
RUNNABLE = {"synth", "train", "eval", "export", "heatmap", "predict", "calibrate", "demo"}
NOT_HERE = ("--device cuda", "coco_", "mpii_", "coco/")
# appended (argparse: the last value wins) or substituted to keep each command tiny
TINY = {"synth": ["--num", "16", "--val", "6", "--size", "96"],
        "train": ["--set", "max_steps_per_epoch=2", "--batch-size", "4", "--threads", "1"],
        "calibrate": ["--count", "16", "--runs", "3"]}


def readme_commands() -> list[list[str]]:
    """Every shell command of the README's ```bash blocks, continuation lines joined,
    comments dropped, split like a shell would."""
    import shlex

    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                out.append(words)
    return out


def edgepose_args(words: list[str]) -> list[str] | None:
    """The edgepose arguments of a command (also inside torchrun ... -m edgepose)."""
    if words[0] == "edgepose":
        return words[1:]
    if "-m" in words and words[words.index("-m") + 1:][:1] == ["edgepose"]:
        return words[words.index("-m") + 2:]
    return None


def test_every_readme_command_parses_and_names_real_files():
    from edgepose.app.cli import build_parser

    seen = 0
    for words in readme_commands():
        args = edgepose_args(words)
        if args is not None:
            try:
                build_parser().parse_args(args)
            except SystemExit as e:
                raise AssertionError(f"README command does not parse: {' '.join(words)}") from e
            seen += 1
            if "--config" in args:
                assert (ROOT / args[args.index("--config") + 1]).is_file(), words
        for w in words:  # scripts, benchmarks and configs the README names exist
            if re.match(r"(scripts|benchmarks|configs)/[\w./-]+\.(sh|py|yaml)$", w):
                assert (ROOT / w).is_file(), f"README names {w}, which does not exist"
    assert seen >= 40


def _tiny(args: list[str]) -> list[str]:
    sub = args[0]
    args = [str(ROOT / a) if a.startswith(("edgepose/assets/", "tests/assets/")) else a
            for a in args]
    if "--epochs" in args:
        args[args.index("--epochs") + 1] = "2"
    elif sub == "train":
        args += ["--epochs", "1"]
    if "--frames" in args:
        args[args.index("--frames") + 1] = "10"
    return args + TINY.get(sub, [])


@pytest.mark.slow
def test_readme_command_chain_runs_in_order(tmp_path):
    """The runnable README commands, in README order, in one fresh folder (as a new user
    pastes them): synthetic data, training, resume, eval, export, heatmap, predict,
    calibrate, the headless demo. Each must exit 0 and leave what the next one needs."""
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    ran = []
    for words in readme_commands():
        args = edgepose_args(words)
        if not args or words[0] != "edgepose" or args[0] not in RUNNABLE:
            continue
        line = " ".join(words)
        if any(n in line for n in NOT_HERE) or (args[0] == "demo" and "--headless" not in args):
            continue
        r = subprocess.run([sys.executable, "-m", "edgepose", *_tiny(args)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{line}\n{r.stderr[-1500:]}"
        ran.append(args[0])
    for sub in RUNNABLE:
        assert sub in ran, f"no README command of 'edgepose {sub}' ran"
    for f in ("runs/synth_dsnt_64/best.pt", "runs/synth_nerpe_64/best.pt", "model.onnx",
              "n.onnx", "model.int8.onnx", "heat.png", "heat.npy", "results.json",
              "metrics.json", "demo.mp4"):
        assert (tmp_path / f).is_file(), f


def test_load_backend_example_maps_keypoints_back_to_the_image(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    example = next(b for b in blocks if "load_backend" in b and "invert_affine" in b)
    scope: dict = {}
    exec(compile(example, "README-load_backend", "exec"), scope)  # noqa: S102 - our README
    xy, box = scope["xy"], scope["box_xywh"]
    assert xy.shape == (17, 2)
    # image pixels, exactly what the Python API (the live app's own stages) returns
    from edgepose.app.api import load

    with load(scope["ASSETS"] / "real_heatmap_128.onnx", threads=1) as model:
        pose = model.predict(scope["frame_bgr"], [box])[0]
    assert abs(xy - pose.keypoints).max() < 1e-3
    assert abs(xy - scope["out"]["coords"][0]).max() > 1  # crop pixels would differ
