"""What machine this runs on, for model cards and benchmark reports."""

import os
import platform

import torch


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: str | torch.device = "cpu") -> str:
    """E.g. "NVIDIA H100 80GB HBM3" or "Intel(R) Xeon(R) ... (2 cores, torch 2.14.1 with 2 threads)"."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()} ({os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads)"
