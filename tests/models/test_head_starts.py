"""Issue 29's equal starts: on MoveNet's trunk every head starts from what MoveNet's own
keypoint head knows, and one supervised step at the shipped rates keeps it.

Measured on the 12 committed LSP test photos (torso PCK@0.2, image pixels), at 128 x 128,
before any supervised step, against MoveNet Lightning's own head + decode on the same
trunk at the same input size: heatmap and DSNT take that head's weights (DSNT under a
softmax temperature that starts at x4); NerPE is fitted to it (``head_start_steps``,
edgepose/models/nerpe_start.py; here a short fit on these photos, labels unused). The
held-out numbers are in benchmarks/results/head_starts/.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from test_movenet import LSP, ROOT, lsp_crops, movenet_pck, needs_lightning, peak_rate_step

from edgepose.models import movenet_import

SIZE = 128
MARGIN = 0.12  # a start within this torso PCK@0.2 of MoveNet's own head (12 photos)


def pck(model, crops) -> float:
    """Torso PCK@0.2 in image pixels of any model on ``crops``, in eval mode."""
    model.eval()
    return movenet_pck(model, crops)


def config(name: str, size: int = SIZE) -> dict:
    d = yaml.safe_load((ROOT / "configs" / name).read_text())
    d["model"]["input_size"] = [size, size]
    return d


def build(d: dict, weights: Path):
    from edgepose.config import config_from_dict
    from edgepose.models import build_model

    cfg = config_from_dict(d)
    meta = cfg.model.to_meta()
    return build_model(meta, pretrained=str(weights)), meta, cfg


@pytest.fixture(scope="module")
def lightning():
    path = movenet_import.home() / "movenet_lightning.safetensors"
    own, meta = movenet_import.load_imported("movenet_lightning", input_size=(SIZE, SIZE))
    names = sorted(json.loads((LSP / "joints_subset.json").read_text()))
    return path, own, lsp_crops(meta, names), names


def one_step_keeps(model, meta, cfg, names, probe, first: bool = False) -> float:
    """PCK after one supervised step on 8 of the photos at the config's peak rates, or
    (``first``) at the rate its schedule gives the first step (the warm-up's start)."""
    import dataclasses

    from edgepose.optim import LRSchedule

    optim = cfg.optim
    if first:
        optim = dataclasses.replace(optim, lr=LRSchedule.from_config(optim, 1).lr(0.0))
    x, kp, vis, _, _ = lsp_crops(meta, names[:8])
    peak_rate_step(model, optim, {"image": x, "keypoints": kp, "visible": vis})
    return pck(model, probe)


@needs_lightning
@pytest.mark.parametrize("head,suffix", [("heatmap", ""), ("dsnt", ""), ("heatmap", "_s2"),
                                         ("dsnt", "_s2")])
def test_heatmap_and_dsnt_start_at_movenets_head_and_one_step_keeps_it(head, suffix, lightning):
    """``_s2``: the stride-2 output configs (one RefineUp stage) start from the same head."""
    path, own, _, names = lightning
    d = config(f"real_movenet_{head}_128{suffix}.yaml")
    model, meta, cfg = build(d, path)
    assert model.head_init.startswith("movenet kpt_heatmap_0"), model.head_init
    probe = lsp_crops(meta, names)
    reference = pck(own, lsp_crops(own.meta, names))
    start = pck(model, probe)
    assert start >= reference - MARGIN, (head, suffix, start, reference)
    if head == "dsnt":  # the learned temperature starts exactly where the fixed x4 did
        assert d["model"]["head_cfg"]["learn_temperature"] is True
        fixed = dict(d, model=dict(d["model"], head_cfg=dict(d["model"]["head_cfg"],
                                                             learn_temperature=False)))
        other, _, _ = build(fixed, path)
        with torch.no_grad():
            a, b = model(probe[0])[0], other(probe[0])[0]
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
        assert float(model.head.log_temp.detach().exp()) == pytest.approx(4.0)
        # DSNT's softmax start is fragile at its peak rate (1e-3: 0.72 -> 0.54 in one step on
        # these photos, measured), which is why the configs warm up: the first step as the
        # schedule takes it keeps the start
        first = one_step_keeps(model, meta, cfg, names, probe, first=True)
        assert first >= start - 0.02, (start, first)
        return
    after = one_step_keeps(model, meta, cfg, names, probe)
    assert after >= start - 0.1, (head, start, after)


@needs_lightning
@pytest.mark.parametrize("adapter", ["conv", "movenet"])
def test_nerpe_start_fits_movenets_maps_and_one_step_keeps_it(adapter, lightning):
    """The fit (labels unused) moves NerPE's query confidences towards MoveNet's sigmoid maps
    and a supervised step at the shipped rate keeps what it reached. What it does NOT do in
    a CPU budget is locate joints like MoveNet's head (measured on these photos: torso
    PCK@0.2 0.21 after 300 batches of 32 with the conv adapter, 0.12 after 150 with the
    movenet adapter, vs 0.82): the issue-29 closing note reports it as a miss."""
    from edgepose.models.nerpe_start import fit_nerpe_start

    path, own, _, names = lightning
    d = config("real_movenet_nerpe_128.yaml")
    assert d["head_start_steps"] > 0, "the shipped NerPE configs start from MoveNet's head"
    d["model"]["head_cfg"]["adapter"] = adapter
    torch.manual_seed(0)
    model, meta, cfg = build(d, path)
    assert (adapter == "movenet") == model.head_init.startswith("movenet kpt_heatmap_0")
    probe = lsp_crops(meta, names)
    images = probe[0]
    batches = iter([torch.cat([images, torch.flip(images, dims=[3])])] * 1000)
    maes = fit_nerpe_start(model, path, batches, steps=40, lr=2e-3)
    assert np.mean(maes[-5:]) < maes[0] / 2, maes[::10]
    start = pck(model, probe)
    after = one_step_keeps(model, meta, cfg, names, probe)
    assert after >= start - 0.1, (start, after)
