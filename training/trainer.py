"""The training loop: one function, :func:`train`, used by ``fer-edge train`` and under torchrun.

Design choices, and why:
- Faces live as one uint8 tensor on the training device (28,709 x 48 x 48 is 66 MB);
  a batch is an index into it, normalised and augmented with tensor ops there. No
  DataLoader workers: there is no decoding left to parallelise.
- Every epoch seeds its shuffle, augmentation and dropout generators from
  ``(seed, epoch, rank)``. A run resumed from the checkpoint of epoch k therefore
  draws exactly what the uninterrupted run drew in epoch k+1, and on the CPU ends with
  the same weights.
- ``last.pt`` is written atomically after every epoch; a run killed mid-epoch
  loses that epoch only. ``log.jsonl`` is rewritten from the checkpoint's history,
  so it never holds an epoch the checkpoint does not.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_edge import __version__
from fer_edge.errors import DeviceError, InputError, ModelError
from fer_edge.labels import CLASSES, NUM_CLASSES

from . import distributed as dist_util
from .augment import AugmentConfig, augment_batch, mixup_batch, photometric_batch
from .checkpoint import FORMAT, VERSION, atomic_save, capture_rng, load_checkpoint, restore_rng
from .config import TrainConfig
from .models import count_macs, count_parameters, create_model, get_spec
from .splits import PreparedData, prepare

PROGRESS_EVERY_S = 60.0  # without a terminal (logs), one progress line per minute within an epoch
KILL_ENV = "FER_EDGE_TEST_KILL_AT"  # "EPOCH:STEP": SIGKILL ourselves there (tests of --resume)


@dataclass
class TrainResult:
    out_dir: str
    model: str
    best_epoch: int
    best_val_accuracy: float
    epochs_run: int
    stopped_early: bool
    wall_time_s: float
    images_per_s: float
    params: int
    macs: int
    device: str
    amp: str
    channels_last: bool
    val_source: str
    device_name: str = ""  # the GPU's or CPU's name, for results tables

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


# --------------------------------------------------------------------------- devices


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


# --------------------------------------------------------------------------- schedule


class WarmupCosine:
    """LR factor per optimizer step: linear warm-up, then cosine decay to zero (or constant)."""

    def __init__(self, warmup_steps: int, total_steps: int, cosine: bool = True):
        self.warmup_steps = max(0, warmup_steps)
        self.total_steps = max(1, total_steps)
        self.cosine = cosine

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if not self.cosine:
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def uses_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    lr = cfg.resolved_lr(uses_batchnorm(model))
    # No weight decay on biases and norm parameters (standard; it only hurts them).
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise InputError(f"unknown --optimizer {cfg.optimizer!r}; use sgd or adamw")


def class_weights(counts: np.ndarray) -> torch.Tensor:
    """Inverse-frequency weights, normalised to mean 1 over the classes present."""
    counts = counts.astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w / w[counts > 0].mean(), dtype=torch.float32)


def _epoch_seed(seed: int, epoch: int, stream: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + stream * 104_729 + rank * 15_485_863) % (2**63 - 1)


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int = 512,
    amp: Optional[torch.dtype] = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """fp32 logits of normalised faces ``x`` (N, 1, 48, 48), batch by batch, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device, non_blocking=True)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            out.append(model(xb).float())
    return torch.cat(out) if out else torch.zeros(0, NUM_CLASSES, device=device)


def normalize(images_u8: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """(N, 1, H, W) uint8 -> float32 ``(pixel - mean) / std``."""
    return (images_u8.float() - mean) / std


# --------------------------------------------------------------------------- the loop


def _say(msg: str, info: dist_util.DistInfo) -> None:
    if info.is_main:
        print(msg, file=sys.stderr, flush=True)


def _write_log(out: Path, history: list[dict]) -> None:
    tmp = out / ".log.jsonl.tmp"
    with open(tmp, "w") as f:
        for row in history:
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, out / "log.jsonl")


