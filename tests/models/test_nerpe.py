"""NerPE head: contract, query sampler, compute accounting, ONNX export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from edgepose.errors import ModelError
from edgepose.models import nerpe_decoding as dec
from edgepose.models.nerpe import NerPEHead, grid_cells

TINY = {"feat_dim": 16, "hidden": (16, 16, 8)}


def tiny_head(input_size=(64, 64), in_stride=8, decoder=None, **cfg) -> NerPEHead:
    torch.manual_seed(0)
    return NerPEHead(8, in_stride, input_size, 17, decoder=decoder, **{**TINY, **cfg}).eval()


# ----------------------------------------------------------------------------- grid + contract


@pytest.mark.parametrize("size,stride,grid", [
    ((64, 64), 8, (8, 8)), ((128, 128), 8, (8, 8)), ((256, 192), 8, (8, 6)),
    ((256, 192), 32, (8, 6)), ((64, 64), 16, (8, 8)), ((128, 128), 32, (8, 8)),
])
def test_adapter_maps_every_input_to_the_fixed_grid(size, stride, grid):
    assert grid_cells(size) == grid
    head = tiny_head(size, stride)
    feats = torch.randn(2, 8, size[0] // stride, size[1] // stride)
    g = head.feature_grid(feats)
    assert tuple(g.shape) == (2, 16, *grid), f"grid {tuple(g.shape)} for {size} stride {stride}"


def test_forward_contract_shapes_ranges_and_train_outputs():
    head = tiny_head(decoder={"mode": "dense", "resolution": 32})
    feats = torch.randn(3, 8, 8, 8)
    coords, scores = head(feats)
    assert coords.shape == (3, 17, 2) and scores.shape == (3, 17)
    assert coords.min() >= -0.5 and coords.max() <= 63.5, "coords must lie inside the input"
    assert scores.min() >= 0 and scores.max() <= 1
    # dense at 32 puts peaks on 32x32 pixel centres: input px = 2 * i + 0.5
    frac = ((coords - 0.5) / 2.0) - torch.round((coords - 0.5) / 2.0)
    assert frac.abs().max() < 1e-4, "dense peaks must be heatmap pixel centres"
    batch = {"keypoints": torch.rand(3, 17, 2) * 64, "visible": torch.ones(3, 17)}
    head.train()
    out = head.forward_train(feats, batch)
    assert out["preds"].shape == (3, 4, 64 * 16, 17)
    torch.testing.assert_close(out["weights"].sum(1), torch.ones(3, 64 * 16))
    loss, parts = head.loss(out, batch)
    loss.backward()
    assert torch.isfinite(loss) and set(parts) == {"nerpe_mse", "blend_mse"}
    assert head.mlp.z_proj.weight.grad.abs().sum() > 0


def test_target_is_gaussian_of_normalised_distance_times_visibility():
    head = tiny_head(input_size=(64, 64))
    kp = torch.tensor([[[31.5, 31.5], [10.0, 20.0]]])  # (1, 2, 2) px; 31.5 px = norm 0
    head.num_joints = 2
    q = torch.tensor([[[0.0, 0.0], [0.06, 0.0], [0.0, 0.12]]])
    t = head.targets(q, {"keypoints": kp, "visible": torch.tensor([[1.0, 0.0]])})
    expect = torch.exp(torch.tensor([0.0, -0.5, -2.0]))
    torch.testing.assert_close(t[0, :, 0], expect)
    assert t[0, :, 1].abs().max() == 0, "an invisible joint's target must be 0"


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ModelError, match="unknown nerpe head_cfg"):
        tiny_head(hiddn=(8,))
    with pytest.raises(ModelError, match="decoder mode"):
        tiny_head(decoder={"mode": "fast"})
    with pytest.raises(ModelError, match="unknown nerpe decoder setting"):
        tiny_head(decoder={"mode": "dense", "res": 64})
    with pytest.raises(ModelError, match="overlap must be even"):
        tiny_head(decoder={"mode": "progressive", "overlap": 1})
    with pytest.raises(ModelError, match="square samples_per_cell"):
        dec.sample_queries((8, 8), 1, 10, "uniform")


# ----------------------------------------------------------------------------- query sampler


@pytest.mark.parametrize("mode", ["uniform", "random"])
@pytest.mark.parametrize("grid,per_cell", [((8, 8), 16), ((8, 6), 64), ((8, 8), 4)])
def test_sampler_puts_per_cell_samples_in_every_cell(mode, grid, per_cell):
    gh, gw = grid
    g = torch.Generator().manual_seed(1)
    q = dec.sample_queries(grid, 3, per_cell, mode, generator=g)
    assert q.shape == (3, gh * gw * per_cell, 2)
    assert q.min() > -1 and q.max() < 1, "samples must stay strictly inside the crop"
    ix = torch.floor((q[..., 0] + 1) / (2 / gw)).long()
    iy = torch.floor((q[..., 1] + 1) / (2 / gh)).long()
    counts = torch.zeros(3, gh * gw, dtype=torch.long)
    counts.scatter_add_(1, iy * gw + ix, torch.ones_like(ix))
    assert (counts == per_cell).all(), f"per-cell counts {counts.unique().tolist()}"


def test_uniform_sampler_covers_every_sub_cell_exactly_once():
    gh, gw, m = 8, 6, 8
    q = dec.sample_queries((gh, gw), 2, m * m, "uniform", generator=torch.Generator().manual_seed(2))
    sx = torch.floor((q[..., 0] + 1) / (2 / (gw * m))).long()  # sub-cell column over the crop
    sy = torch.floor((q[..., 1] + 1) / (2 / (gh * m))).long()
    for b in range(2):
        ids = (sy[b] * gw * m + sx[b]).sort().values
        assert torch.equal(ids, torch.arange(gh * m * gw * m)), "each sub-cell exactly once"


# ----------------------------------------------------------------------------- accounting


def _counted_macs(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops() // 2


@pytest.mark.parametrize("decoder", [
    {"mode": "dense", "resolution": 24},
    {"mode": "progressive", "coarse": 8, "r": 4, "overlap": 2, "steps": 2},
    {"mode": "progressive", "coarse": 12, "r": 2, "overlap": 2, "steps": 1},
])
def test_decoder_cost_matches_counted_macs(decoder):
    head = tiny_head(decoder=decoder, pos_freqs=2)
    grid = torch.randn(2, 16, 8, 8)
    counted = _counted_macs(lambda: head.decode_grid(grid))
    s = head.decoder
    cost = dec.decoder_cost(17, TINY["hidden"], TINY["feat_dim"], head.mlp.pos_dim, mode=s.mode,
                            resolution=s.resolution, coarse=s.coarse, r=s.r,
                            overlap=s.overlap, steps=s.steps, cells=64)
    assert counted == 2 * cost["macs"], f"counted {counted} vs decoder_cost {cost} (batch 2)"
    q = 24 * 24 if s.mode == "dense" else s.coarse ** 2 + s.steps * 17 * (s.r + s.overlap) ** 2
    assert cost["queries"] == q and cost["evals"] == 4 * q


def test_decoder_cost_paper_sized_mlp():
    """Dense 128^2 with the paper's MLP (feat 256, hidden 256-256-128-128-128, K=17)."""
    hidden = (256, 256, 128, 128, 128)
    per_eval = 2 * 256 + 256 * 256 + 256 * 128 + 128 * 128 * 2 + 128 * 17
    d = dec.decoder_cost(17, hidden, 256, 2, mode="dense", resolution=128)
    assert d["macs"] == 4 * 128 * 128 * per_eval + 64 * 256 * 256
    assert d["macs_naive"] == 4 * 128 * 128 * (per_eval + 256 * 256)
    p = dec.decoder_cost(17, hidden, 256, 2, mode="progressive", coarse=32, r=4, steps=1)
    assert p["queries"] == 32 * 32 + 17 * 36
    assert p["macs"] < d["macs"] / 8


