"""Where and in what precision training computes: device, threads, AMP dtype, memory format.

Each decision is made once per run from the user's flags and the hardware, and the same
rules serve ``eval`` of a checkpoint, which picks its device without the training loop.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch

from fer_edge.errors import DeviceError

from .models import get_spec


def device_name(device: torch.device) -> str:
    """``NVIDIA H100 80GB HBM3`` or ``Intel(R) Xeon(R) Processor, 2 threads``: where a run trained."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda requested but no CUDA device is available (use --device cpu)")
        return torch.device("cuda", local_rank)
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"unknown device {name!r}; use auto, cuda or cpu")


def resolve_amp(amp: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype, or None for fp32.

    On CUDA: bf16 where the GPU has it (no loss scaling needed), else fp16 with a
    GradScaler. On the CPU ``auto`` means fp32: see docs/TRAINING.md for the bf16
    measurements behind that default.
    """
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise DeviceError("--amp fp16 needs CUDA; use --amp bf16 or off on the CPU")
        return torch.float16
    if amp == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None
    raise DeviceError(f"unknown --amp {amp!r}; use auto, off, bf16 or fp16")


def resolve_channels_last(flag: str, device: torch.device, model: str) -> bool:
    """auto: always on CUDA; on the CPU only for models measured faster that way."""
    if flag == "on":
        return True
    if flag == "off":
        return False
    return device.type == "cuda" or get_spec(model).cpu_channels_last


def configure_backends(device: torch.device, threads: Optional[int], world_size: int) -> None:
    """Thread count (``threads``; None for the default) and the cuDNN/TF32 flags, for this process."""
    if device.type == "cpu":
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // world_size))
    elif threads:
        torch.set_num_threads(threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
