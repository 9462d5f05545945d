"""What the benchmark suite measures, and at which size: full by default, small in smoke mode.

Every knob is an environment variable, so the same command works locally, in CI and on a
GPU box without editing files:

``FER_BENCH_SMOKE=1``
    CI's smoke mode: small sizes and one round of the slow cases, every code path still
    exercised and every ratio table still printed (the numbers mean nothing).
``FER_BENCH_ROWS=N``
    Rows of the FER2013 CSV for the parse benchmark (full: the real file's rows, or 35,887
    generated ones; smoke: 2,000).
``FER_BENCH_SEED_ROWS=N``
    Rows the seed-style pandas loader is timed on (full: 3,000; smoke: 300): it needs minutes
    for the whole file and is linear in rows, so it is compared per row.
``FER_BENCH_CSV=PATH``
    A real FER2013 CSV to parse. Default: ``../data/fer2013.csv`` next to the repository
    when it exists; otherwise a synthetic file of the same layout is generated (and cached
    in pytest's cache folder). Ignored in smoke mode unless set explicitly.
``FER_BENCH_MODELS=a,b``
    Architectures for the model-latency tables (full: every registered model; smoke:
    ``edgenet,resnet18``). The shipped default model is added whenever it is installed.
``FER_BENCH_FRAMES=N``
    Frames of the generated 640x480 video for the end-to-end stream benchmark (full: 300,
    smoke: 30).
``FER_BENCH_ROUNDS=N``
    Rounds of the end-to-end stream runs (full: 3, smoke: 1). The other cases are timed by
    pytest-benchmark's own calibration (``--benchmark-min-rounds``, ``--benchmark-max-time``),
    except the seed-style loader, which runs once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
FULL_FER2013_ROWS = 35_887  # rows of Kaggle's fer2013.csv (Training + PublicTest + PrivateTest)
DEFAULT_REAL_CSV = REPO_ROOT.parent / "data" / "fer2013.csv"
SMOKE_MODELS = ("edgenet", "resnet18")
MODEL_BATCHES = (1, 32)
PREPROCESS_BATCHES = (1, 32)
STREAM_TARGET_FPS = 60.0  # the target of the webcam loop with YuNet and alignment, one face, 640x480, 2 cores


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"benchmarks: {name} must be a whole number, got {text!r}") from None
    if value < 1:
        raise SystemExit(f"benchmarks: {name} must be at least 1, got {value}")
    return value


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class BenchSettings:
    smoke: bool
    rows: Optional[int]  # None: all rows of the real CSV (or FULL_FER2013_ROWS generated)
    seed_rows: int  # rows the seed-style loader is timed on
    csv: Optional[Path]  # a real FER2013 CSV to use, or None to generate one
    models: Optional[tuple[str, ...]]  # None: every registered model
    frames: int
    rounds: int
    env: dict[str, str] = field(default_factory=dict)  # the FER_BENCH_* variables that were set

    @property
    def mode(self) -> str:
        return "smoke" if self.smoke else "full"


def load_settings() -> BenchSettings:
    """Read the FER_BENCH_* environment variables (see the module docstring)."""
    smoke = _env_flag("FER_BENCH_SMOKE")
    rows_env = os.environ.get("FER_BENCH_ROWS", "").strip()
    rows: Optional[int] = _env_int("FER_BENCH_ROWS", 0) if rows_env else (2_000 if smoke else None)
    csv_env = os.environ.get("FER_BENCH_CSV", "").strip()
    csv: Optional[Path] = None
    if csv_env:
        csv = Path(csv_env).expanduser()
        if not csv.is_file():
            raise SystemExit(f"benchmarks: FER_BENCH_CSV={csv_env} is not a file")
    elif not smoke and DEFAULT_REAL_CSV.is_file():
        csv = DEFAULT_REAL_CSV
    models_env = os.environ.get("FER_BENCH_MODELS", "").strip()
    models: Optional[tuple[str, ...]]
    if models_env:
        models = tuple(m.strip() for m in models_env.split(",") if m.strip())
    else:
        models = SMOKE_MODELS if smoke else None
    return BenchSettings(
        smoke=smoke,
        rows=rows,
        seed_rows=_env_int("FER_BENCH_SEED_ROWS", 300 if smoke else 3_000),
        csv=csv,
        models=models,
        frames=_env_int("FER_BENCH_FRAMES", 30 if smoke else 300),
        rounds=_env_int("FER_BENCH_ROUNDS", 1 if smoke else 3),
        env={k: v for k, v in sorted(os.environ.items()) if k.startswith("FER_BENCH_")},
    )