# ----------------------------------------------------------------------------- export


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("decoder", [
    {"mode": "dense", "resolution": 48},
    {"mode": "progressive", "coarse": 16, "r": 4, "overlap": 2, "steps": 2},
])
def test_posemodel_onnx_export_matches_torch(tmp_path, decoder):
    ort = pytest.importorskip("onnxruntime")
    from edgepose.metadata import ModelMeta
    from edgepose.models import build_model

    meta = ModelMeta(head="nerpe", backbone="resnet18", input_size=(64, 64), stride=8,
                     head_cfg={"feat_dim": 32, "hidden": [32, 32, 16]}, decoder=decoder)
    torch.manual_seed(0)
    model = build_model(meta).eval()
    x = torch.randn(2, 3, 64, 64)
    path = tmp_path / "nerpe.onnx"
    torch.onnx.export(model, x, str(path), dynamo=False, opset_version=17,
                      input_names=["image"], output_names=["coords", "scores"],
                      dynamic_axes={"image": {0: "batch"}, "coords": {0: "batch"},
                                    "scores": {0: "batch"}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for xb in (x, torch.randn(3, 3, 64, 64)):
        coords, scores = sess.run(None, {"image": xb.numpy()})
        with torch.no_grad():
            tc, ts = model(xb)
        assert np.abs(coords - tc.numpy()).max() < 1e-3, "ORT coords differ from torch"
        assert np.abs(scores - ts.numpy()).max() < 1e-4, "ORT scores differ from torch"


def test_nearest_cell_variant_and_laplace_target_train():
    head = tiny_head(local_ensemble=False, target="laplace", sampling="random",
                     samples_per_cell=5)
    feats = torch.randn(2, 8, 8, 8)
    batch = {"keypoints": torch.full((2, 17, 2), 31.5), "visible": torch.ones(2, 17)}
    out = head.train().forward_train(feats, batch)
    assert out["preds"].shape == (2, 1, 64 * 5, 17)
    loss, _ = head.loss(out, batch)
    loss.backward()
    t = head.targets(torch.tensor([[[0.09, 0.0]]]), batch)  # 0.09 from the keypoint at 0
    torch.testing.assert_close(t[0, 0, 0], torch.exp(torch.tensor(-1.0)))
    coords, _ = head.eval()(feats)
    assert coords.shape == (2, 17, 2)
