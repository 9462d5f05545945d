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

What is not the loop lives beside it: devices.py (device, threads, precision, memory
format), schedule.py (optimizer and LR schedule), checkpoint.py (what each epoch writes),
predict.py (inference over faces) and divergence.py (the early-divergence signs).
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_edge.errors import InputError, ModelError
from fer_edge.labels import NUM_CLASSES
from fer_edge import jsonout

from . import distributed as dist_util
from .augment import AugmentConfig, augment_batch, mixup_batch, photometric_batch
from .checkpoint import head_key, last_state, load_checkpoint, load_init_weights, restore_rng, save_epoch, write_log
from .config import TrainConfig
from .devices import configure_backends, device_name, resolve_amp, resolve_channels_last, resolve_device
from .distill import Teacher, distill_loss
from .divergence import divergence_warning, diverged
from .models import count_macs, count_parameters, create_model, get_spec
from .predict import predict_logits
from .schedule import WarmupCosine, epochs_within_budget, fit_schedule, make_optimizer, refit_schedule
from .splits import PreparedData, prepare

PROGRESS_EVERY_S = 60.0  # without a terminal (logs), one progress line per minute within an epoch


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


def class_weights(counts: np.ndarray) -> torch.Tensor:
    """Inverse-frequency weights, normalised to mean 1 over the classes present."""
    counts = counts.astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w / w[counts > 0].mean(), dtype=torch.float32)


def _epoch_seed(seed: int, epoch: int, stream: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + stream * 104_729 + rank * 15_485_863) % (2**63 - 1)


def normalize(images_u8: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """(N, 1, H, W) uint8 -> float32 ``(pixel - mean) / std``."""
    return (images_u8.float() - mean) / std


# --------------------------------------------------------------------------- the loop


def _say(msg: str, info: dist_util.DistInfo) -> None:
    if info.is_main:
        print(msg, file=sys.stderr, flush=True)


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


def _train(
    cfg: TrainConfig,
    ckpt: Optional[dict],
    out: Path,
    device: torch.device,
    info: dist_util.DistInfo,
    quiet: bool,
    progress: Optional[bool],
    on_epoch: Optional[Callable[[dict], None]],
) -> TrainResult:
    """The run, step by step; each step is a function below so it can be read (and changed) alone.

    The order matters for resume exactness: the model is built right after
    ``torch.manual_seed(cfg.seed)``, and nothing draws random numbers between
    restoring the checkpoint's RNG state and the first epoch's own seeding.
    """
    env = _setup_device(cfg, device, info, quiet, progress)
    data = _load_data(cfg, out, env)
    run = _build(cfg, env, data)
    if ckpt is not None:
        _restore(run, ckpt, cfg, env, out)
    batches = _to_device(cfg, env, data, run)

    # A finished run resumed with a larger --epochs or --patience continues; otherwise nothing to do.
    done_before = ckpt is not None and run.start_epoch - run.best_epoch >= cfg.patience
    if done_before:
        _say(f"run already stopped early at epoch {run.start_epoch} (patience {cfg.patience})", info)
        run.stopped_early = True
    else:
        t_start = time.perf_counter()
        epoch = run.start_epoch
        while epoch < cfg.epochs:
            epoch += 1
            t0 = time.perf_counter()
            stats = _train_epoch(cfg, env, batches, run, epoch)
            _validate(env, batches, run, stats)
            row = _record(cfg, env, data, run, epoch, t0, stats)
            if cfg.time_budget and epoch == run.start_epoch + 2:
                _fit_time_budget(cfg, env, run, epoch, time.perf_counter() - t_start, row["epoch_time_s"])
            if env.info.is_main:
                _save(cfg, data, run, epoch, bool(row["best"]), out)
            _say(
                f"epoch {epoch}/{cfg.epochs}  train loss {stats.train_loss:.4f} acc {stats.train_acc:.4f}  "
                f"val loss {stats.val_loss:.4f} acc {stats.val_acc:.4f}  lr {row['lr']:.3g}  "
                f"{stats.images_per_s:.0f} img/s  {row['epoch_time_s']:.1f}s{'  *best' if row['best'] else ''}",
                info,
            )
            if on_epoch is not None and info.is_main:
                on_epoch(row)
            if run.stopped_early:
                _say(f"early stop: no better validation accuracy for {cfg.patience} epochs", info)
                break
    dist_util.barrier(info)
    return _finish(cfg, env, data, run, ckpt, out)


@dataclass
class _Env:
    """Where and how this process computes: resolved once from the config and torchrun's variables."""

    device: torch.device
    info: dist_util.DistInfo
    amp: Optional[torch.dtype]  # autocast dtype; None is fp32
    channels_last: bool
    show_bar: bool  # a tqdm bar per epoch (a terminal)
    text_progress: bool  # a line now and then instead (a log file)

    @property
    def amp_name(self) -> str:
        return str(self.amp).replace("torch.", "") if self.amp else "off"


@dataclass
class _Batches:
    """The data as the step loop indexes it: uint8 faces on the device, normalised per batch."""

    train_x: torch.Tensor  # (N, 1, 48, 48) uint8, on the device
    train_y: torch.Tensor  # (N,) int64, on the device
    val_x: torch.Tensor  # (M, 1, 48, 48) float32, normalised, on the CPU (predict_logits moves batches)
    val_y: torch.Tensor  # (M,) int64, on the CPU
    mean: float
    std: float
    loss_weights: Optional[torch.Tensor]  # --balance weights
    sample_weights: Optional[torch.Tensor]  # --balance sampler: per-face draw weights
    aug: Optional[AugmentConfig]
    teacher: Optional[Teacher] = None  # --teacher: soft targets for distillation, computed every step
    teacher_logits: Optional[torch.Tensor] = None  # --distill-cached: (N, classes) per face, computed once
    train_t: Optional[torch.Tensor] = None  # (N, classes) soft targets (FER+ votes) on the device; None: hard labels


@dataclass
class RunState:
    """The run's model, optimizer, schedule and progress (what ``last.pt`` saves and restores),
    with the step geometry they were built for."""

    model: nn.Module  # the bare model: validated and saved
    train_model: nn.Module  # the model the steps run: DDP-wrapped under torchrun, else ``model``
    optimizer: torch.optim.Optimizer
    schedule: WarmupCosine
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    params: int
    macs: int
    n_train: int
    per_rank: int  # faces each rank trains on per epoch
    batch_size: int
    steps_per_epoch: int
    history: list[dict] = field(default_factory=list)
    best_acc: float = -1.0
    best_epoch: int = 0
    start_epoch: int = 0  # the last epoch the restored checkpoint holds; 0 for a fresh run
    stopped_early: bool = False

    @property
    def num_classes(self) -> int:
        return int(self.model.state_dict()[head_key(self.model)].shape[0])


@dataclass
class EpochStats:
    """One epoch's numbers, reduced over all ranks: filled by _train_epoch, then _validate."""

    train_loss: float
    train_acc: float
    images_per_s: float
    val_loss: float = math.nan
    val_acc: float = math.nan
    pred_counts: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES))  # validation predictions per class


