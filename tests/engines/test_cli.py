"""The export / build subcommands through edgepose.app.cli.main (exit codes, messages)."""

import importlib.util

import pytest

from edgepose.app.cli import main
from edgepose.engines.meta_io import read_meta

from engine_helpers import HEADS, make_checkpoint


def test_export_command(tmp_path, capsys):
    ckpt = tmp_path / "m.pt"
    _, meta = make_checkpoint(ckpt, HEADS[0])
    out = tmp_path / "m.onnx"
    rc = main(["export", str(ckpt), "--out", str(out), "--check-trt", "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "parity vs PyTorch on images" in text and "result: OK" in text
    assert read_meta(out).name == meta.name
    rc = main(["export", str(out), "--check-trt"])
    assert rc == 0 and "ops:" in capsys.readouterr().out


def test_export_bad_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    rc = main(["export", str(bad), "--out", str(tmp_path / "x.onnx"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "bad.pt" in err and "Traceback" not in err, err


def test_export_bad_decoder(tmp_path, capsys):
    ckpt = tmp_path / "m.pt"
    make_checkpoint(ckpt, HEADS[0])
    rc = main(["export", str(ckpt), "--decoder", "fancy:1", "--no-progress"])
    assert rc == 2 and "cannot read decoder 'fancy:1'" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT present")
def test_build_without_tensorrt(exported, tmp_path, capsys):
    _, onnx_path, _, _ = exported(HEADS[0])
    rc = main(["build", str(onnx_path), "--out", str(tmp_path / "m.engine")])
    err = capsys.readouterr().err
    assert rc == 2 and "TensorRT is not installed" in err and "edgepose[trt]" in err, err
    assert not (tmp_path / "m.engine").exists()


def test_build_rejects_bad_batch_range(exported, capsys):
    _, onnx_path, _, _ = exported(HEADS[0])
    rc = main(["build", str(onnx_path), "--min-batch", "4", "--max-batch", "2"])
    assert rc == 2 and "1 <= min <= opt <= max" in capsys.readouterr().err
