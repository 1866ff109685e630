"""The README and the docs/ pages stay true: the squat-counter example runs as written,
every command block parses with the real CLI, the runnable commands work pasted in order,
and every link points at a file or heading that exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The README, then the docs/ pages in the order a newcomer reads them. The command chain
# below runs in this order: training.md trains the checkpoint that models.md's nerpe-map
# and deploy.md's export use, and models.md the NerPE one.
PAGES = ("README.md", "docs/training.md", "docs/models.md", "docs/deploy.md",
         "docs/adapt.md", "docs/benchmarks.md", "docs/serving.md")
README_MAX_LINES = 260


def python_blocks(pages=PAGES) -> list[str]:
    return [b for page in pages
            for b in re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), re.S)]


def test_pages_are_listed_and_the_readme_stays_short():
    on_disk = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert on_disk == {p for p in PAGES if p.startswith("docs/")}, \
        "add the new docs page to PAGES (and to the README's contents)"
    readme = (ROOT / "README.md").read_text()
    for page in on_disk:  # the README leads to every page
        assert f"]({page}" in readme, f"README does not link {page}"
    n = len(readme.splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines: move detail to docs/"


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return s.replace(" ", "-")


def test_links_point_to_real_files_and_headings():
    bad = []
    for page in PAGES:
        path = ROOT / page
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                bad.append(f"{page}: {target} (no such file)")
            elif anchor and dest.suffix == ".md":
                heads = re.findall(r"^#+ (.*)$", re.sub(r"```.*?```", "", dest.read_text(),
                                                        flags=re.S), re.M)
                if anchor not in {_slug(h) for h in heads}:
                    bad.append(f"{page}: {target} (no such heading)")
    assert not bad, "\n".join(bad)


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
RUNNABLE = {"synth", "train", "eval", "export", "nerpe-map", "predict", "calibrate", "demo"}
NOT_HERE = ("--device cuda", "coco_", "mpii_", "coco/", "--server")
# appended (argparse: the last value wins) or substituted to keep each command tiny
TINY = {"synth": ["--num", "16", "--val", "6", "--size", "96"],
        "train": ["--set", "max_steps_per_epoch=2", "--batch-size", "4", "--threads", "1"],
        "calibrate": ["--count", "16", "--runs", "3"]}


def readme_commands(pages=PAGES) -> list[tuple[str, list[str]]]:
    """Every shell command of the ```bash blocks of the README and the docs pages, in PAGES
    order, as (page, words): continuation lines joined, comments dropped, split like a
    shell would."""
    import shlex

    out = []
    for page in pages:
        for block in re.findall(r"```bash\n(.*?)```", (ROOT / page).read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words:
                    out.append((page, words))
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
    pages_with_commands = set()
    for page, words in readme_commands():
        args = edgepose_args(words)
        if args is not None:
            try:
                build_parser().parse_args(args)
            except SystemExit as e:
                raise AssertionError(f"{page} command does not parse: {' '.join(words)}") from e
            seen += 1
            pages_with_commands.add(page)
            if "--config" in args:
                config = ROOT / args[args.index("--config") + 1]
                assert config.is_file(), f"{page}: {' '.join(words)} names a missing config"
        for w in words:  # scripts, benchmarks and configs the pages name exist
            if re.match(r"(scripts|benchmarks|configs)/[\w./-]+\.(sh|py|yaml)$", w):
                assert (ROOT / w).is_file(), f"{page} names {w}, which does not exist"
    assert seen >= 40
    assert pages_with_commands == set(PAGES), set(PAGES) - pages_with_commands


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
    """The runnable commands of the README and the docs pages, in PAGES order, in one fresh
    folder (as a new user pastes them): the headless demo, predict, synthetic data,
    training, resume, eval, nerpe-map, export, calibrate. Each must exit 0 and leave what the
    next one needs."""
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    ran = []
    for _page, words in readme_commands():
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
        assert sub in ran, f"no README / docs command of 'edgepose {sub}' ran"
    for f in ("runs/synth_dsnt_64/best.pt", "runs/synth_nerpe_64/best.pt", "model.onnx",
              "n.onnx", "model.int8.onnx", "heat.png", "heat.npy", "results.json",
              "metrics.json", "demo.mp4"):
        assert (tmp_path / f).is_file(), f


def test_load_backend_example_maps_keypoints_back_to_the_image(tmp_path):
    example = next(b for b in python_blocks() if "load_backend" in b and "invert_affine" in b)
    scope: dict = {}
    exec(compile(example, "docs-load_backend", "exec"), scope)  # noqa: S102 - our docs
    xy, box = scope["xy"], scope["box_xywh"]
    assert xy.shape == (17, 2)
    # image pixels, exactly what the Python API (the live app's own stages) returns
    from edgepose.app.api import load

    with load(scope["ASSETS"] / "real_heatmap_128.onnx", threads=1) as model:
        pose = model.predict(scope["frame_bgr"], [box])[0]
    assert abs(xy - pose.keypoints).max() < 1e-3
    assert abs(xy - scope["out"]["coords"][0]).max() > 1  # crop pixels would differ


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_every_python_snippet_runs(index, tmp_path):
    """Each ```python block of the README and docs/ runs as written (issue 32: one raised
    NameError), in a fresh folder that holds the files the snippets name (squats.mp4 is
    the committed clip). A snippet that needs a Triton server is only compiled."""
    import shutil

    block = python_blocks()[index]
    compile(block, f"snippet {index}", "exec")
    if "grpc://" in block or "sys.argv[1]" in block:  # a server / the squat test above
        return
    shutil.copy(ROOT / "tests" / "assets" / "clip" / "vtest_16.mp4", tmp_path / "squats.mp4")
    script = tmp_path / "snippet.py"
    script.write_text(block)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=600, cwd=tmp_path)
    assert r.returncode == 0, f"snippet {index}:\n{block}\n{r.stderr[-1500:]}"