def _setup_device(cfg: TrainConfig, device: torch.device, info: dist_util.DistInfo, quiet: bool,
                  progress: Optional[bool]) -> _Env:
    """Threads, cuDNN/TF32 flags, precision, memory format and progress output, decided once."""
    configure_backends(device, cfg.threads, info.world_size)
    show_bar = info.is_main and not quiet and (progress if progress is not None else sys.stderr.isatty())
    return _Env(
        device=device,
        info=info,
        amp=resolve_amp(cfg.amp, device),
        channels_last=resolve_channels_last(cfg.channels_last, device, cfg.model),
        show_bar=show_bar,
        text_progress=info.is_main and not quiet and not show_bar,
    )


def _load_data(cfg: TrainConfig, out: Path, env: _Env) -> PreparedData:
    """Read and split the faces, fit the normalisation, create the run folder and say what was found."""
    data = prepare(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed, norm=cfg.norm, limit=cfg.limit,
                   ferplus=cfg.ferplus, ferplus_target=cfg.ferplus_target)
    if env.info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    _say(
        f"{cfg.model}: {len(data.train_labels)} training faces, {len(data.val_labels)} validation faces "
        f"({data.val_source}); mean {data.stats.mean:.2f} std {data.stats.std:.2f}; device {env.device}"
        f"{' x' + str(env.info.world_size) if env.info.enabled else ''}, amp {env.amp_name}"
        f", channels_last {'on' if env.channels_last else 'off'}",
        env.info,
    )
    return data


