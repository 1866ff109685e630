"""``edgepose profile``: speed / accuracy sweeps over input sizes, heads, backbones,
backends and precisions, written as CSV, Markdown, two PNG plots and system.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgepose.errors import DataError

EPILOG = """\
examples:
  edgepose profile --quick --out runs/profile-quick
  edgepose profile --sizes 64,128,256x192 --heads heatmap,dsnt,nerpe-dense:64,nerpe-progressive \\
      --backbones resnet18,mobilenetv3_large_100 --backends onnxruntime,torch --precisions fp32,int8
  edgepose profile --checkpoint runs/ --data val.json --images images/val --out runs/profile-acc

Heads: heatmap, dsnt, nerpe-dense[:R] (dense decoding on an RxR grid, default 64),
nerpe-progressive[:coarse,r,overlap,steps] (default 32,4,2,1 = effective 128).
Points without a trained checkpoint run with random weights and measure speed only.
Unsupported combinations (e.g. tensorrt without a GPU, int8 on torch) are listed as
skipped with the reason. Ctrl-C stops the sweep and still writes what was measured.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "profile",
        help="speed/accuracy sweep over sizes, heads, backbones, backends, precisions",
        description=(
            "Profile pose models: for every combination of input size, head, backbone,\n"
            "backend and precision measure parameters, GFLOPs, batch-1 latency\n"
            "(median/p90/p99), throughput, peak memory and, with trained checkpoints and a\n"
            "dataset, PCK / mean error / COCO AP. Writes results.csv, results.md,\n"
            "accuracy_vs_fps.png, latency_vs_resolution.png and system.json to --out."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("sweep (comma-separated lists)")
    g.add_argument("--quick", action="store_true",
                   help="tiny preset: sizes 64,128; heads heatmap,dsnt,nerpe-progressive; "
                        "resnet18; onnxruntime,torch; fp32; batch 4; 20 repeats (a few minutes "
                        "on a 2-core CPU); options given explicitly still win")
    g.add_argument("--sizes", help="input sizes: N (NxN) or HxW, e.g. 64,96,128,256x192 "
                                   "(default 64,128,256x192)")
    g.add_argument("--heads", help="heads (default heatmap,dsnt,nerpe-dense,nerpe-progressive)")
    g.add_argument("--backbones", help="timm backbones (default resnet18)")
    g.add_argument("--backends", help="torch, onnxruntime, tensorrt (default onnxruntime)")
    g.add_argument("--precisions", help="fp32, fp16, int8 (default fp32)")
    g.add_argument("--stride", type=int, default=8,
                   help="backbone output stride for untrained points (default 8)")
    t = p.add_argument_group("measurement")
    t.add_argument("--batch", type=int, help="batch size for the throughput column (default 8)")
    t.add_argument("--repeats", type=int, help="timed batch-1 calls per point (default 50)")
    t.add_argument("--warmup", type=int, help="untimed calls before timing (default 10)")
    t.add_argument("--threads", type=int,
                   help="CPU threads for every backend (default: all usable cores)")
    t.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="run on the CPU or a CUDA GPU (default auto)")
    a = p.add_argument_group("accuracy (optional)")
    a.add_argument("--checkpoint", action="append", nargs="+", metavar="[HEAD=]PATH",
                   help="trained checkpoints: head=path, path, or a folder searched for *.pt; "
                        "used by points with the same backbone/head/size (repeatable)")
    a.add_argument("--data", type=Path, help="COCO-format keypoint annotation JSON to evaluate on")
    a.add_argument("--images", type=Path, help="image folder for --data")
    a.add_argument("--eval-limit", type=int, help="evaluate on the first N people only")
    o = p.add_argument_group("output and behaviour")
    o.add_argument("--out", type=Path, default=Path("runs/profile"),
                   help="output folder (default runs/profile)")
    o.add_argument("--calib-count", type=int, default=64,
                   help="INT8 calibration images (from --data, else synthetic; default 64)")
    o.add_argument("--parity", action="store_true",
                   help="check every ONNX export against PyTorch (slower)")
    o.add_argument("--keep-artifacts", action="store_true",
                   help="keep exported .pt/.onnx/.engine files in OUT/artifacts (and the "
                        "synthetic INT8 calibration set in OUT/calibration)")
    o.add_argument("--fail-fast", action="store_true",
                   help="stop at the first failing point (default: record the error and go on)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    o.add_argument("--quiet", action="store_true",
                   help="no progress bar and no table on stdout (the summary lines stay)")
    return p


