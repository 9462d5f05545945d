"""The machine and software a benchmark run measured, stored in the JSON and shown in the README.

Numbers without the machine they came from are not worth printing: CPU model, how many
cores this process may use, memory, the GPU (when PyTorch sees one), and the versions of
everything on the timed paths.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from importlib import metadata
from typing import Any, Optional


def _version(*dists: str) -> Optional[str]:
    for d in dists:
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            continue
    return None


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo on Linux, sysctl on macOS, platform otherwise)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5)
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def memory_gib() -> Optional[float]:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return round(pages * size / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        return None


def gpu_info() -> dict[str, Any]:
    """The CUDA device PyTorch sees, and what ONNX Runtime offers; never raises."""
    info: dict[str, Any] = {"torch_cuda": False, "device": None, "ort_providers": []}
    try:
        import onnxruntime as ort

        info["ort_providers"] = list(ort.get_available_providers())
    except Exception:  # a broken onnxruntime install is reported by the benchmarks themselves
        pass
    try:
        import torch

        if torch.cuda.is_available():
            info["torch_cuda"] = True
            info["device"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
    except Exception:
        pass
    return info


def native_simd() -> Optional[str]:
    try:
        from fer_edge import _native

        return str(getattr(_native, "SIMD", "unknown"))
    except ImportError:
        return None


def machine_summary() -> dict[str, Any]:
    """Everything the README states about the machine a run used."""
    gpu = gpu_info()
    return {
        "cpu_model": cpu_model(),
        "cores": usable_cores(),
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "gpu": gpu["device"],
        "cuda": gpu.get("cuda"),
        "ort_providers": gpu["ort_providers"],
        "versions": {
            "fer-edge": _version("fer-edge") or _fer_edge_version(),
            "numpy": _version("numpy"),
            "onnxruntime": _version("onnxruntime", "onnxruntime-gpu"),
            "torch": _version("torch"),
            "opencv": _version("opencv-python", "opencv-python-headless", "opencv-contrib-python"),
            "pandas": _version("pandas"),
            "pytest-benchmark": _version("pytest-benchmark"),
        },
        "native_simd": native_simd(),
        "load_average": _load_average(),  # when the results were written; per test: the JSON's fer_edge.load
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
    }


def _load_average() -> Optional[list[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _fer_edge_version() -> Optional[str]:
    try:
        import fer_edge

        return fer_edge.__version__
    except ImportError:
        return None


def describe_machine(m: dict[str, Any]) -> str:
    """One paragraph: 'Intel(R) Xeon(R) ..., 2 cores, 23 GiB, Linux ...; Python 3.11; ...'."""
    v = m.get("versions", {})
    soft = ", ".join(f"{k} {v[k]}" for k in ("onnxruntime", "torch", "numpy", "opencv") if v.get(k))
    hw = f"{m.get('cpu_model', '?')}, {m.get('cores', '?')} cores"
    if m.get("memory_gib"):
        hw += f", {m['memory_gib']:g} GiB RAM"
    gpu = f"GPU: {m['gpu']} (CUDA {m.get('cuda') or '?'})" if m.get("gpu") else "GPU: none"
    simd = f"; fer_edge._native built for {m['native_simd']}" if m.get("native_simd") else ""
    return f"{hw}; {gpu}; {m.get('system', '')}; Python {m.get('python', '?')}; {soft}{simd}"


def describe_load(load: Optional[dict[str, Any]], cores: Optional[int]) -> str:
    """A sentence when other work kept the machine busy during the run (else '')."""
    if not load or not cores or load.get("mean", 0) <= 0.5 * cores:
        return ""
    return (f"The machine was shared with other work: the 1-minute load average was {load['mean']:.1f} on "
            f"average during the run (at most {load['max']:.1f}) on {cores} cores, so absolute times are "
            "pessimistic; the fastest-round statistic limits the damage.")