def _build(cfg: TrainConfig, env: _Env, data: PreparedData) -> RunState:
    """Model (seeded by ``cfg.seed``), optimizer, per-step LR schedule and GradScaler for a fresh run."""
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, num_classes=len(data.classes))
    if cfg.init:
        ckpt = load_checkpoint(cfg.init, expect_model=cfg.model)
        note = load_init_weights(model, ckpt, data.classes, cfg.init)
        _say(f"starting from the weights of {cfg.init} (epoch {ckpt.get('epoch')}, best val "
             f"{ckpt.get('best_val_accuracy', float('nan')):.4f}){note}", env.info)
    params, macs = count_parameters(model), count_macs(model)
    model.to(env.device)
    if env.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)

    world = env.info.world_size
    n_train = len(data.train_labels)
    per_rank = n_train // world
    if per_rank < 2:
        raise InputError(f"{cfg.data}: only {n_train} training faces; need at least {2 * world}")
    bs = min(cfg.batch_size, per_rank)
    steps_per_epoch = per_rank // bs + (1 if per_rank % bs >= 2 else 0)
    schedule = fit_schedule(cfg, steps_per_epoch)
    return RunState(
        model=model,
        train_model=model,
        optimizer=optimizer,
        schedule=schedule,
        scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, schedule),
        scaler=torch.amp.GradScaler("cuda", enabled=env.amp == torch.float16),
        params=params,
        macs=macs,
        n_train=n_train,
        per_rank=per_rank,
        batch_size=bs,
        steps_per_epoch=steps_per_epoch,
    )


def _refit_schedule(cfg: TrainConfig, run: RunState) -> None:
    """Point the LR schedule at ``cfg.epochs`` again (a resumed run's new --epochs, --time-budget)."""
    run.schedule = refit_schedule(cfg, run.scheduler, run.steps_per_epoch)


def _fit_time_budget(cfg: TrainConfig, env: _Env, run: RunState, epoch: int, elapsed: float,
                     epoch_time: float) -> None:
    """--time-budget: lower ``cfg.epochs`` to the epochs that fit and re-fit the LR schedule.

    Decided once, after this process's second epoch (the first pays cuDNN's autotuning and
    warm-up), so the cosine decay still reaches zero at the last epoch instead of being cut
    off in the middle by a killed process. Under torchrun the ranks' times are averaged, so
    they all agree on the new length.
    """
    times = dist_util.all_reduce_sum(torch.tensor([elapsed, epoch_time], dtype=torch.float64,
                                                  device=env.device), env.info).cpu() / env.info.world_size
    elapsed, epoch_time = float(times[0]), float(times[1])
    fit = epochs_within_budget(epoch, cfg.time_budget, elapsed, epoch_time)
    if fit >= cfg.epochs:
        return
    _say(f"time budget {cfg.time_budget:.0f}s: {epoch_time:.1f}s per epoch, so {fit} epochs instead of "
         f"{cfg.epochs} (LR schedule re-fitted)", env.info)
    cfg.epochs = max(fit, epoch)
    _refit_schedule(cfg, run)


def _restore(run: RunState, ckpt: dict, cfg: TrainConfig, env: _Env, out: Path) -> None:
    """Load ``last.pt`` into a freshly built run: weights, optimizer, schedule position, scaler, RNGs, history.

    The RNG state is restored last, so the next random draw is the one the killed run
    would have made.
    """
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    # load_state_dict copied the saved schedule's fields over ours; a resumed run may
    # have raised --epochs, so the schedule follows this run's config.
    _refit_schedule(cfg, run)
    if ckpt.get("scaler"):
        run.scaler.load_state_dict(ckpt["scaler"])
    restore_rng(ckpt["rng"])
    run.history = list(ckpt["history"])
    run.best_acc, run.best_epoch = float(ckpt["best_val_accuracy"]), int(ckpt["best_epoch"])
    run.start_epoch = int(ckpt["epoch"])
    _say(f"resuming {out / 'last.pt'} after epoch {run.start_epoch} (best {run.best_acc:.4f} at epoch "
         f"{run.best_epoch})", env.info)
    if env.info.is_main:
        write_log(out, run.history)


