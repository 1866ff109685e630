"""A model file from a stranger is data, never code (issue 30, item 1).

Every entry point that accepts a ``.pt`` is given a checkpoint whose unpickling would create
a file (the classic ``__reduce__`` payload). None may create it; each says in one line that
the file holds objects beyond tensors and plain data and how to convert a trusted copy.
"""

from __future__ import annotations

import pathlib
from pathlib import Path

import pytest
import torch

from edgepose.app.cli import main
from edgepose.checkpoint import load_checkpoint, save_checkpoint, upgrade_checkpoint
from edgepose.engines.onnx_weights import derived_checkpoint
from edgepose.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
# the bundled 64 px model as a checkpoint (the package ships its ONNX only; the checkpoint is
# derived from it, weights and training config bit for bit)
BUNDLED_PT = derived_checkpoint(ROOT / "edgepose" / "assets" / "real_heatmap_64.onnx")
LSP = ROOT / "tests" / "assets" / "lsp"


class _Payload:
    """Unpickling this calls ``Path.touch(marker)``: a stand-in for any code at all."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.fixture
def evil(tmp_path):
    """(malicious .pt that looks like an edgepose checkpoint, marker path it would create)."""
    good = torch.load(BUNDLED_PT, map_location="cpu", weights_only=True)
    marker = tmp_path / "PWNED"
    good["config"] = {"note": _Payload(marker)}
    path = tmp_path / "evil.pt"
    torch.save(good, path)
    assert not marker.exists()
    return path, marker


def _synth_config(synth_coco, tmp_path) -> Path:
    """The shipped 64x64 synthetic config on the session's synthetic COCO set."""
    import yaml

    from edgepose.config import load_config

    d = load_config(ROOT / "configs" / "synth_heatmap_64.yaml").to_dict()
    d["data"].update(train_ann=str(synth_coco.train_json),
                     train_images=str(synth_coco.image_root("train")), val_ann="",
                     val_images="", workers=0)
    d["model"]["pretrained"] = False
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _assert_refused(code, err, marker):
    assert not marker.exists(), "loading the model file ran its code"
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if "warning" not in line.lower()]
    assert len(lines) == 1 and "never unpickles" in lines[0], err
    assert "edgepose weights upgrade" in lines[0], err


@pytest.mark.parametrize("entry", ["predict", "run", "eval", "export", "pack", "train-resume",
                                   "adapt"])
def test_cli_entry_points_never_run_a_model_files_code(entry, evil, tmp_path, capsys,
                                                       synth_coco):
    path, marker = evil
    argv = {
        "predict": ["predict", LSP / "im1001.jpg", "--model", path, "--out", tmp_path / "p.json"],
        "run": ["run", "--model", path, "--source", "demo", "--headless", "--frames", "2"],
        "eval": ["eval", path, "--data", synth_coco.val_json,
                 "--images", synth_coco.image_root("val")],
        "export": ["export", path, "--out", tmp_path / "m.onnx"],
        "pack": ["weights", "pack", path, "--out", tmp_path / "packed.pt"],
        "train-resume": ["train", "--config", _synth_config(synth_coco, tmp_path),
                         "--resume", path, "--out", tmp_path / "run"],
        "adapt": ["adapt", ROOT / "tests" / "assets" / "clip" / "vtest_16.mp4", "--model", path,
                  "--out", tmp_path / "a.onnx"],
    }[entry]
    code, err = _cli(argv, capsys)
    _assert_refused(code, err, marker)


def test_python_api_never_runs_a_model_files_code(evil):
    import edgepose

    path, marker = evil
    with pytest.raises(ModelError, match="never unpickles"):
        edgepose.load(path)
    assert not marker.exists()


def test_checkpoints_written_by_edgepose_load_safely(tmp_path):
    """What edgepose writes (training state with numpy/python RNG, history) reads back
    under weights_only=True, the RNG states restorable."""
    import numpy as np

    from edgepose.metadata import ModelMeta
    from edgepose.models import build_model
    from edgepose.train import rng_state, set_rng_state

    meta = load_checkpoint(BUNDLED_PT)["meta"]
    assert isinstance(meta, ModelMeta)
    model = build_model(meta)
    np.random.seed(7)
    state = rng_state()
    expect = np.random.rand(3)
    path = tmp_path / "c.pt"
    save_checkpoint(path, model, meta, rng=state, history=[{"loss": np.float32(0.5)}],
                    best_metric=np.float64(0.25))
    back = load_checkpoint(path)
    set_rng_state(back["rng"])
    assert np.array_equal(np.random.rand(3), expect)
    assert back["history"][0]["loss"] == 0.5 and back["best_metric"] == 0.25


def test_upgrade_converts_a_trusted_old_file_once(tmp_path, capsys):
    """An old-format checkpoint (numpy objects pickled) is refused by every loader; the
    explicit, opt-in upgrade writes a copy that loads safely with the same weights."""
    import numpy as np

    old = torch.load(BUNDLED_PT, map_location="cpu", weights_only=True)
    old["rng"] = {"numpy": np.random.get_state()}  # what checkpoints used to hold
    src = tmp_path / "old.pt"
    torch.save(old, src)
    with pytest.raises(ModelError, match="never unpickles"):
        load_checkpoint(src)
    code, err = _cli(["weights", "upgrade", src, "--out", tmp_path / "new.pt"], capsys)
    assert code == 2 and "--trust" in err and not (tmp_path / "new.pt").exists()
    code, _ = _cli(["weights", "upgrade", src, "--out", tmp_path / "new.pt", "--trust"], capsys)
    assert code == 0
    new = load_checkpoint(tmp_path / "new.pt")
    for k, v in old["model"].items():
        assert torch.equal(new["model"][k], v), k
    assert upgrade_checkpoint(src, tmp_path / "again.pt")["keys"]


def test_upgrade_runs_nothing_from_a_tampered_old_file(evil, tmp_path, capsys):
    """Even the opt-in conversion allows only the numpy arrays, scalars and dtypes older
    checkpoints held: a payload with any other object is refused and never runs."""
    import numpy as np

    path, marker = evil
    payload = torch.load(BUNDLED_PT, map_location="cpu", weights_only=True)
    payload["rng"] = {"numpy": np.random.get_state(), "x": _Payload(marker)}
    torch.save(payload, path)
    code, err = _cli(["weights", "upgrade", path, "--out", tmp_path / "new.pt", "--trust"],
                     capsys)
    assert code == 2 and "not converted" in err, err
    assert not marker.exists() and not (tmp_path / "new.pt").exists()