def _kill_point() -> Optional[tuple[int, int]]:
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return None
    e, s = spec.split(":")
    return int(e), int(s)


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    quiet: bool = False,
    progress: Optional[bool] = None,
    on_epoch: Optional[Callable[[dict], None]] = None,
    checkpoint: Optional[dict] = None,
) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.data``; write checkpoints, log and summary under ``cfg.out``.

    With ``resume`` the run continues from ``cfg.out/last.pt`` (same config, except
    that ``epochs`` may change and the LR schedule follows it); ``checkpoint`` is that file already loaded, if the
    caller has it. Returns the run's summary.
    """
    out = Path(cfg.out)
    ckpt: Optional[dict] = checkpoint
    if resume and ckpt is None:
        last = out / "last.pt"
        if not last.is_file():
            raise ModelError(f"--resume: no checkpoint at {last} (start without --resume)")
        ckpt = load_checkpoint(last, expect_model=cfg.model)

    get_spec(cfg.model)  # unknown names fail before any data is read
    # Device and process group first: each rank picks its GPU from LOCAL_RANK.
    info0 = dist_util.DistInfo(
        int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
    )
    device = resolve_device(cfg.device, info0.local_rank)
    info = dist_util.init(device.type)
    try:
        return _train(cfg, ckpt, out, device, info, quiet, progress, on_epoch)
    finally:
        dist_util.shutdown(info)


def _train(cfg, ckpt, out, device, info, quiet, progress, on_epoch) -> TrainResult:
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // info.world_size))
    elif cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    amp = resolve_amp(cfg.amp, device)
    channels_last = resolve_channels_last(cfg.channels_last, device, cfg.model)
    show_bar = info.is_main and not quiet and (progress if progress is not None else sys.stderr.isatty())
    text_progress = info.is_main and not quiet and not show_bar  # a log file: a line now and then instead

    data: PreparedData = prepare(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed, norm=cfg.norm, limit=cfg.limit)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    counts = data.class_counts()
    _say(
        f"{cfg.model}: {len(data.train_labels)} training faces, {len(data.val_labels)} validation faces "
        f"({data.val_source}); mean {data.stats.mean:.2f} std {data.stats.std:.2f}; device {device}"
        f"{' x' + str(info.world_size) if info.enabled else ''}, amp {str(amp).replace('torch.', '') if amp else 'off'}"
        f", channels_last {'on' if channels_last else 'off'}",
        info,
    )

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model)
    params, macs = count_parameters(model), count_macs(model)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)

    world = info.world_size
    n_train = len(data.train_labels)
    per_rank = n_train // world
    if per_rank < 2:
        raise InputError(f"{cfg.data}: only {n_train} training faces; need at least {2 * world}")
    bs = min(cfg.batch_size, per_rank)
    steps_per_epoch = per_rank // bs + (1 if per_rank % bs >= 2 else 0)
    schedule = WarmupCosine(
        int(round(cfg.warmup_epochs * steps_per_epoch)), cfg.epochs * steps_per_epoch, cfg.schedule == "cosine"
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)

    history: list[dict] = []
    best_acc, best_epoch, start_epoch = -1.0, 0, 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        # load_state_dict copied the saved schedule's fields over ours; a resumed run may
        # have raised --epochs, so the schedule follows this run's config.
        scheduler.lr_lambdas = [schedule] * len(optimizer.param_groups)
        schedule.__init__(
            int(round(cfg.warmup_epochs * steps_per_epoch)), cfg.epochs * steps_per_epoch, cfg.schedule == "cosine"
        )
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        restore_rng(ckpt["rng"])
        history = list(ckpt["history"])
        best_acc, best_epoch = float(ckpt["best_val_accuracy"]), int(ckpt["best_epoch"])
        start_epoch = int(ckpt["epoch"])
        _say(f"resuming {out / 'last.pt'} after epoch {start_epoch} (best {best_acc:.4f} at epoch {best_epoch})", info)
        if info.is_main:
            _write_log(out, history)

    train_model: nn.Module = model
    if info.enabled:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    # Data on the device, as uint8; normalisation happens per batch.
    train_x = torch.from_numpy(data.train_images).unsqueeze(1).to(device)
    train_y = torch.from_numpy(data.train_labels).to(device)
    vstats = data.val_stats or data.stats
    val_x = normalize(torch.from_numpy(data.val_images).unsqueeze(1), vstats.mean, vstats.std)
    val_y = torch.from_numpy(data.val_labels)
    mean, std = data.stats.mean, data.stats.std

    loss_weights = class_weights(counts).to(device) if cfg.balance == "weights" else None
    sample_weights = None
    if cfg.balance == "sampler":
        per_class = class_weights(counts).numpy()
        sample_weights = torch.from_numpy(per_class[data.train_labels]).double()
    elif cfg.balance not in ("none", "weights"):
        raise InputError(f"unknown --balance {cfg.balance!r}; use none, weights or sampler")
    aug_cfg = AugmentConfig.preset(cfg.augment)
    kill_at = _kill_point()
    autocast_dtype = amp or torch.float32

    stopped_early = False
    # A finished run resumed with a larger --epochs or --patience continues; otherwise nothing to do.
    done_before = ckpt is not None and start_epoch - best_epoch >= cfg.patience
    if done_before:
        _say(f"run already stopped early at epoch {start_epoch} (patience {cfg.patience})", info)
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        if done_before:
            break
        t0 = time.perf_counter()
        model.train()
        g_shuffle = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch, 0))
        g_aug = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch, 1, info.rank))
        torch.manual_seed(_epoch_seed(cfg.seed, epoch, 2, info.rank))  # dropout
        if sample_weights is not None:
            order = torch.multinomial(sample_weights, n_train, replacement=True, generator=g_shuffle)
        else:
            order = torch.randperm(n_train, generator=g_shuffle)
        mine = order[info.rank :: world][:per_rank].to(device)
        # Mixup's Beta draws: numpy, seeded per epoch like the torch generators (torch's
        # Beta sampler takes no generator).
        mix_rng = np.random.default_rng(_epoch_seed(cfg.seed, epoch, 3, info.rank)) if cfg.mixup > 0 else None

        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        bar = None
        last_line = t0
        if show_bar:
            from tqdm import tqdm

            bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{cfg.epochs}", file=sys.stderr, leave=False,
                       dynamic_ncols=True)
        for step in range(steps_per_epoch):
            if kill_at == (epoch, step):
                os.kill(os.getpid(), signal.SIGKILL)
            idx = mine[step * bs : (step + 1) * bs]
            yb = train_y[idx]
            if aug_cfg is not None and aug_cfg.photometric:
                xb = (photometric_batch(train_x[idx].float(), aug_cfg, g_aug) - mean) / std
            else:
                xb = normalize(train_x[idx], mean, std)
            if aug_cfg is not None:
                xb = augment_batch(xb, aug_cfg, g_aug)
            target: torch.Tensor = yb
            smoothing = cfg.label_smoothing
            if mix_rng is not None:
                xb, target = mixup_batch(xb, yb, NUM_CLASSES, float(mix_rng.beta(cfg.mixup, cfg.mixup)), g_aug,
                                         cfg.label_smoothing)
                smoothing = 0.0  # already in the soft targets
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=amp is not None):
                logits = train_model(xb)
            loss = F.cross_entropy(logits.float(), target, weight=loss_weights, label_smoothing=smoothing)
            if step % 25 == 0 and not bool(torch.isfinite(loss)):  # checked now and then: each check syncs a GPU
                _diverged(loss, epoch, step, optimizer)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == yb).sum()
            seen += len(idx)
            if bar is not None:
                bar.update(1)
                if step % 10 == 0 or step == steps_per_epoch - 1:
                    dt = time.perf_counter() - t0
                    bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{correct.item() / seen:.3f}",
                                    img_s=f"{seen * world / max(dt, 1e-9):.0f}")
            elif text_progress and time.perf_counter() - last_line >= PROGRESS_EVERY_S:
                last_line = time.perf_counter()
                _say(f"  epoch {epoch}: step {step + 1}/{steps_per_epoch}  loss {loss_sum.item() / seen:.4f} "
                     f"acc {correct.item() / seen:.4f}  {seen * world / (last_line - t0):.0f} img/s", info)
        if bar is not None:
            bar.close()
        train_time = time.perf_counter() - t0
        n_seen = torch.tensor(float(seen), device=device, dtype=torch.float64)
        totals = dist_util.all_reduce_sum(torch.stack([loss_sum.double(), correct.double(), n_seen]), info).cpu()
        train_loss, train_acc = float(totals[0] / totals[2]), float(totals[1] / totals[2])
        if not math.isfinite(train_loss):
            _diverged(torch.tensor(train_loss), epoch, steps_per_epoch, optimizer)
        images_per_s = float(totals[2]) / train_time

        # Validation: each rank scores its share, sums are reduced.
        vidx = torch.arange(info.rank, len(val_y), world)
        logits = predict_logits(model, val_x[vidx], amp=amp, channels_last=channels_last)
        vy = val_y[vidx].to(device)
        vtot = dist_util.all_reduce_sum(
            torch.stack([F.cross_entropy(logits, vy, reduction="sum").double(),
                         (logits.argmax(1) == vy).sum().double(),
                         torch.tensor(float(len(vidx)), device=device, dtype=torch.float64)]),
            info,
        ).cpu()
        val_loss, val_acc = float(vtot[0] / vtot[2]), float(vtot[1] / vtot[2])
        epoch_time = time.perf_counter() - t0

        pred_counts = dist_util.all_reduce_sum(torch.bincount(logits.argmax(1), minlength=NUM_CLASSES).double(),
                                               info).cpu().numpy()
        warning = divergence_warning(history, train_loss, pred_counts, np.bincount(data.val_labels, minlength=NUM_CLASSES))
        if warning:
            _say(f"warning: epoch {epoch}: {warning}", info)
        improved = val_acc > best_acc
        if improved:
            best_acc, best_epoch = val_acc, epoch
        row = {
            "epoch": epoch, "train_loss": round(train_loss, 6), "train_acc": round(train_acc, 6),
            "val_loss": round(val_loss, 6), "val_acc": round(val_acc, 6),
            "lr": optimizer.param_groups[0]["lr"], "images_per_s": round(images_per_s, 1),
            "epoch_time_s": round(epoch_time, 3), "best": improved,
        }
        if warning:
            row["warning"] = warning
        history.append(row)
        stopped_early = epoch - best_epoch >= cfg.patience
        finished = stopped_early or epoch == cfg.epochs
        if info.is_main:
            state = _checkpoint(cfg, model, optimizer, scheduler, scaler, epoch, best_acc, best_epoch, data,
                                history, finished)
            if improved:
                best = {k: v for k, v in state.items() if k not in ("optimizer", "scheduler", "scaler", "rng")}
                best["kind"] = "best"
                atomic_save(best, out / "best.pt")
            atomic_save(state, out / "last.pt")
            _write_log(out, history)
        _say(
            f"epoch {epoch}/{cfg.epochs}  train loss {train_loss:.4f} acc {train_acc:.4f}  "
            f"val loss {val_loss:.4f} acc {val_acc:.4f}  lr {row['lr']:.3g}  {images_per_s:.0f} img/s  "
            f"{epoch_time:.1f}s{'  *best' if improved else ''}",
            info,
        )
        if on_epoch is not None and info.is_main:
            on_epoch(row)
        if stopped_early:
            _say(f"early stop: no better validation accuracy for {cfg.patience} epochs", info)
            break
    dist_util.barrier(info)

    epochs_run = len(history)
    wall = float(sum(r["epoch_time_s"] for r in history))
    ips = float(np.mean([r["images_per_s"] for r in history])) if history else 0.0
    result = TrainResult(
        out_dir=str(out), model=cfg.model, best_epoch=best_epoch, best_val_accuracy=max(best_acc, 0.0),
        epochs_run=epochs_run, stopped_early=stopped_early or bool(ckpt and ckpt.get("stopped_early")),
        wall_time_s=round(wall, 2), images_per_s=round(ips, 1), params=params, macs=macs, device=str(device),
        amp=str(amp).replace("torch.", "") if amp else "off", channels_last=channels_last, val_source=data.val_source,
        device_name=device_name(device),
    )
    if info.is_main:
        (out / "summary.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        try:
            from .plots import plot_curves

            plot_curves(history, out / "curves.png", title=cfg.model)
        except ImportError:
            pass
    return result


COLLAPSE_SHARE = 0.9  # one class this share of the validation predictions: the net has collapsed
RISE_EPOCHS = 3  # from this epoch on, a training loss above the first epoch's means it is diverging


def divergence_warning(history: list[dict], train_loss: float, pred_counts: np.ndarray,
                       true_counts: np.ndarray) -> Optional[str]:
    """Why this epoch looks like early divergence, or None.

    Two signs, both cheap and both seen in real failed runs (an LR too high for a net
    without BatchNorm): the network predicts (almost) one class for every validation face
    although the labels are not like that, or the training loss is back above where the
    first epoch left it. Reported as a warning in the log, so the user can stop and lower
    --lr instead of discovering it from the curves hours later.
    """
    reasons = []
    total = float(pred_counts.sum())
    top = int(np.argmax(pred_counts))
    if total > 0 and pred_counts[top] / total >= COLLAPSE_SHARE and true_counts[top] / max(1, true_counts.sum()) < 0.5:
        reasons.append(f"{100 * pred_counts[top] / total:.0f}% of validation faces are predicted '{CLASSES[top]}'")
    if len(history) + 1 >= RISE_EPOCHS and history and train_loss > history[0]["train_loss"]:
        reasons.append(f"training loss {train_loss:.4f} is above epoch 1's {history[0]['train_loss']:.4f}")
    if not reasons:
        return None
    return "; ".join(reasons) + " (early divergence? lower --lr or use --optimizer adamw)"


def _diverged(loss: torch.Tensor, epoch: int, step: int, optimizer) -> None:
    raise ModelError(
        f"training diverged (loss {loss.item()}) at epoch {epoch} step {step}; "
        f"lower --lr (peak now {optimizer.param_groups[0]['initial_lr']:.3g}) or use --optimizer adamw"
    )


def _checkpoint(cfg, model, optimizer, scheduler, scaler, epoch, best_acc, best_epoch, data, history, finished) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": "last",
        "fer_edge_version": __version__,
        "model_name": cfg.model,
        "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "epoch": epoch,
        "best_val_accuracy": best_acc,
        "best_epoch": best_epoch,
        "finished": finished,
        "rng": capture_rng(),
        "norm": data.stats.as_dict(),
        "val_norm": data.val_stats.as_dict() if data.val_stats else None,
        "normalization": cfg.norm,
        "val_source": data.val_source,
        "classes": list(CLASSES),
        "config": cfg.to_dict(),
        "history": history,
    }