def _to_device(cfg: TrainConfig, env: _Env, data: PreparedData, run: RunState) -> _Batches:
    """Wrap the model for DDP under torchrun, move the faces to the device, resolve balance and augmentation."""
    if env.info.enabled:
        run.train_model = nn.parallel.DistributedDataParallel(
            run.model, device_ids=[env.device.index] if env.device.type == "cuda" else None
        )
    counts = data.class_counts()
    vstats = data.val_stats or data.stats
    loss_weights = class_weights(counts).to(env.device) if cfg.balance == "weights" else None
    sample_weights = None
    if cfg.balance == "sampler":
        per_class = class_weights(counts).numpy()
        sample_weights = torch.from_numpy(per_class[data.train_labels]).double()
    elif cfg.balance not in ("none", "weights"):
        raise InputError(f"unknown --balance {cfg.balance!r}; use none, weights or sampler")
    train_x = torch.from_numpy(data.train_images).unsqueeze(1).to(env.device)
    teacher, teacher_logits = None, None
    if cfg.teacher:
        teacher = Teacher(cfg.teacher, data.stats.mean, data.stats.std, env.device, env.channels_last, env.amp,
                          classes=data.classes)
        how = (", teacher scores each clean face and its mirror once" if cfg.distill_cached
               else ", teacher sees the clean face" if cfg.distill_clean else "")
        _say(f"distilling from {teacher.describe()} (weight {cfg.distill_weight}, temperature {cfg.distill_temp}"
             f"{how})", env.info)
        if cfg.distill_cached:
            t0 = time.perf_counter()
            teacher_logits = teacher.mirrored_logits(normalize(train_x, data.stats.mean, data.stats.std))
            _say(f"teacher scored {len(train_x):,} faces in {time.perf_counter() - t0:.0f}s", env.info)
            teacher = None  # nothing left for it to do per step
    return _Batches(
        teacher=teacher,
        teacher_logits=teacher_logits,
        train_x=train_x,
        train_y=torch.from_numpy(data.train_labels).to(env.device),
        train_t=torch.from_numpy(data.train_targets).to(env.device) if data.train_targets is not None else None,
        val_x=normalize(torch.from_numpy(data.val_images).unsqueeze(1), vstats.mean, vstats.std),
        val_y=torch.from_numpy(data.val_labels),
        mean=data.stats.mean,
        std=data.stats.std,
        loss_weights=loss_weights,
        sample_weights=sample_weights,
        aug=cfg.augment_config(),
    )


class _Progress:
    """Progress within an epoch: a tqdm bar on a terminal, else one line per PROGRESS_EVERY_S in a log."""

    def __init__(self, env: _Env, epoch: int, epochs: int, steps: int, t0: float):
        self.env, self.epoch, self.steps, self.t0 = env, epoch, steps, t0
        self.last_line = t0
        self.bar: Any = None
        if env.show_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", file=sys.stderr, leave=False,
                            dynamic_ncols=True)

    def update(self, step: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int) -> None:
        world = self.env.info.world_size
        if self.bar is not None:
            self.bar.update(1)
            if step % 10 == 0 or step == self.steps - 1:
                dt = time.perf_counter() - self.t0
                self.bar.set_postfix(loss=f"{loss_sum.item() / seen:.3f}", acc=f"{correct.item() / seen:.3f}",
                                     img_s=f"{seen * world / max(dt, 1e-9):.0f}")
        elif self.env.text_progress and time.perf_counter() - self.last_line >= PROGRESS_EVERY_S:
            self.last_line = time.perf_counter()
            _say(f"  epoch {self.epoch}: step {step + 1}/{self.steps}  loss {loss_sum.item() / seen:.4f} "
                 f"acc {correct.item() / seen:.4f}  {seen * world / (self.last_line - self.t0):.0f} img/s",
                 self.env.info)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class _StepViews:
    student: torch.Tensor  # the normalised, augmented (and mixed) batch the student is trained on
    teacher: torch.Tensor  # what the teacher sees: the same batch, or its clean view (--distill-clean)
    target: torch.Tensor  # class indices, or soft targets after mixup
    smoothing: float  # label smoothing still to apply (0 when mixup already folded it in)
    teacher_logits: Optional[torch.Tensor]  # --distill-cached: the faces' stored teacher logits, mixed like them


