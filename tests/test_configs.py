"""Every shipped YAML config loads, validates and describes a model that builds and runs."""

from pathlib import Path

import pytest
import torch

from edgepose.config import load_config
from edgepose.models import build_model

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIGS_DIR.glob("*.yaml"))


def test_configs_exist():
    assert len(CONFIGS) >= 6, f"expected the shipped configs, found {CONFIGS}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_a_working_model(path):
    cfg = load_config(path).validate()
    meta = cfg.model.to_meta()
    model = build_model(meta).eval()  # never downloads: pretrained is only used by train
    h, w = meta.input_size
    with torch.no_grad():
        coords, scores = model(torch.zeros(1, 3, h, w))
    assert coords.shape == (1, meta.num_joints, 2)
    assert scores.shape == (1, meta.num_joints)
    assert torch.isfinite(coords).all()


def blank_model_files(d: dict) -> dict:
    """What the one-step test leaves out: every weights file a config starts from
    (``pretrained`` ImageNet/MoveNet weights under data/, ``init`` another run's checkpoint).
    Neither is in a clean clone; the test trains the same network from random weights
    (and skips NerPE's start, which fits the head to MoveNet's: tests/models/test_head_starts)."""
    d["model"]["pretrained"] = False
    d["model"]["init"] = ""
    d["head_start_steps"] = 0  # fitting NerPE to MoveNet's head needs MoveNet's weights
    return d


def files_outside_the_clone(path: Path) -> list[str]:
    """The file references of a config that a clean clone + ../shared cannot satisfy by
    construction: a path under the home folder (``~``) or an absolute path (a machine's
    own cache), and a ``model.init`` (another run's output) whose config header does not
    say which ``edgepose train --config`` produces it. Empty = portable."""
    d = load_config(path).to_dict()
    refs = [("model.pretrained", d["model"]["pretrained"]), ("model.init", d["model"]["init"])]
    data = d["data"]
    for key in ("train_ann", "train_images", "val_ann", "val_images"):
        refs.append((f"data.{key}", data.get(key, "")))
    for i, src in enumerate(data.get("sources") or []):
        refs += [(f"data.sources[{i}].{k}", src.get(k, "")) for k in ("ann", "images", "maps")]
    bad = []
    for key, value in refs:
        if not isinstance(value, str) or not value:
            continue
        if value.startswith("~") or Path(value).is_absolute():
            bad.append(f"{key} = {value}: outside the clone (another machine will not have it)")
    init = d["model"]["init"]
    if init:
        header = "".join(line for line in path.read_text().splitlines(keepends=True)
                         if line.startswith("#"))
        producers = [c for c in CONFIGS if c != path
                     and load_config(c).out.rstrip("/") == str(Path(init).parent)]
        if not any(f"edgepose train --config configs/{c.name}" in header for c in producers):
            bad.append(f"model.init = {init}: the header must name the `edgepose train --config "
                       f"configs/...` whose `out` is {Path(init).parent}")
    return bad


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_reads_nothing_outside_the_clone(path):
    """Issue 28's guard: no shipped config names a file in one machine's home folder or an
    absolute path, and a config that starts from another run says how to produce it."""
    bad = files_outside_the_clone(path)
    assert not bad, f"{path.name}: " + "; ".join(bad)


def test_config_guard_catches_a_home_folder_init(tmp_path, monkeypatch):
    """The guard fails on the case that broke CI (init in ~/.cache) and on a run's output
    whose producer the header does not name; the one-step test's blanking removes both."""
    src = CONFIGS_DIR / "real_movenet_heatmap_128_more.yaml"
    text = src.read_text()
    broken = tmp_path / "broken_home.yaml"
    broken.write_text(text.replace("init: runs/real_movenet_heatmap_128/best.pt",
                                   "init: ~/.cache/edgepose-runs/real_movenet_heatmap_128/best.pt"))
    assert any("outside the clone" in b for b in files_outside_the_clone(broken))
    silent = tmp_path / "silent_header.yaml"
    silent.write_text("\n".join(l for l in text.splitlines() if not l.startswith("#")))
    assert any("header must name" in b for b in files_outside_the_clone(silent))
    d = blank_model_files(load_config(broken).to_dict())
    assert d["model"]["init"] == "" and d["model"]["pretrained"] is False
    soft = CONFIGS_DIR / "real_movenet_dsnt_64_soft.yaml"  # teacher maps in a home cache
    home_maps = tmp_path / "home_maps.yaml"
    home_maps.write_text(soft.read_text().replace("maps: data/real/maps/",
                                                  "maps: ~/.cache/edgepose/teacher_maps/"))
    assert any("sources[1].maps" in b and "outside the clone" in b
               for b in files_outside_the_clone(home_maps))


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_trains_one_step(path, synth_coco, tmp_path):
    """The config's model, head, augmentation and optimiser run one real training step.

    Data paths point at the session's synthetic COCO set (a config with ``sources`` keeps
    the multi-source path, with two sources); pretrained weights are left out (a hub or a
    file under data/ is not there in CI). An MPII config trains its model with 17 joints
    on the COCO-format set."""
    import math

    from edgepose.config import config_from_dict
    from edgepose.train import train

    d = load_config(path).to_dict()
    blank_model_files(d)
    if d["data"]["dataset"] == "mpii":  # MPII's reader has its own tests (tests/data)
        d["model"]["skeleton"] = "coco17"
    train_src = {"ann": str(synth_coco.train_json), "images": str(synth_coco.image_root("train"))}
    val_src = {"ann": str(synth_coco.val_json), "images": str(synth_coco.image_root("val"))}
    data = d["data"]
    if data["sources"]:
        data["sources"] = [dict(train_src, weight=2.0), dict(val_src, weight=1.0)]
    else:
        data["train_ann"], data["train_images"] = train_src["ann"], train_src["images"]
    data.update(dataset="coco", val_ann="", val_images="", workers=0)
    d["optim"].update(epochs=1, batch_size=4)
    d.update(out=str(tmp_path / "run"), max_steps_per_epoch=1, threads=1, progress=False,
             device="cpu", amp=False, sync_bn=False)
    summary = train(config_from_dict(d))
    assert math.isfinite(summary["history"][0]["loss"])
    assert (tmp_path / "run" / "last.pt").is_file()
