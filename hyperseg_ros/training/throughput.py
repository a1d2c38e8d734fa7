"""How fast training runs and what holds it back: samples/s, the share of the loop spent waiting on
the DataLoader (vs computing), GPU utilisation and peak GPU memory, so that the next run can be sized.

The loop tells the meter when an item arrived and when its step (forward, backward, optimizer,
the loss read back, which waits for the GPU) was done. The first item's wait (worker start-up) is
kept apart. GPU utilisation is sampled every `sample_every_s` seconds through
`torch.cuda.utilization` (NVML), else `nvidia-smi`; where neither answers it is reported as absent.
"""
from __future__ import annotations

import shutil
import statistics
import subprocess
import time

import torch


def gpu_utilization(device: torch.device) -> tuple[float | None, str | None]:
    """(percent busy over the last sample period, source) or (None, None) where nothing answers."""
    if device.type != "cuda":
        return None, None
    try:
        return float(torch.cuda.utilization(device)), "nvml"
    except Exception:  # pynvml missing or NVML unavailable: try the command line tool
        pass
    if shutil.which("nvidia-smi"):
        try:
            index = device.index if device.index is not None else torch.cuda.current_device()
            out = subprocess.run(["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
            return float(out.stdout.strip().splitlines()[0]), "nvidia-smi"
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            pass
    return None, None


class ThroughputMeter:
    def __init__(self, device: torch.device, sample_every_s: float = 5.0):
        self.device, self.sample_every_s = device, sample_every_s
        self.items = self.samples = 0
        self.wait_s = self.compute_s = 0.0
        self.first_item_s: float | None = None
        self.utilization: list[float] = []
        self.utilization_source: str | None = None
        self._last_sample = time.perf_counter()
        self._tick = time.perf_counter()  # end of the last step (or the start of the loop)
        self._got = self._tick

    def arrived(self) -> None:
        """An item came out of the loader."""
        now = time.perf_counter()
        if self.first_item_s is None:
            self.first_item_s = now - self._tick
        else:
            self.wait_s += now - self._tick
        self._got = now

    def computed(self, samples: int) -> None:
        """The item's step is done (the GPU has answered); `samples` image-command pairs in it."""
        now = time.perf_counter()
        self.compute_s += now - self._got
        self.items += 1
        self.samples += samples
        if now - self._last_sample >= self.sample_every_s:
            self._last_sample = now
            value, source = gpu_utilization(self.device)
            if value is not None:
                self.utilization.append(value)
                self.utilization_source = source
        self._tick = time.perf_counter()

    def resume(self) -> None:
        """Time spent between steps on other things (checkpoints, exports) is neither wait nor compute."""
        self._tick = time.perf_counter()

    def summary(self) -> dict:
        """Rates over the time spent waiting and computing, the first item's wait (start-up) excluded."""
        busy = self.wait_s + self.compute_s
        out = {
            "items": self.items, "samples": self.samples,
            "samples_per_s": round(self.samples / busy, 2) if busy > 0 else None,
            "steps_per_s": round(self.items / busy, 3) if busy > 0 else None,
            "data_wait_share": round(self.wait_s / busy, 3) if busy > 0 else None,
            "data_wait_s": round(self.wait_s, 1), "compute_s": round(self.compute_s, 1),
            "first_item_s": None if self.first_item_s is None else round(self.first_item_s, 1),
            "gpu_utilization_percent": ({"mean": round(statistics.fmean(self.utilization), 1),
                                         "median": statistics.median(self.utilization),
                                         "samples": len(self.utilization), "source": self.utilization_source}
                                        if self.utilization else None),
        }
        if self.device.type == "cuda":
            out["peak_memory_MiB"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        return out
