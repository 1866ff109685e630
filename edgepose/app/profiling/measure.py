"""Peak-memory harness of ``edgepose profile`` (timing is the one harness in
:mod:`edgepose.engines.timing`).

Peak memory: CPU resident set (``VmHWM`` from ``/proc/self/status`` after resetting it
through ``/proc/self/clear_refs``; a sampling thread where that reset is not allowed) or
CUDA allocator peak when the run is on a GPU.
"""

from __future__ import annotations

import gc
import threading
import time


def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float | None:
    """Current resident set size in MiB (None where /proc is unavailable)."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so the next point's
    RSS delta is not hidden by memory the previous point freed but still held."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except Exception:
        pass


class PeakMemory:
    """Context manager: ``peak_mb`` = peak memory during the block minus memory before it.

    CPU: peak resident set (VmHWM) after a reset via ``/proc/self/clear_refs`` (Linux >= 4.0),
    else a thread sampling VmRSS every ``interval`` s. CUDA (``device="cuda"``): PyTorch's
    allocator peak plus the drop in free device memory (covers ONNX Runtime / TensorRT).
    """

    def __init__(self, device: str = "cpu", interval: float = 0.005):
        self.device = device
        self.interval = interval
        self.peak_mb: float | None = None
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._sampled_kb = 0

    def __enter__(self) -> "PeakMemory":
        release_memory()
        self._base_kb = _status_kb("VmRSS")
        self._hwm_reset = False
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._hwm_reset = True
        except OSError:
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._cuda_base = torch.cuda.memory_allocated()
            self._cuda_free0 = torch.cuda.mem_get_info()[0]
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            kb = _status_kb("VmRSS") or 0
            self._sampled_kb = max(self._sampled_kb, kb)
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch_peak = torch.cuda.max_memory_allocated() - self._cuda_base
            other = self._cuda_free0 - torch.cuda.mem_get_info()[0]
            self.peak_mb = max(torch_peak, other, 0) / 2**20
            return
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            peak_kb = self._sampled_kb
        else:
            peak_kb = _status_kb("VmHWM") if self._hwm_reset else None
        if peak_kb is None or self._base_kb is None:
            self.peak_mb = None
        else:
            self.peak_mb = max(peak_kb - self._base_kb, 0) / 1024.0
