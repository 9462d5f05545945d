"""``train-all``: the reference models in sequence, then one comparison table."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from .config import TrainConfig
from .models import REFERENCE_MODELS, get_spec
from fer_edge import jsonout


def plan_runs(
    data: str,
    out: Path,
    models: Optional[Sequence[str]] = None,
    options: Optional[dict[str, Any]] = None,
) -> list[tuple[TrainConfig, bool]]:
    """``(config, resume)`` of each model's run in ``out/<model>``, before any is trained: a run found there
    (its ``last.pt``) is continued from that folder, wherever it was started from, and an option given that
    differs from its configuration is refused as ``train --resume`` refuses it (TrainConfig.resumed), rather
    than silently ignored or found out after hours of the other models."""
    from .checkpoint import load_checkpoint

    models = list(models or REFERENCE_MODELS)
    for name in models:
        get_spec(name)
    given = {**(options or {}), "data": data}
    runs = []
    for name in models:
        run_dir = out / name
        last = run_dir / "last.pt"
        if last.is_file():
            saved = load_checkpoint(last, expect_model=name)["config"]
            cfg = TrainConfig.resumed(saved, given, str(run_dir),
                                      f"{run_dir} holds a {name} run, which train-all continues as it was configured")
            runs.append((cfg, True))
        else:
            runs.append((TrainConfig(**{**given, "model": name, "out": str(run_dir)}), False))
    return runs


def train_all(
    data: str,
    out: Path,
    models: Optional[Sequence[str]] = None,
    options: Optional[dict[str, Any]] = None,
    quiet: bool = False,
    runs: Optional[list[tuple[TrainConfig, bool]]] = None,
) -> list[dict]:
    """Train each model into ``out/<model>`` (resuming unfinished runs) and write the comparison.

    ``runs``: :func:`plan_runs` of the same arguments, when the caller already made (and checked) it."""
    from .trainer import train

    rows = []
    for cfg, resume in runs if runs is not None else plan_runs(data, out, models, options):
        result = train(cfg, resume=resume, quiet=quiet)  # loads cfg.out/last.pt when resuming
        rows.append(result.to_dict())
        write_comparison(rows, out)
    return rows


def write_comparison(rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(jsonout.dumps(rows, indent=2) + "\n")
    lines = [
        "| model | val accuracy | best epoch | epochs | params (M) | MMACs/face | train img/s | wall time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -r["best_val_accuracy"]):
        lines.append(
            f"| {r['model']} | {r['best_val_accuracy']:.4f} | {r['best_epoch']} | {r['epochs_run']} | "
            f"{r['params'] / 1e6:.2f} | {r['macs'] / 1e6:.1f} | {r['images_per_s']:.0f} | {r['wall_time_s']:.0f} |"
        )
    (out / "comparison.md").write_text("\n".join(lines) + "\n")
