"""Step 4: the adapted model as ONNX whose metadata records the adaptation (footage
hashes, teacher, epochs, hold-out), its weights beside it, optionally INT8 on the footage."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

from edgepose.app.adapting.base_model import BaseModel
from edgepose.app.adapting.options import AdaptOptions
from edgepose.data.footage import FootageFrame


def adaptation_record(opts: AdaptOptions, base: BaseModel, hashes: list[dict],
                      frames: list[FootageFrame], hold_frames: list[FootageFrame],
                      teacher: str, counts: tuple[int, int],
                      replay: list[dict[str, Any]]) -> dict[str, Any]:
    """What :attr:`ModelMeta.adaptation` holds: the base, the footage (hash and frames
    sampled per file), the teacher, the training settings, ``counts`` (train, held-out
    people) and where each clip's hold-out starts."""
    return {
        "base": (base.onnx or base.checkpoint).name, "base_onnx": base.onnx.name if base.onnx else None,
        "footage": [{**h, "frames": sum(f.source == h["path"] for f in frames)}
                    for h in hashes],
        "teacher": teacher, "epochs": opts.epochs, "lr": opts.lr,
        "train_people": counts[0], "holdout_people": counts[1],
        "holdout_from": {c: min(f.index for f in hold_frames if f.clip == c)
                         for c in dict.fromkeys(f.clip for f in hold_frames)},
        "replay": [s["ann"] for s in replay], "replay_ratio": opts.replay_ratio if replay else 0,
        "precision": opts.precision,
        "date": datetime.date.today().isoformat(),
    }


def export_adapted(last: Path, adaptation: dict[str, Any], work: Path,
                   opts: AdaptOptions) -> Path:
    """``last.pt`` -> ``opts.out`` (ONNX; with ``--precision int8`` the FP32 model is kept as
    ``OUT.fp32.onnx`` and ``OUT`` is its Q/DQ INT8 calibrated on the footage), and
    ``OUT.pt`` beside it so ``adapt --model OUT.onnx`` can adapt it again."""
    from edgepose.checkpoint import load_checkpoint, model_from_payload, pack_checkpoint
    from edgepose.engines.export import ExportOptions, export_model

    payload = load_checkpoint(last)
    model, meta, recipe = model_from_payload(payload, last), payload["meta"], payload.get("config")
    out = Path(opts.out)
    meta = dataclasses.replace(meta, adaptation=adaptation, name=f"{meta.name}-adapted")
    fp32_out = out.with_suffix(".fp32.onnx") if opts.precision == "int8" else out
    export_model(model, meta, fp32_out, ExportOptions(), progress=opts.progress,
                 recipe=recipe if isinstance(recipe, dict) else None)
    pack_checkpoint(last, out.with_suffix(".pt"), meta=meta)
    if opts.precision == "int8":
        quantize_on_footage(fp32_out, out, work, meta, opts)
    return out


def quantize_on_footage(fp32: Path, out: Path, work: Path, meta, opts: AdaptOptions) -> None:
    """Q/DQ INT8 of ``fp32`` calibrated on the work folder's training frames."""
    from edgepose.calibration.qdq import quantize_qdq, target_config
    from edgepose.calibration.stream import CalibrationStream, StreamConfig

    stream = CalibrationStream(str(work / "train.json"), meta,
                               StreamConfig(count=256, batch=8, seed=opts.seed,
                                            progress=opts.progress),
                               image_root=str(work / "frames"))
    quantize_qdq(fp32, out, stream, meta, target_config(opts.target))