def sweep_settings(args) -> dict:
    """Preset (--quick or defaults) overridden by explicit options."""
    from edgepose.app.profiling.sweep import DEFAULTS, QUICK

    base = dict(QUICK if args.quick else DEFAULTS)
    for k in base:
        v = getattr(args, k, None)
        if v is not None:
            base[k] = v
    return base


def axes_from_checkpoints(settings: dict, args, entries) -> dict:
    """With checkpoints and no explicit --sizes/--heads/--backbones, sweep what they are."""
    from edgepose.app.profiling.sweep import size_label

    if not entries or args.quick:
        return settings
    s = dict(settings)
    if args.sizes is None:
        s["sizes"] = ",".join(dict.fromkeys(size_label(tuple(e.meta.input_size)) for e in entries))
    if args.backbones is None:
        s["backbones"] = ",".join(dict.fromkeys(e.meta.backbone for e in entries))
    if args.heads is None:
        heads = []
        for e in entries:
            nerpe = e.meta.head == "nerpe"
            heads += ["nerpe-dense", "nerpe-progressive"] if nerpe else [e.meta.head]
        s["heads"] = ",".join(dict.fromkeys(heads))
    return s


def check_positive(name: str, value: int | None) -> None:
    from edgepose.errors import ProfileError

    if value is not None and value < 1:
        raise ProfileError(f"--{name} must be >= 1, got {value}")


def run(args) -> int:
    from edgepose.errors import ProfileError
    from edgepose.app.profiling import checkpoints as ckpts
    from edgepose.app.profiling import sweep as sw
    from edgepose.engines.timing import TimingConfig
    from edgepose.engines.backend import default_threads

    for name in ("batch", "repeats", "threads", "eval_limit", "calib_count", "stride"):
        check_positive(name.replace("_", "-"), getattr(args, name, None))
    if args.warmup is not None and args.warmup < 0:
        raise ProfileError(f"--warmup must be >= 0, got {args.warmup}")
    if (args.data is None) != (args.images is None):
        raise DataError("give --data ann.json and --images DIR together (or neither)")
    if args.data is not None and not args.data.is_file():
        raise DataError(f"{args.data}: annotation file not found; pass a COCO keypoints JSON")
    if args.images is not None and not args.images.is_dir():
        raise DataError(f"{args.images}: image folder not found")
    entries = ckpts.parse_checkpoint_args([v for group in (args.checkpoint or []) for v in group])
    settings = axes_from_checkpoints(sweep_settings(args), args, entries)
    axes = sw.SweepAxes(
        sizes=sw.parse_sizes(settings["sizes"]), heads=sw.parse_heads(settings["heads"]),
        backbones=sw.parse_backbones(settings["backbones"]),
        backends=sw.parse_backends(settings["backends"]),
        precisions=sw.parse_precisions(settings["precisions"]),
    )
    timing = TimingConfig(warmup=int(settings["warmup"]), repeats=int(settings["repeats"]),
                          batch=int(settings["batch"]))
    threads = args.threads or default_threads()
    return run_sweep(axes, timing, threads, entries, args)