def _views(b: _Batches, raw: torch.Tensor, yb: torch.Tensor, cfg: TrainConfig, g_aug: torch.Generator,
           mix_rng: Optional[np.random.Generator], num_classes: int = NUM_CLASSES,
           teacher_logits: Optional[torch.Tensor] = None) -> _StepViews:
    """One step's batch: photometric changes in pixel units, normalisation, warp, erasing, mixup.

    With ``--distill-clean`` the clean face rides along as a second channel, so the crop, flip,
    erasing and mixup are the very same draws for the teacher's view as for the student's;
    only the light, blur, noise and JPEG changes are the student's alone. The random stream
    is the same either way, so the option changes nothing else about a run.
    """
    clean_view = b.teacher is not None and cfg.distill_clean and b.aug is not None and b.aug.photometric
    if b.aug is not None and b.aug.photometric:
        xb = (photometric_batch(raw.float(), b.aug, g_aug) - b.mean) / b.std
        if clean_view:
            xb = torch.cat([xb, normalize(raw, b.mean, b.std)], 1)
    else:
        xb = normalize(raw, b.mean, b.std)
    if b.aug is not None:
        xb = augment_batch(xb, b.aug, g_aug)
    target: torch.Tensor = yb
    smoothing = cfg.label_smoothing
    if mix_rng is not None:
        xb, target, teacher_logits = mixup_batch(xb, yb, num_classes, float(mix_rng.beta(cfg.mixup, cfg.mixup)),
                                                 g_aug, cfg.label_smoothing, paired=teacher_logits)
        smoothing = 0.0  # already in the soft targets
    c = raw.shape[1]
    student, teacher = (xb[:, :c], xb[:, c:]) if clean_view else (xb, xb)
    return _StepViews(student, teacher, target, smoothing, teacher_logits)


def _train_epoch(cfg: TrainConfig, env: _Env, b: _Batches, run: RunState, epoch: int) -> EpochStats:
    """One epoch of optimizer steps: training loss, accuracy and images/s over all ranks.

    Shuffle, augmentation, dropout and mixup draws are seeded from ``(seed, epoch, rank)``
    here, so a resumed epoch draws what the uninterrupted one did.
    """
    info, device, world = env.info, env.device, env.info.world_size
    t0 = time.perf_counter()
    run.model.train()
    g_shuffle = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch, 0))
    g_aug = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch, 1, info.rank))
    torch.manual_seed(_epoch_seed(cfg.seed, epoch, 2, info.rank))  # dropout
    if b.sample_weights is not None:
        order = torch.multinomial(b.sample_weights, run.n_train, replacement=True, generator=g_shuffle)
    else:
        order = torch.randperm(run.n_train, generator=g_shuffle)
    mine = order[info.rank :: world][: run.per_rank].to(device)
    # Mixup's Beta draws: numpy, seeded per epoch like the torch generators (torch's
    # Beta sampler takes no generator).
    mix_rng = np.random.default_rng(_epoch_seed(cfg.seed, epoch, 3, info.rank)) if cfg.mixup > 0 else None
    autocast_dtype = env.amp or torch.float32
    bs, steps = run.batch_size, run.steps_per_epoch

    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    progress = _Progress(env, epoch, cfg.epochs, steps, t0)
    for step in range(steps):
        idx = mine[step * bs : (step + 1) * bs]
        yb = b.train_y[idx]
        v = _views(b, b.train_x[idx], b.train_t[idx] if b.train_t is not None else yb, cfg, g_aug, mix_rng,
                   run.num_classes, b.teacher_logits[idx] if b.teacher_logits is not None else None)
        xb, x_teacher, target, smoothing = v.student, v.teacher, v.target, v.smoothing
        if env.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=env.amp is not None):
            logits = run.train_model(xb)
        loss = F.cross_entropy(logits.float(), target, weight=b.loss_weights, label_smoothing=smoothing)
        t_logits = v.teacher_logits if b.teacher is None else b.teacher.logits(x_teacher)
        if t_logits is not None:
            w = cfg.distill_weight
            loss = (1.0 - w) * loss + w * distill_loss(logits, t_logits, cfg.distill_temp)
        if step % 25 == 0 and not bool(torch.isfinite(loss)):  # checked now and then: each check syncs a GPU
            diverged(loss, epoch, step, run.optimizer)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        loss_sum += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == yb).sum()
        seen += len(idx)
        progress.update(step, loss_sum, correct, seen)
    progress.close()
    train_time = time.perf_counter() - t0
    n_seen = torch.tensor(float(seen), device=device, dtype=torch.float64)
    totals = dist_util.all_reduce_sum(torch.stack([loss_sum.double(), correct.double(), n_seen]), info).cpu()
    train_loss, train_acc = float(totals[0] / totals[2]), float(totals[1] / totals[2])
    if not math.isfinite(train_loss):
        diverged(torch.tensor(train_loss), epoch, steps, run.optimizer)
    return EpochStats(train_loss, train_acc, float(totals[2]) / train_time)


