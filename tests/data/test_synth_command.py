"""``edgepose synth`` through the real CLI entry point."""

from __future__ import annotations

import json

import cv2

from edgepose.app.cli import main


def test_synth_writes_train_and_val(tmp_path, capsys):
    out = tmp_path / "ds"
    rc = main(["synth", str(out), "--num", "3", "--val", "2", "--size", "80", "64", "--seed", "5"])
    assert rc == 0, capsys.readouterr().err
    for split, n in (("train", 3), ("val", 2)):
        data = json.loads((out / "annotations" / f"person_keypoints_{split}.json").read_text())
        assert len(data["images"]) == n, f"{split}: {len(data['images'])} images"
        img = cv2.imread(str(out / "images" / split / data["images"][0]["file_name"]))
        assert img is not None and img.shape == (64, 80, 3), "W H order of --size"
    assert "wrote 3 train images" in capsys.readouterr().out


def test_synth_bad_arguments_give_one_line_errors(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--size", "1", "2", "3"]) == 2
    err = capsys.readouterr().err
    assert "--size takes one number or two" in err and "Traceback" not in err
    assert main(["synth", str(tmp_path), "--num", "2", "--size", "8"]) == 2
    assert "at least 16x16" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["synth", str(blocker / "sub"), "--num", "1", "--val", "0"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
