"""Issue 30's bad-input and fault probes, kept as tests so they stay fixed.

Each probe is what a user (or an unattended service) really does: the real CLI, real files
(committed LSP photos, a truncated copy of one, a PNG that declares 40000 x 40000 pixels,
an ONNX file whose metadata was edited). Every fault must be one line on stderr, exit 2,
before any work, and lose nothing; nothing may be scored as if it were whole.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import pytest

from edgepose.app.cli import main
from edgepose.engines.onnx_weights import derived_checkpoint

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_PT = derived_checkpoint(ROOT / "edgepose" / "assets" / "real_heatmap_64.onnx")
LSP = ROOT / "tests" / "assets" / "lsp"
COCO = ROOT / "tests" / "assets" / "coco"
MODEL = ROOT / "edgepose" / "assets" / "real_heatmap_64.onnx"
CLIP = ROOT / "tests" / "assets" / "clip" / "vtest_16.mp4"


def cli(argv, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_line_error(code: int, err: str, fragment: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2, f"exit {code}: {err[-400:]}"
    assert "Traceback" not in err and len(lines) == 1, err[-800:]
    assert fragment in lines[0], lines[0]


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def huge_png(path: Path) -> Path:
    """A valid PNG header declaring 40000 x 40000 pixels (1-bit grey), a few KB on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 1, 0, 0, 0, 0)
    raw = zlib.compress(b"\x00" * (1 + 40000 // 8) * 8)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw)
                     + chunk(b"IEND", b""))
    return path


def edited_onnx(tmp_path) -> Path:
    """The bundled 64x64 model with its metadata edited to claim a 96x96 input."""
    import onnx

    m = onnx.load(str(MODEL))
    for p in m.metadata_props:
        if p.key == "edgepose":
            meta = json.loads(p.value)
            meta["input_size"] = [96, 96]
            p.value = json.dumps(meta)
    bad = tmp_path / "edited.onnx"
    onnx.save(m, str(bad))
    return bad


@pytest.fixture
def photos(tmp_path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("im1001.jpg", "im1002.jpg", "im1003.jpg"):
        shutil.copy(LSP / name, d / name)
    return d


# ----------------------------------------------------------------------------- predict


def test_save_dir_equal_to_the_input_folder_is_refused_and_nothing_is_touched(photos, capsys):
    before = digest(photos)
    code, err = cli(["predict", photos, "--model", MODEL, "--save-dir", photos,
                     "--out", photos.parent / "r.json", "--no-progress"], capsys)
    one_line_error(code, err, "would overwrite them")
    assert digest(photos) == before and not (photos.parent / "r.json").exists()


def test_same_file_name_in_two_folders_gives_two_overlays(tmp_path, capsys):
    for sub, src in (("a", "im1001.jpg"), ("b", "im1002.jpg")):
        (tmp_path / sub).mkdir()
        shutil.copy(LSP / src, tmp_path / sub / "x.jpg")
    out = tmp_path / "overlays"
    code, _ = cli(["predict", f"{tmp_path}/*/x.jpg", "--model", MODEL, "--save-dir", out,
                   "--out", tmp_path / "r.json", "--no-progress"], capsys)
    assert code == 0
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 and "x.jpg" in written, written


def test_truncated_and_too_large_images_are_skipped_and_counted(photos, tmp_path, capsys):
    data = (LSP / "im1004.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(data[: len(data) // 2])
    huge_png(photos / "huge.png")
    (photos / "empty.jpg").write_bytes(b"")
    out = tmp_path / "r.json"
    code = main(["predict", str(photos), "--model", str(MODEL), "--out", str(out),
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "cut.jpg: is truncated" in captured.err and "huge.png: is too large" in captured.err
    assert "empty.jpg: is empty" in captured.err and "skipped 3" in captured.out
    names = {r["file_name"] for r in json.loads(out.read_text())}
    assert names == {str(photos / n) for n in ("im1001.jpg", "im1002.jpg", "im1003.jpg")}


def test_ctrl_c_in_predict_writes_the_finished_results(photos, tmp_path, capsys, monkeypatch):
    """KeyboardInterrupt is what Python raises on SIGINT; raised while the 3rd image is
    read, the 2 finished ones are written and the exit status is 130."""
    import edgepose.data.files as files

    real, calls = cv2.imread, []

    def imread(path, flags=None):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, flags)

    monkeypatch.setattr(files.cv2, "imread", imread)
    out = tmp_path / "r.json"
    code = main(["predict", str(photos), "--model", str(MODEL), "--out", str(out),
                 "--batch", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 130 and "with the 2 images finished of 3" in err, err
    assert len({r["file_name"] for r in json.loads(out.read_text())}) == 2


def test_a_truncated_video_is_counted(tmp_path, capsys):
    cap = cv2.VideoCapture(str(CLIP))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    whole = tmp_path / "whole.avi"
    w = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), fps,
                        (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        w.write(f)
    w.release()
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    code = main(["predict", str(cut), "--model", str(MODEL), "--out", str(tmp_path / "r.json"),
                 "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0 and "declared frames missing" in captured.out, captured
    assert f"of the {len(frames)} frames" in captured.err, captured.err


# ----------------------------------------------------------------------------- output paths


@pytest.mark.parametrize("argv", [
    ["predict", LSP / "im1001.jpg", "--model", MODEL, "--out", "{dir}"],
    ["run", "--model", MODEL, "--source", "demo", "--headless", "--frames", "2",
     "--keypoints", "{dir}"],
    ["run", "--model", MODEL, "--source", "demo", "--headless", "--frames", "2", "--log", "{dir}"],
    ["eval", MODEL, "--data", COCO / "person_keypoints.json", "--images", COCO, "--json", "{dir}"],
    ["export", BUNDLED_PT, "--out", "{dir}"],
    ["calibrate", MODEL, "--data", LSP, "--out", "{dir}"],
    ["convert", "lsp", LSP, "--out", "{dir}"],
    ["weights", "pack", BUNDLED_PT, "--out", "{dir}"],
    ["label", LSP, "--out", "{dir}"],
    ["adapt", CLIP, "--out", "{dir}"],
    ["serve", "--log", "{dir}"],
], ids=lambda a: f"{a[0]}-{[x for x in a if str(x).startswith('--') and x != '--model'][-1]}")
def test_an_output_path_that_is_a_folder_is_one_line_before_any_work(argv, tmp_path, capsys):
    folder = tmp_path / "already_a_folder"
    folder.mkdir()
    code, err = cli([str(folder) if a == "{dir}" else a for a in argv], capsys)
    one_line_error(code, err, "is a folder; give a file name")
    assert list(folder.iterdir()) == []


def test_an_output_on_a_read_only_filesystem_is_one_line(tmp_path, capsys):
    ro = Path("/sys/edgepose-probe.json")
    try:  # /sys is mounted read-only in containers; where it is not, this probe cannot run
        ro.write_text("")
        ro.unlink()
        pytest.skip("/sys is writable here")
    except OSError:
        pass
    code, err = cli(["predict", LSP / "im1001.jpg", "--model", MODEL, "--out", ro], capsys)
    one_line_error(code, err, "cannot write in /sys")


def test_train_output_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    code, err = cli(["train", "--config", ROOT / "configs" / "synth_heatmap_64.yaml",
                     "--out", f], capsys)
    one_line_error(code, err, "is a file, not a folder")


def test_a_binary_training_config_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "weights.yaml"
    cfg.write_bytes(bytes(range(256)) * 8)
    code, err = cli(["train", "--config", cfg], capsys)
    one_line_error(code, err, "not a text file")


# ----------------------------------------------------------------------------- models


def test_onnx_whose_input_disagrees_with_its_metadata_is_refused_at_load(tmp_path, capsys):
    bad = edited_onnx(tmp_path)
    for argv in (["predict", LSP / "im1001.jpg", "--model", bad, "--out", tmp_path / "r.json"],
                 ["run", "--model", bad, "--source", "demo", "--headless", "--frames", "2"],
                 ["eval", bad, "--data", COCO / "person_keypoints.json", "--images", COCO],
                 ["calibrate", bad, "--data", LSP, "--out", tmp_path / "q.onnx"]):
        code, err = cli(argv, capsys)
        one_line_error(code, err, "but its metadata says Bx3x96x96")


def test_serve_refuses_an_onnx_whose_input_disagrees_with_its_metadata(tmp_path, capsys):
    """Checked before the server starts (no serving venv needed: it never gets that far)."""
    bad = edited_onnx(tmp_path)
    code, err = cli(["serve", bad], capsys)
    one_line_error(code, err, "but its metadata says Bx3x96x96")


def test_label_names_and_counts_unusable_images(photos, tmp_path, capsys):
    """`edgepose label` on a folder with an empty and a truncated image: both named on
    stderr, counted in the summary, the readable ones labelled."""
    from edgepose.models import movenet_import

    if not (movenet_import.home() / "movenet_thunder.onnx").is_file():
        pytest.skip("MoveNet Thunder not imported (edgepose weights import movenet-thunder)")
    (photos / "empty.jpg").write_bytes(b"")
    data = (LSP / "im1004.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(data[: len(data) // 2])
    out = tmp_path / "labels.json"
    code = main(["label", str(photos), "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "empty.jpg: is empty" in captured.err and "cut.jpg: is truncated" in captured.err
    assert "skipped 2 unusable image(s)" in captured.out
    assert len(json.loads(out.read_text())["images"]) == 3
