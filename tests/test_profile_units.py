"""Unit tests of the profiling package on plain data: option parsing, the support matrix,
sweep planning, timing statistics, memory measurement, report writers, plots, system info,
checkpoint matching. No network is built here (fast)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from edgepose.errors import EdgeposeError
from edgepose.metadata import ModelMeta
from edgepose.errors import ProfileError
from edgepose.app.profiling import checkpoints as ckpts
from edgepose.app.profiling import sweep as sw
from edgepose.app.profiling.measure import PeakMemory
from edgepose.app.profiling.results_files import read_csv, to_csv, to_markdown, write_csv
from edgepose.app.profiling.run_points import COLUMNS, REQUIRED_OK, SweepOptions, Sweep, missing_required
from edgepose.app.profiling.sysinfo import cpu_info, ram_gb

# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("text, expected", [
    ("64", (64, 64)), ("256x192", (256, 192)), (" 96 X 128 ", (96, 128)), ("128×96", (128, 96)),
])
def test_parse_size(text, expected):
    assert sw.parse_size(text) == expected, f"{text!r} should parse to (H, W) = {expected}"


@pytest.mark.parametrize("bad", ["", "abc", "64x", "x64", "8", "64x8", "-64", "64.5", "1e3"])
def test_parse_size_rejects(bad):
    with pytest.raises(ProfileError, match="size"):
        sw.parse_size(bad)


def test_parse_sizes_list_and_labels():
    sizes = sw.parse_sizes("64, 96,128,64,256x192")
    assert sizes == [(64, 64), (96, 96), (128, 128), (256, 192)], "duplicates dropped, order kept"
    assert [sw.size_label(s) for s in sizes] == ["64", "96", "128", "256x192"]
    assert issubclass(ProfileError, EdgeposeError), "CLI prints ProfileError without traceback"
    with pytest.raises(ProfileError, match="empty"):
        sw.parse_sizes(" , ")


# ----------------------------------------------------------------------------- heads etc.


def test_parse_heads():
    heads = sw.parse_heads("heatmap,dsnt,nerpe-dense,nerpe-dense:128,nerpe-progressive:16,2,2,2")
    assert [h.label for h in heads] == [
        "heatmap", "dsnt", "nerpe-dense", "nerpe-dense:128", "nerpe-progressive:16,2,2,2"]
    assert [h.head for h in heads] == ["heatmap", "dsnt", "nerpe", "nerpe", "nerpe"]
    assert heads[0].decoder_dict == {}
    assert heads[2].decoder_dict == {"mode": "dense", "resolution": sw.NERPE_DENSE_RESOLUTION}
    assert heads[3].decoder_dict == {"mode": "dense", "resolution": 128}
    assert heads[4].decoder_dict == {"mode": "progressive", "coarse": 16, "r": 2, "overlap": 2,
                                     "steps": 2}
    # progressive 16 * 2^2 = effective 64
    assert heads[4].decoder_label.endswith("(=64)"), heads[4].decoder_label
    default_p = sw.parse_head("nerpe-progressive").decoder_dict
    assert default_p == {"mode": "progressive", **sw.NERPE_PROGRESSIVE}


@pytest.mark.parametrize("bad", ["hourglass", "dsnt:3", "nerpe-dense:1", "nerpe-dense:a",
                                 "nerpe-progressive:32,4"])
def test_parse_head_rejects(bad):
    with pytest.raises(ProfileError):
        sw.parse_head(bad)


def test_parse_backends_precisions():
    assert sw.parse_backends("ort,torch,trt,onnxruntime") == ["onnxruntime", "torch", "tensorrt"]
    assert sw.parse_precisions("FP32,int8") == ["fp32", "int8"]
    with pytest.raises(ProfileError, match="unknown backend"):
        sw.parse_backends("openvino")
    with pytest.raises(ProfileError, match="unknown precision"):
        sw.parse_precisions("bf16")


# ----------------------------------------------------------------------------- support matrix

CPU = sw.Capabilities(device="cpu", cuda=False, tensorrt="", int8_qdq=True)
CPU_NO_CALIB = sw.Capabilities(device="cpu", int8_qdq=False)
GPU_TRT = sw.Capabilities(device="cuda", cuda=True, tensorrt="10.3.0", int8_qdq=True)
GPU_NO_TRT = sw.Capabilities(device="cuda", cuda=True, tensorrt="", int8_qdq=True)


@pytest.mark.parametrize("caps, backend, precision, reason", [
    (CPU, "onnxruntime", "fp32", None),
    (CPU, "torch", "fp32", None),
    (CPU, "onnxruntime", "int8", None),
    (CPU_NO_CALIB, "onnxruntime", "int8", "calibration"),
    (CPU, "torch", "int8", "not supported by the torch backend"),
    (CPU, "torch", "fp16", "needs a CUDA GPU"),
    (CPU, "onnxruntime", "fp16", "TensorRT or PyTorch on CUDA"),
    (CPU, "tensorrt", "fp32", "not installed"),
    (GPU_NO_TRT, "tensorrt", "fp16", "not installed"),
    (sw.Capabilities(device="cpu", cuda=True, tensorrt="10.3.0"), "tensorrt", "fp32", "CUDA GPU"),
    (GPU_TRT, "tensorrt", "fp32", None),
    (GPU_TRT, "tensorrt", "fp16", None),
    (GPU_TRT, "tensorrt", "int8", None),
    (GPU_TRT, "torch", "fp16", None),
    (GPU_TRT, "onnxruntime", "fp16", "TensorRT or PyTorch on CUDA"),
])
def test_unsupported_reason(caps, backend, precision, reason):
    got = sw.unsupported_reason(backend, precision, caps)
    if reason is None:
        assert got is None, f"{backend}/{precision} should be supported on {caps}, got {got!r}"
    else:
        assert got is not None and reason in got, f"{backend}/{precision}: {got!r}"


def test_plan_points_keeps_skipped_points_with_reason():
    axes = sw.SweepAxes(sizes=[(64, 64), (256, 192)], heads=sw.parse_heads("dsnt,nerpe-dense"),
                        backbones=["resnet18"], backends=["onnxruntime", "torch", "tensorrt"],
                        precisions=["fp32", "int8"])
    points = sw.plan_points(axes, CPU)
    assert len(points) == 2 * 2 * 1 * 3 * 2, "one point per combination"
    assert [p.index for p in points] == list(range(len(points)))
    skipped = {(p.backend, p.precision) for p in points if p.skip}
    assert skipped == {("torch", "int8"), ("tensorrt", "fp32"), ("tensorrt", "int8")}
    # one network's points are consecutive (built/exported once)
    keys = [p.model_key for p in points]
    for key in set(keys):
        idx = [i for i, k in enumerate(keys) if k == key]
        assert idx == list(range(idx[0], idx[0] + len(idx))), f"{key}: points not adjacent"


def test_skipped_point_row_records_reason(tmp_path):
    axes = sw.SweepAxes(sizes=[(64, 64)], heads=sw.parse_heads("dsnt"), backbones=["resnet18"],
                        backends=["torch"], precisions=["int8"])
    (point,) = sw.plan_points(axes, CPU)
    sweep = Sweep(SweepOptions(work_dir=tmp_path, progress=False))
    row = sweep.run_point(point)
    sweep.close()
    assert row["status"] == "skipped"
    assert "torch backend" in row["note"], row["note"]
    assert set(COLUMNS) <= set(row), "a skipped row still has every column"


# ----------------------------------------------------------------------------- measurement


def test_peak_memory_sees_an_allocation():
    with PeakMemory("cpu") as mem:
        a = np.ones(40 * 2**20 // 8)  # 40 MiB, touched
        a += 1
        del a
    assert mem.peak_mb is not None and mem.peak_mb >= 30, f"peak {mem.peak_mb} MiB for 40 MiB"
    with PeakMemory("cpu") as small:
        _ = np.ones(1000)
    assert small.peak_mb < mem.peak_mb


# ----------------------------------------------------------------------------- reports


def _row(i, head, size, fps, pck=""):
    row = {c: "" for c in COLUMNS}
    row.update(point=i, backbone="resnet18", head=head, decoder="", input=size,
               backend="onnxruntime", precision="fp32", device="cpu", threads=2, status="ok",
               trained="yes" if pck != "" else "no", params_m=1.5, gflops=0.25 * (i + 1),
               latency_ms=1000.0 / fps, p90_ms=1100.0 / fps, p99_ms=1200.0 / fps, fps_b1=fps,
               fps_batch=fps * 1.5, batch=4, peak_mem_mb=20.0, **{"pck@0.05": pck})
    return row


def test_csv_and_markdown(tmp_path):
    rows = [_row(0, "dsnt", "64", 200.0), _row(1, "dsnt", "256x192", 50.0)]
    skipped = {c: "" for c in COLUMNS}
    skipped.update(point=2, backbone="resnet18", head="dsnt", input="64", backend="tensorrt",
                   precision="fp16", status="skipped", trained="no",
                   note="TensorRT is not installed")
    rows.append(skipped)
    path = write_csv(rows, tmp_path / "r.csv")
    back = read_csv(path)
    assert len(back) == 3 and list(back[0]) == list(COLUMNS)
    assert float(back[1]["latency_ms"]) == pytest.approx(20.0)
    assert back[2]["status"] == "skipped" and back[2]["latency_ms"] == ""
    assert all(missing_required(r) == [] for r in rows[:2])
    assert missing_required({**rows[0], "p99_ms": float("nan")}) == ["p99_ms"]
    md = to_markdown(rows, system={"machine": {"cpu_model": "TestCPU", "cpus_usable": 2},
                                   "versions": {"torch": "9.9"}})
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(table) == 2 + 2, "header, rule and one line per measured point"
    assert "| 256x192 |" in table[3] and "| 20.00 |" in table[3]
    assert "TestCPU" in md and "torch 9.9" in md
    assert "tensorrt/fp16: **skipped**: TensorRT is not installed" in md
    assert "PCK" not in table[0], "accuracy columns empty in every row are dropped"
    # CSV is parseable by the csv module with the same header
    assert next(csv.reader(io.StringIO(to_csv([])))) == list(COLUMNS)


def test_plots_with_and_without_accuracy(tmp_path):
    import matplotlib.image as mpimg

    from edgepose.app.profiling.plots import (plot_accuracy_vs_fps, plot_latency_vs_resolution,
                                          series)

    speed = [_row(0, "dsnt", "64", 200.0), _row(1, "dsnt", "128", 80.0),
             _row(2, "heatmap", "64", 150.0)]
    acc = [_row(0, "dsnt", "64", 200.0, 0.5), _row(1, "dsnt", "128", 80.0, 0.7),
           _row(2, "heatmap", "64", 150.0, 0.4), _row(3, "heatmap", "128", 60.0)]
    lines = series(acc, y="pck@0.05", x="fps_b1")
    assert sorted(lines) == ["dsnt", "heatmap"], "one line per head"
    assert [p[2] for p in lines["dsnt"]] == ["64", "128"], "one marker per resolution"
    assert len(lines["heatmap"]) == 1, "the speed-only heatmap point is not on the accuracy plot"
    for name, rows in (("speed", speed), ("acc", acc), ("empty", [])):
        for fn in (plot_accuracy_vs_fps, plot_latency_vs_resolution):
            out = fn(rows, tmp_path / f"{name}_{fn.__name__}.png")
            img = mpimg.imread(out)
            assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, out


# ----------------------------------------------------------------------------- system info


def test_cpu_info_and_ram_parsing():
    info = cpu_info("processor : 0\nmodel name : Test CPU 9000\nflags : fpu avx2 avx512_vnni sse\n"
                    "processor : 1\nmodel name : Test CPU 9000\n")
    assert info == {"cpu_model": "Test CPU 9000", "cpu_flags": ["avx2", "avx512_vnni"]}
    assert ram_gb("MemTotal:       16000000 kB\nMemFree: 1 kB\n") == pytest.approx(16.4)


# ----------------------------------------------------------------------------- checkpoints


def _entry(head, size, key=None, backbone="resnet18"):
    from pathlib import Path

    meta = ModelMeta(head=head, backbone=backbone, input_size=size)
    return ckpts.CheckpointEntry(Path(f"/x/{head}-{size[0]}x{size[1]}.pt"), meta, key)


def test_checkpoint_matching():
    axes = sw.SweepAxes(sizes=[(64, 64), (128, 128)],
                        heads=sw.parse_heads("dsnt,nerpe-dense,nerpe-progressive"),
                        backbones=["resnet18", "mobilenetv3_large_100"])
    points = sw.plan_points(axes, CPU)
    entries = [_entry("dsnt", (64, 64)), _entry("nerpe", (128, 128), key="nerpe"),
               _entry("heatmap", (64, 64))]
    got = {(p.backbone, p.head.label, p.size): ckpts.match(entries, p) for p in points}
    assert got[("resnet18", "dsnt", (64, 64))] is entries[0]
    assert got[("resnet18", "dsnt", (128, 128))] is None, "size must match"
    assert got[("mobilenetv3_large_100", "dsnt", (64, 64))] is None, "backbone must match"
    # one trained NerPE network serves both decoders
    assert got[("resnet18", "nerpe-dense", (128, 128))] is entries[1]
    assert got[("resnet18", "nerpe-progressive", (128, 128))] is entries[1]
    assert ckpts.unused(entries, points) == [entries[2]]
    only_dense = _entry("nerpe", (128, 128), key="nerpe-dense")
    p_prog = next(p for p in points if p.head.label == "nerpe-progressive" and p.size == (128, 128))
    assert ckpts.match([only_dense], p_prog) is None, "a head key restricts the match"


def test_checkpoint_args_read_files(tmp_path):
    import torch

    from edgepose.checkpoint import save_checkpoint

    meta = ModelMeta(head="dsnt", backbone="resnet18", input_size=(64, 64))
    run = tmp_path / "run"
    for name in ("last.pt", "best.pt"):
        save_checkpoint(run / name, torch.nn.Linear(1, 1), meta)
    entries = ckpts.parse_checkpoint_args([str(tmp_path)])
    assert [e.path.name for e in entries] == ["best.pt", "last.pt"], "best.pt preferred"
    assert entries[0].meta.input_size == (64, 64) and entries[0].key is None
    keyed = ckpts.parse_checkpoint_args([f"dsnt={run / 'best.pt'}"])
    assert keyed[0].key == "dsnt"
    with pytest.raises(ProfileError, match="it is a dsnt model"):
        ckpts.parse_checkpoint_args([f"heatmap={run / 'best.pt'}"])
    with pytest.raises(ProfileError, match="not found"):
        ckpts.parse_checkpoint_args([str(tmp_path / "nope.pt")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProfileError, match="no checkpoints"):
        ckpts.parse_checkpoint_args([str(tmp_path / "empty")])


def test_required_columns_are_columns():
    assert set(REQUIRED_OK) <= set(COLUMNS)