def _validate(env: _Env, b: _Batches, run: RunState, stats: EpochStats) -> None:
    """Validation loss, accuracy and predicted-class counts into ``stats``; each rank scores its share."""
    info, device = env.info, env.device
    vidx = torch.arange(info.rank, len(b.val_y), info.world_size)
    logits = predict_logits(run.model, b.val_x[vidx], amp=env.amp, channels_last=env.channels_last)
    vy = b.val_y[vidx].to(device)
    vtot = dist_util.all_reduce_sum(
        torch.stack([F.cross_entropy(logits, vy, reduction="sum").double(),
                     (logits.argmax(1) == vy).sum().double(),
                     torch.tensor(float(len(vidx)), device=device, dtype=torch.float64)]),
        info,
    ).cpu()
    pred_counts = dist_util.all_reduce_sum(torch.bincount(logits.argmax(1), minlength=run.num_classes).double(),
                                           info).cpu().numpy()
    stats.val_loss, stats.val_acc = float(vtot[0] / vtot[2]), float(vtot[1] / vtot[2])
    stats.pred_counts = pred_counts


def _record(cfg: TrainConfig, env: _Env, data: PreparedData, run: RunState, epoch: int, t0: float,
            stats: EpochStats) -> dict:
    """Warn on early divergence, track the best epoch and early stopping, append the epoch's log row."""
    epoch_time = time.perf_counter() - t0
    # A fine-tune (--init) starts with a low loss that new augmentation or a teacher may well
    # raise: only the collapse sign applies to it, not "loss above epoch 1".
    warning = divergence_warning([] if cfg.init else run.history, stats.train_loss, stats.pred_counts,
                                 np.bincount(data.val_labels, minlength=len(data.classes)))
    if warning:
        _say(f"warning: epoch {epoch}: {warning}", env.info)
    improved = stats.val_acc > run.best_acc
    if improved:
        run.best_acc, run.best_epoch = stats.val_acc, epoch
    row = {
        "epoch": epoch, "train_loss": round(stats.train_loss, 6), "train_acc": round(stats.train_acc, 6),
        "val_loss": round(stats.val_loss, 6), "val_acc": round(stats.val_acc, 6),
        "lr": run.optimizer.param_groups[0]["lr"], "images_per_s": round(stats.images_per_s, 1),
        "epoch_time_s": round(epoch_time, 3), "best": improved,
    }
    if warning:
        row["warning"] = warning
    run.history.append(row)
    run.stopped_early = epoch - run.best_epoch >= cfg.patience
    return row


def _save(cfg: TrainConfig, data: PreparedData, run: RunState, epoch: int, improved: bool, out: Path) -> None:
    """This epoch's ``best.pt`` (if it improved), ``epoch_NNN.pt``, ``last.pt`` and log; main rank only."""
    finished = run.stopped_early or epoch == cfg.epochs
    state = last_state(cfg, run.model, run.optimizer, run.scheduler, run.scaler, epoch, run.best_acc,
                       run.best_epoch, data, run.history, finished)
    keep = bool(cfg.keep_epochs) and epoch > cfg.epochs - cfg.keep_epochs  # the tail of the schedule, to average
    save_epoch(out, state, run.history, best=improved, keep=keep)


def _finish(cfg: TrainConfig, env: _Env, data: PreparedData, run: RunState, ckpt: Optional[dict],
            out: Path) -> TrainResult:
    """The run's summary; on the main rank also ``summary.json`` and the curves (when matplotlib is there)."""
    history = run.history
    wall = float(sum(r["epoch_time_s"] for r in history))
    ips = float(np.mean([r["images_per_s"] for r in history])) if history else 0.0
    result = TrainResult(
        out_dir=str(out), model=cfg.model, best_epoch=run.best_epoch, best_val_accuracy=max(run.best_acc, 0.0),
        epochs_run=len(history), stopped_early=run.stopped_early,
        wall_time_s=round(wall, 2), images_per_s=round(ips, 1), params=run.params, macs=run.macs,
        device=str(env.device), amp=env.amp_name, channels_last=env.channels_last, val_source=data.val_source,
        device_name=device_name(env.device),
    )
    if env.info.is_main:
        (out / "summary.json").write_text(jsonout.dumps(result.to_dict(), indent=2) + "\n")
        try:
            from .plots import plot_curves

            plot_curves(history, out / "curves.png", title=cfg.model)
        except ImportError:
            pass
    return result
