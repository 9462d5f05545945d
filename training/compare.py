"""``train-all``: the reference models in sequence, then one comparison table."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from .config import TrainConfig
from .models import REFERENCE_MODELS, get_spec
from fer_edge import jsonout


def train_all(
    data: str,
    out: Path,
    models: Optional[Sequence[str]] = None,
    options: Optional[dict[str, Any]] = None,
    quiet: bool = False,
) -> list[dict]:
    """Train each model into ``out/<model>`` (resuming unfinished runs) and write the comparison."""
    from .checkpoint import load_checkpoint
    from .trainer import train

    models = list(models or REFERENCE_MODELS)
    for name in models:
        get_spec(name)
    rows = []
    for name in models:
        run_dir = out / name
        last = run_dir / "last.pt"
        resume = last.is_file()
        ckpt = load_checkpoint(last, expect_model=name) if resume else None
        if ckpt is not None:
            cfg = TrainConfig.from_dict(ckpt["config"])
            cfg.data = data
            for k in ("epochs", "device", "threads", "patience"):
                if k in (options or {}):
                    setattr(cfg, k, options[k])
        else:
            cfg = TrainConfig(**{**(options or {}), "data": data, "model": name, "out": str(run_dir)})
        result = train(cfg, resume=resume, quiet=quiet, checkpoint=ckpt)
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
