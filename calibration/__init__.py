"""INT8 calibration: one calibration stream feeding both INT8 paths.

* :mod:`calibration.stream` — images / video frames / COCO person crops through the model's
  own preprocessing, in (B, 3, H, W) float32 batches;
* :mod:`calibration.qdq` — ONNX Runtime ``quantize_static`` -> symmetric Q/DQ INT8 ONNX
  (CPU INT8, and the explicit-quantization input of TensorRT 10/11);
* :mod:`calibration.trt_calibrator` — TensorRT entropy calibrator (8.5-10.x) and the route
  choice per TensorRT version; :mod:`calibration.cache` — fingerprinted calibration caches;
* :mod:`calibration.report` — FP32 vs INT8 accuracy and latency.

Nothing heavy is imported here.
"""
