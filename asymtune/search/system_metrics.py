"""System metrics of a trial (``mlflow.system_metrics=true``): CPU, memory and, on CUDA, the GPU of
the process that trains, sampled at every epoch's report.

They are named as MLflow names its own system metrics (``system/cpu_utilization_percentage``,
``system/gpu_0_memory_usage_megabytes``, ...), so the MLflow UI shows them in the run page's
"System metrics" tab. MLflow's own monitor (``mlflow.start_run(log_system_metrics=True)``) cannot
be used: it writes from the process that owns the run, and a trial's run is written by the Tune
driver (:mod:`asymtune.tracking.mlflow_tracker`), possibly on another node; so the trial samples its
own machine and reports the values with its results. CPU utilisation is the mean since the
previous sample (the epoch); memory and GPU are read at the report.
"""

from __future__ import annotations

import psutil
import torch

_MB = 1e6  # MLflow's megabytes


class SystemMetrics:
    """Samples this process and its machine.

    Args:
        device: the device the trial trains on; a CUDA device adds its memory and utilisation.

    Example:
        >>> sampler = SystemMetrics(torch.device("cpu"))
        >>> values = sampler.sample()
        >>> sorted(values)[:2]
        ['system/cpu_utilization_percentage', 'system/process_cpu_utilization_percentage']
        >>> 0 <= values["system/system_memory_usage_percentage"] <= 100
        True
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.process = psutil.Process()
        psutil.cpu_percent(interval=None)  # the first call starts the interval that sample() ends
        self.process.cpu_percent(interval=None)

    def sample(self) -> dict[str, float]:
        """``{"system/<name>": value}`` now; CPU figures are means since the previous call."""
        memory = psutil.virtual_memory()
        values = {
            "system/cpu_utilization_percentage": float(psutil.cpu_percent(interval=None)),
            "system/system_memory_usage_megabytes": memory.used / _MB,
            "system/system_memory_usage_percentage": memory.used / memory.total * 100,
            "system/process_cpu_utilization_percentage": float(self.process.cpu_percent(interval=None)),
            "system/process_memory_rss_megabytes": self.process.memory_info().rss / _MB,
        }
        if self.device.type == "cuda":
            values.update(_gpu(self.device))
        return values


def _gpu(device: torch.device) -> dict[str, float]:
    """The trial's GPU: memory used on the device (every process's), and its utilisation when NVML
    is there to read it (``nvidia-ml-py``)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    free, total = torch.cuda.mem_get_info(index)
    prefix = f"system/gpu_{index}_"
    values = {
        prefix + "memory_usage_megabytes": (total - free) / _MB,
        prefix + "memory_usage_percentage": (total - free) / total * 100,
    }
    try:
        values[prefix + "utilization_percentage"] = float(torch.cuda.utilization(index))
    except Exception:  # no NVML (nvidia-ml-py), or it failed: memory only; a metric never stops a trial
        pass
    return values
