"""Training on several COCO files at once: config checks, de-duplication, weighted sampling."""

from __future__ import annotations

from collections import Counter

import pytest

from edgepose.config import config_from_dict
from edgepose.errors import ConfigError
from edgepose.distributed import DistEnv, WeightedEpochSampler
from edgepose.data.datasets import build_dataset


def cfg(synth_coco, sources, **data):
    return config_from_dict({
        "model": {"backbone": "resnet18", "head": "dsnt", "stride": 8, "input_size": [64, 64]},
        "data": {"sources": sources, **data}})


def test_sources_are_validated(synth_coco):
    src = {"ann": str(synth_coco.train_json), "images": str(synth_coco.image_root("train"))}
    with pytest.raises(ConfigError, match="use one of them"):
        cfg(synth_coco, [src], train_ann=str(synth_coco.train_json))
    with pytest.raises(ConfigError, match=r"sources\[0\].weight must be > 0"):
        cfg(synth_coco, [dict(src, weight=0)])
    with pytest.raises(ConfigError, match="unknown key"):
        cfg(synth_coco, [dict(src, wieght=1)])
    with pytest.raises(ConfigError, match="data.aug: unknown key"):
        cfg(synth_coco, [src], aug={"blurr_prob": 0.5})


def test_overlapping_sources_are_deduplicated(synth_coco):
    train = {"ann": str(synth_coco.train_json), "images": str(synth_coco.image_root("train"))}
    c = cfg(synth_coco, [train, dict(train, weight=3.0)])
    ds = build_dataset(c.data, c.model.to_meta(), train=True)
    single = build_dataset(cfg(synth_coco, [train]).data, c.model.to_meta(), train=True)
    assert len(ds) == len(single), "the same images listed twice are read once"
    assert ds.source_sizes == [len(single)]


def test_missing_source_names_its_key(synth_coco, tmp_path):
    from edgepose.errors import DataError

    c = cfg(synth_coco, [{"ann": str(tmp_path / "nope.json")}])
    with pytest.raises(DataError, match=r"data.sources\[0\].ann"):
        build_dataset(c.data, c.model.to_meta(), train=True)


def test_weighted_sampler_follows_weights_and_shards():
    sizes, weights = [100, 900], [3.0, 1.0]
    s = WeightedEpochSampler(sizes, weights, seed=0, env=DistEnv())
    s.set_epoch(0)
    idx = list(s)
    assert len(idx) == 1000
    share = sum(i < 100 for i in idx) / len(idx)
    assert 0.70 < share < 0.80, f"source 0 has weight 3/4, drew {share:.2f}"
    assert idx == list(s), "same (seed, epoch) -> same order"
    s.set_epoch(1)
    assert list(s) != idx
    ranks = [WeightedEpochSampler(sizes, weights, 0, DistEnv(rank=r, world_size=2)) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(0)
    a, b = list(ranks[0]), list(ranks[1])
    assert len(a) == len(b) == 500
    assert Counter(a) + Counter(b) == Counter(idx), "the two ranks split one global draw"


def test_webcam_augmentations_keep_geometry(synth_coco):
    """Degradations change pixels, never the keypoints."""
    import numpy as np
    import torch

    from edgepose.data.coco import CocoKeypoints
    from edgepose.data.transforms import AugConfig

    c = cfg(synth_coco, [])
    meta = c.model.to_meta()
    plain = AugConfig(scale=0, rotation=0, flip_prob=0)
    heavy = AugConfig(scale=0, rotation=0, flip_prob=0, dark_prob=1, blur_prob=1,
                      downsample_prob=1, occluder_prob=1)
    a = CocoKeypoints(synth_coco.train_json, synth_coco.image_root("train"), meta, True, plain)
    b = CocoKeypoints(synth_coco.train_json, synth_coco.image_root("train"), meta, True, heavy)
    torch.manual_seed(0)
    sa = a[0]
    torch.manual_seed(0)
    sb = b[0]
    assert torch.equal(sa["keypoints"], sb["keypoints"])
    assert not torch.equal(sa["image"], sb["image"])
    assert float(sb["image"].mean()) < float(sa["image"].mean()), "dark_prob darkens"
    assert np.isfinite(sb["image"].numpy()).all()
