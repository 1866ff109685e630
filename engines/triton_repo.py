"""A Triton model repository for a stock Triton server (no edgepose on the server).

    edgepose export MODEL.onnx|MODEL.engine|CKPT.pt --triton-repo DIR

writes ``DIR/edgepose_pose/config.pbtxt`` and ``DIR/edgepose_pose/1/model.onnx`` (platform
``onnxruntime_onnx``) or ``.../1/model.plan`` (``tensorrt_plan``: the raw TensorRT plan
taken out of edgepose's engine file -- a stock server runs it only with the TensorRT
version and GPU it was built for). The config declares the I/O the model really has
(input ``image`` (3, H, W) FP32; outputs ``coords`` (K, 2), ``scores`` (K,)), dynamic
batching, the instance group, and the model's edgepose metadata as the parameter
``edgepose_meta`` (what ``edgepose run --server`` rebuilds its preprocessing from).

:func:`parse_config` reads the text back with Triton's own protobuf schema
(``tritonclient``'s ``model_config_pb2``), so a field Triton does not know fails here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgepose.engines.triton_backend import META_PARAM, POSE_MODEL
from edgepose.errors import EngineError
from edgepose.metadata import ModelMeta



def config_text(meta: ModelMeta, platform: str, max_batch: int, max_delay_us: int,
                instances: int, kind: str, name: str = POSE_MODEL) -> str:
    """config.pbtxt for the pose model ``meta`` describes."""
    if platform not in ("onnxruntime_onnx", "tensorrt_plan"):
        raise EngineError(f"unknown Triton platform {platform!r}")
    if kind not in ("KIND_CPU", "KIND_GPU"):
        raise EngineError(f"instance kind must be KIND_CPU or KIND_GPU, got {kind!r}")
    h, w = meta.input_size
    k = meta.num_joints
    meta_json = json.dumps(meta.to_dict(), sort_keys=True)
    return "\n".join([
        f'name: "{name}"',
        f'platform: "{platform}"',
        f"max_batch_size: {int(max_batch)}",
        f'input [ {{ name: "image" data_type: TYPE_FP32 dims: [ 3, {h}, {w} ] }} ]',
        "output [",
        f'  {{ name: "coords" data_type: TYPE_FP32 dims: [ {k}, 2 ] }},',
        f'  {{ name: "scores" data_type: TYPE_FP32 dims: [ {k} ] }}',
        "]",
        f"dynamic_batching {{ max_queue_delay_microseconds: {int(max_delay_us)} }}",
        f"instance_group [ {{ count: {int(instances)} kind: {kind} }} ]",
        f"parameters {{ key: \"{META_PARAM}\" value {{ string_value: {json.dumps(meta_json)} }} }}",
        "",
    ])


def schema_available() -> bool:
    """Is Triton's ModelConfig schema (tritonclient's gRPC protobufs) importable here?"""
    try:
        from google.protobuf import text_format  # noqa: F401
        from tritonclient.grpc import model_config_pb2  # noqa: F401
    except ImportError:
        return False
    return True


def parse_config(text: str):
    """The config parsed by Triton's ModelConfig protobuf schema (EngineError if it does
    not parse); needs tritonclient."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise EngineError("checking a Triton config needs tritonclient: pip install "
                          "'edgepose[serve]'") from None
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as e:
        raise EngineError(f"config.pbtxt does not parse as Triton's ModelConfig: {e}") from None


def check_against_onnx(config, onnx_path) -> None:
    """The parsed config's inputs / outputs are the ONNX graph's: names, element type
    FP32, and shapes (batch dim aside); EngineError naming the first difference."""
    from edgepose.engines.meta_io import load_onnx

    graph = load_onnx(onnx_path).graph
    real = {v.name: [d.dim_value or -1 for d in v.type.tensor_type.shape.dim][1:]
            for v in list(graph.input) + list(graph.output)}
    declared = {t.name: list(t.dims) for t in list(config.input) + list(config.output)}
    for name, dims in declared.items():
        if name not in real:
            raise EngineError(f"config declares {name!r}, which {onnx_path} does not have "
                              f"(it has {sorted(real)})")
        if any(r not in (-1, d) for r, d in zip(real[name], dims)) or len(real[name]) != len(dims):
            raise EngineError(f"config declares {name!r} as {dims}, {onnx_path} has "
                              f"{real[name]} (batch aside)")
    from tritonclient.grpc import model_config_pb2

    for t in list(config.input) + list(config.output):
        if t.data_type != model_config_pb2.TYPE_FP32:
            raise EngineError(f"config declares {t.name!r} with data type {t.data_type}, "
                              "the model's is FP32")


def write_repository(model: Path, out_dir: Path, max_batch: int = 16,
                     max_delay_us: int = 2000, instances: int = 1, kind: str | None = None,
                     name: str = POSE_MODEL) -> Path:
    """Write the repository for an edgepose ``.onnx`` or ``.engine``; returns the model
    folder. ``kind`` defaults to KIND_CPU for ONNX, KIND_GPU for an engine."""
    from edgepose.engines.meta_io import read_meta

    model, out_dir = Path(model), Path(out_dir)
    if not model.is_file():
        raise EngineError(f"{model}: model file not found")
    suffix = model.suffix.lower()
    meta = read_meta(model)
    if suffix == ".onnx":
        from edgepose.engines.meta_io import load_onnx

        dim = load_onnx(model).graph.input[0].type.tensor_type.shape.dim[0]
        if dim.dim_value:
            raise EngineError(f"{model}: its batch is fixed at {dim.dim_value}; Triton's "
                              "dynamic batcher needs a dynamic batch: export it again "
                              "without --static-batch")
        platform, file_name, kind = "onnxruntime_onnx", "model.onnx", kind or "KIND_CPU"
    elif suffix in (".engine", ".plan"):
        from edgepose.engines.plan_format import read_plan

        pf = read_plan(model, kind="pose")
        lo, hi = (pf.info.get("batch_range") or [1, 1])
        if max_batch > int(hi):
            raise EngineError(f"{model}: the engine was built for batches {lo}-{hi}; use "
                              f"--max-batch {hi} or rebuild it with a larger --max-batch")
        platform, file_name, kind = "tensorrt_plan", "model.plan", kind or "KIND_GPU"
    else:
        raise EngineError(f"{model}: a Triton repository is written from an .onnx or "
                          ".engine file")
    text = config_text(meta, platform, max_batch, max_delay_us, instances, kind, name)
    if schema_available():  # checked against Triton's own schema and the graph's real I/O
        config = parse_config(text)
        if platform == "onnxruntime_onnx":
            check_against_onnx(config, model)
    folder = out_dir / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    if platform == "onnxruntime_onnx":
        shutil.copyfile(model, folder / "1" / file_name)
    else:
        (folder / "1" / file_name).write_bytes(pf.plan)
    (folder / "config.pbtxt").write_text(text)
    return folder
