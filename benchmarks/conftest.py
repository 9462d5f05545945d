"""fer-edge latency benchmarks (``pytest benchmarks``): shared fixtures and the ratio summary.

Five groups, each printed by pytest-benchmark as one table, then compared by this file's
``pytest_terminal_summary`` as speed-ups against the group's baseline:

1. ``test_bench_parse.py``       FER2013 CSV -> normalised float32: seed-style pandas, numpy, C++, raw read
2. ``test_bench_preprocess.py``  face crops -> model batch: numpy/OpenCV reference vs the C++ fused kernel
3. ``test_bench_models.py``      per-model latency: PyTorch eager, ONNX Runtime fp32 / int8 (CUDA when present)
4. ``test_bench_stream.py``      frames per second of the webcam loop on a 640x480 video with one face
5. ``test_bench_serving.py``     predictions per second with 1, 2 and 4 threads sharing one Predictor

Sizes come from FER_BENCH_* environment variables (``bench_settings.py``); ``FER_BENCH_SMOKE=1``
is CI's quick mode. ``--benchmark-json PATH`` stores the results with the machine description
and the skipped cases; ``python benchmarks/report.py PATH --readme README.md`` turns them into
the README's performance section. docs/BENCHMARKS.md explains how to read the numbers.
"""
from __future__ import annotations

import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from bench_machine import describe_load, machine_summary, usable_cores
from bench_ratios import STAT, compare, model_pivot_lines, skipped_from_records, terminal_lines
from bench_settings import BenchSettings, load_settings

# tests/synthetic.py (generated FER2013 files) serves the benchmarks too; it is not in the wheel.
# Appended, so the benchmarks' own modules come first.
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))

SETTINGS = pytest.StashKey[BenchSettings]()
SKIPPED = pytest.StashKey[list]()
LOAD = pytest.StashKey[list]()
COMMAND = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SETTINGS] = load_settings()
    config.stash[SKIPPED] = []
    config.stash[LOAD] = []
    config.stash[COMMAND] = _command_line(config)


def _command_line(config: pytest.Config) -> str:
    """The command as a user would retype it (FER_BENCH_* variables included)."""
    prog = Path(sys.argv[0]).name
    if prog in ("__main__.py", "-c") or prog.startswith("python"):
        prog = "python -m pytest"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in config.stash[SETTINGS].env.items())
    args = " ".join(shlex.quote(a) for a in config.invocation_params.args)
    return " ".join(x for x in (env, prog, args) if x)


def pytest_report_header(config: pytest.Config) -> list[str]:
    s = config.stash[SETTINGS]
    what = [f"fer-edge benchmarks: {s.mode} mode"]
    if s.smoke:
        what.append("small sizes, one round of the slow cases: the numbers are not representative")
    return ["; ".join(what)]


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def bench_settings(pytestconfig: pytest.Config) -> BenchSettings:
    return pytestconfig.stash[SETTINGS]


@pytest.fixture(scope="session", autouse=True)
def _threads() -> int:
    """Every engine gets all usable cores: PyTorch, ONNX Runtime and the C++ kernels alike."""
    n = usable_cores()
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    return n


@pytest.fixture(autouse=True)
def _sample_load(pytestconfig: pytest.Config) -> None:
    """The 1-minute load average before each test: the README says when the machine was busy."""
    try:
        pytestconfig.stash[LOAD].append(os.getloadavg()[0])
    except (AttributeError, OSError):
        pass


@pytest.fixture
def describe(benchmark) -> Callable[..., None]:
    """``describe(group, label, role="", subgroup="", items=1, item="call", family="", ...)``:
    name the case for the tables and the ratio summary (see bench_ratios.py)."""

    def _describe(group: str, label: str, *, role: str = "", subgroup: str = "", items: int = 1,
                  item: str = "call", family: str = "", row: str = "", note: str = "",
                  target_rate: Optional[float] = None, **extra: Any) -> None:
        benchmark.group = group
        benchmark.extra_info.update(
            label=label, role=role, subgroup=subgroup, items=int(items), item=item, family=family,
            row=row, note=note, **({"target_rate": target_rate} if target_rate else {}), **extra,
        )

    return _describe


@pytest.fixture
def not_measured(pytestconfig: pytest.Config) -> Callable[..., None]:
    """``not_measured(group, label, reason, subgroup="", family="", row="")``: record a case that
    cannot run here (listed under its ratio table and in the JSON), then skip it with ``reason``."""

    def _skip(group: str, label: str, reason: str, *, subgroup: str = "", family: str = "", row: str = "") -> None:
        pytestconfig.stash[SKIPPED].append(
            {"group": group, "subgroup": subgroup, "label": label, "reason": reason, "family": family, "row": row}
        )
        pytest.skip(f"{label} not measured: {reason}")

    return _skip


@pytest.fixture(scope="session")
def bench_cache() -> Path:
    """``$TMPDIR/fer-edge-bench``: generated inputs (a 300 MB CSV at full size) kept between runs,
    outside the repository."""
    d = Path(tempfile.gettempdir()) / "fer-edge-bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---------------------------------------------------------------------------- JSON and summary
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    machine_info["fer_edge"] = machine_summary()


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    s = config.stash[SETTINGS]
    output_json["fer_edge"] = {
        "mode": s.mode,
        "command": config.stash[COMMAND],
        "settings": {"rows": s.rows, "seed_rows": s.seed_rows, "csv": str(s.csv) if s.csv else None, "models": s.models,
                     "frames": s.frames, "rounds": s.rounds, "env": s.env},
        "skipped": list(config.stash[SKIPPED]),
        "statistic": STAT,
        "load": _load_summary(config.stash[LOAD]),
    }


def _load_summary(samples: list) -> Optional[dict[str, float]]:
    if not samples:
        return None
    return {"mean": round(sum(samples) / len(samples), 2), "max": round(max(samples), 2), "samples": len(samples)}


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """After pytest-benchmark's tables: the speed-ups each group's cases buy over its baseline."""
    bs = getattr(config, "_benchmarksession", None)
    if bs is None:
        return
    skipped = skipped_from_records(config.stash.get(SKIPPED, []))
    records = [b.as_dict(include_data=False) for b in bs.benchmarks if not b.has_error and b]
    if not records and not skipped:
        return
    tr = terminalreporter
    s = config.stash[SETTINGS]
    mode = "SMOKE MODE (tiny sizes, numbers not representative)" if s.smoke else "full mode"
    tr.write_sep("-", f"fer-edge speed-ups, {mode}: fastest round per call; ratios per row/face/frame")
    if bs.disabled:
        tr.write_line("benchmarks were disabled (--benchmark-disable): no timings to compare")
    comparisons = compare(records, skipped)
    busy = describe_load(_load_summary(config.stash[LOAD]), usable_cores())
    if busy:
        tr.write_line(busy)
    for line in terminal_lines(comparisons) + model_pivot_lines(comparisons):
        tr.write_line(line)
    if skipped:
        tr.write_line("")
        tr.write_line(f"{len(skipped)} case(s) not measured on this machine (reasons above).")


@pytest.fixture(scope="session")
def sample_frame():
    """The packaged sample photo on a plain background: a 640x480 BGR frame with one face of
    about 80 px (groups 2 and 2b; the content does not change what they cost)."""
    import cv2
    import numpy as np

    from fer_edge.runtime.default_model import sample_image_path

    img = cv2.imread(str(sample_image_path()), cv2.IMREAD_COLOR)
    out = np.full((480, 640, 3), 90, dtype=np.uint8)
    out[80:400, 160:480] = img
    return out