def run_sweep(axes, timing, threads: int, entries, args) -> int:
    import torch

    from edgepose.app.profiling import checkpoints as ckpts
    from edgepose.app.profiling import sysinfo
    from edgepose.app.profiling.run_points import EvalData, SweepOptions, Sweep
    from edgepose.app.profiling.sweep import detect_capabilities, plan_points

    torch.set_num_threads(threads)
    caps = detect_capabilities(args.device)
    points = plan_points(axes, caps)
    for e in ckpts.unused(entries, points):
        print(f"edgepose profile: note: {e.path} ({e.meta.name}) matches no point of the sweep",
              file=sys.stderr)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    system = sysinfo.collect(threads)
    system["device"] = caps.device
    busy = busy_warning(system, threads)
    if busy:
        system["warning"] = busy
        print(f"edgepose profile: warning: {busy}", file=sys.stderr)
    sysinfo.write(out / "system.json", system)
    data = EvalData(args.data, args.images, args.eval_limit) if args.data else None
    opts = SweepOptions(
        timing=timing, device=caps.device, threads=threads, stride=args.stride,
        checkpoints=entries, data=data, calib_count=args.calib_count, parity=args.parity,
        ort_providers=caps.ort_providers, fail_fast=args.fail_fast,
        keep_artifacts=args.keep_artifacts,
        work_dir=out if args.keep_artifacts else None, progress=not (args.quiet or args.no_progress),
    )
    rows: list[dict] = []
    sweep = Sweep(opts)

    def save(row: dict) -> None:
        rows.append(row)
        write_outputs(out, rows, system, plots=False)

    try:
        sweep.run(points, on_row=save)
    finally:
        write_outputs(out, rows, system, plots=True,
                      interrupted=getattr(sweep, "interrupted", False), quiet=args.quiet)
    if sweep.interrupted:
        print(f"edgepose profile: interrupted after {len(rows)} of {len(points)} points; "
              f"results so far in {out}", file=sys.stderr)
        return 130
    print_skipped(rows)
    errors = [r for r in rows if r["status"] == "error"]
    if errors:
        print(f"edgepose profile: {len(errors)} point(s) failed; see the note column and "
              f"{out / 'errors.log'}", file=sys.stderr)
        return 1
    return 0


def skipped_summary(rows: list[dict]) -> str | None:
    """One line: how many points were skipped and why (grouped by reason), or None."""
    from collections import Counter

    skipped = Counter(r.get("note", "") or "no reason" for r in rows if r["status"] == "skipped")
    if not skipped:
        return None
    n = sum(skipped.values())
    reasons = "; ".join(f"{c} x {why}" for why, c in skipped.most_common())
    return f"{n} of {len(rows)} point(s) skipped: {reasons}"


def print_skipped(rows: list[dict]) -> None:
    line = skipped_summary(rows)
    if line:
        print(f"edgepose profile: {line}", file=sys.stderr)


def busy_warning(system: dict, threads: int) -> str | None:
    """A warning when other processes already load the CPU: multi-threaded runtimes (PyTorch
    especially) then wait on each other and timings inflate by up to 50x."""
    load = (system["machine"].get("loadavg") or [0.0])[0]
    cores = system["machine"].get("cpus_usable") or 1
    if load < cores * 0.75:
        return None
    hint = "; --threads 1 gives steadier numbers" if threads > 1 else ""
    return (f"the CPU is busy (load average {load:.1f} on {cores} cores): timings will be "
            f"noisy{hint}")


def write_outputs(out: Path, rows: list[dict], system: dict, plots: bool,
                  interrupted: bool = False, quiet: bool = True) -> None:
    """results.csv + results.md (+ errors.log, + the plots at the end)."""
    from edgepose.app.profiling import results_files

    results_files.write_csv(rows, out / "results.csv")
    results_files.write_markdown(rows, out / "results.md", system=system, interrupted=interrupted)
    errs = [r for r in rows if r.get("_traceback")]
    if errs:
        text = "\n".join(f"## point {r['point']} ({r['head']} {r['input']} {r['backend']} "
                         f"{r['precision']})\n{r['_traceback']}" for r in errs)
        (out / "errors.log").write_text(text)
    if not plots:
        return
    from edgepose.app.profiling.plots import plot_accuracy_vs_fps, plot_latency_vs_resolution

    plot_accuracy_vs_fps(rows, out / "accuracy_vs_fps.png")
    plot_latency_vs_resolution(rows, out / "latency_vs_resolution.png")
    if not quiet:
        print(results_files.markdown_table(rows))
        print(f"\nwrote {out}/results.csv, results.md, accuracy_vs_fps.png, "
              "latency_vs_resolution.png, system.json")
