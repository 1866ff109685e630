"""A uniform model soup (edgepose.checkpoint.soup_checkpoints, scripts/model_soup.py): the
element-wise mean of several checkpoints of one network, loadable and exportable like any
checkpoint; another network's file is one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from edgepose.checkpoint import load_checkpoint, load_model, save_checkpoint, soup_checkpoints
from edgepose.errors import ModelError
from edgepose.metadata import ModelMeta
from edgepose.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def meta(head="dsnt"):
    return ModelMeta(head=head, backbone="resnet18", input_size=(64, 64), stride=8,
                     head_cfg={"width": 32})


def seeded(path, seed, m=None):
    torch.manual_seed(seed)
    m = m or meta()
    model = build_model(m)
    with torch.no_grad():  # make BatchNorm's running stats differ between seeds too
        for b in model.buffers():
            if b.is_floating_point():
                b.add_(torch.rand_like(b))
    save_checkpoint(path, model, m, config={"seed": seed}, optimizer={"step": 3})
    return model.state_dict()


def test_soup_is_the_mean_of_the_weights(tmp_path):
    states = [seeded(tmp_path / f"s{i}.pt", i) for i in range(3)]
    info = soup_checkpoints([tmp_path / f"s{i}.pt" for i in range(3)], tmp_path / "soup.pt")
    soup = load_checkpoint(tmp_path / "soup.pt")
    assert info == {"tensors": len(states[0]), "ingredients": 3}
    assert soup["soup_of"] == ["s0.pt", "s1.pt", "s2.pt"] and soup["config"] == {"seed": 0}
    assert "optimizer" not in soup  # weights only
    for k, v in states[0].items():
        if v.is_floating_point():
            want = (states[0][k] + states[1][k] + states[2][k]) / 3
            torch.testing.assert_close(soup["model"][k], want, rtol=0, atol=1e-6)
            assert not torch.equal(soup["model"][k], v) or torch.equal(states[1][k], v)
        else:  # integer buffers (BatchNorm's step count): the first file's
            assert torch.equal(soup["model"][k], v)
    model, m = load_model(tmp_path / "soup.pt", expect=meta())
    assert m.head == "dsnt" and not model.training


def test_soup_refuses_another_network_and_a_single_file(tmp_path):
    seeded(tmp_path / "a.pt", 0)
    seeded(tmp_path / "b.pt", 1, meta("heatmap"))
    with pytest.raises(ModelError, match=r"b\.pt was made for another model \(head: 'dsnt' vs "
                                          r"'heatmap'"):
        soup_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"], tmp_path / "soup.pt")
    with pytest.raises(ModelError, match="at least two checkpoints"):
        soup_checkpoints([tmp_path / "a.pt"], tmp_path / "soup.pt")
    assert not (tmp_path / "soup.pt").exists()


def test_soup_script_says_what_it_wrote_or_one_line(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import model_soup
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    for i in range(2):
        seeded(tmp_path / f"s{i}.pt", i)
    assert model_soup.main([str(tmp_path / "s0.pt"), str(tmp_path / "s1.pt"),
                            "--out", str(tmp_path / "soup.pt")]) == 0
    assert "the mean of 2 checkpoints" in capsys.readouterr().out
    assert model_soup.main([str(tmp_path / "s0.pt"), str(tmp_path / "nope.pt"),
                            "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope.pt: checkpoint not found" in err
