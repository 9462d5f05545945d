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

import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_edge import __version__
from fer_edge.errors import DeviceError, InputError, ModelError
from fer_edge.labels import CLASSES, FERPLUS_CLASSES, NUM_CLASSES  # FER+ is FER2013 + contempt, same order

from . import distributed as dist_util
from .augment import AugmentConfig, augment_batch, mixup_batch, photometric_batch
from .checkpoint import FORMAT, VERSION, atomic_save, capture_rng, load_checkpoint, model_file, restore_rng
from .config import TrainConfig
from .distill import Teacher, distill_loss
from .models import count_macs, count_parameters, create_model, get_spec
from .splits import PreparedData, prepare
from fer_edge import jsonout

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
    """LR factor per optimizer step: linear warm-up, then cosine decay to zero (or constant).

    Kept as a per-step LambdaLR rather than SequentialLR(LinearLR, CosineAnnealingLR): that
    cannot load the LambdaLR states in existing checkpoints, its recursive cosine drifts from
    this closed form (last bits), and on --resume with another --epochs it rescales the old
    curve instead of re-fitting (LR off by up to 0.26 x peak; measured with torch 2.15).
    """

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
            f.write(jsonout.dumps(row) + "\n")
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
    hooks = _step_hooks()

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
            stats = _train_epoch(cfg, env, batches, run, epoch, hooks)
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
    teacher: Optional[Teacher] = None  # --teacher: soft targets for distillation
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
        return int(self.model.state_dict()[_head_key(self.model)].shape[0])


def _head_key(model: nn.Module) -> str:
    """The state-dict key of the last linear layer's weight: the one whose rows are the classes."""
    last = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return f"{last[-1]}.weight"


def load_init_weights(model: nn.Module, ckpt: dict, classes: tuple[str, ...], path: str) -> str:
    """``ckpt``'s weights into ``model`` for ``--init``; returns a note for the log.

    The same classes: all weights. Other classes (a FER2013 model fine-tuned for FER+'s eight):
    every layer but the classifier's rows, of which the rows of the classes both lists share are
    copied by name and the others keep their fresh initialisation."""
    old = list(ckpt.get("classes", CLASSES))
    if old == list(classes):
        model.load_state_dict(ckpt["model"])  # copies into the fp32 parameters (fp16 checkpoints too)
        return ""
    head_w = _head_key(model)
    head_b = head_w[: -len("weight")] + "bias"
    state = model.state_dict()
    src = ckpt["model"]
    for k, v in src.items():
        if k in (head_w, head_b) or k not in state:
            continue
        if state[k].shape != v.shape:
            raise ModelError(f"--init {path}: {k} has shape {tuple(v.shape)}, this model needs {tuple(state[k].shape)}")
        state[k] = v.to(state[k].dtype)
    shared = [c for c in classes if c in old]
    for c in shared:
        i, j = classes.index(c), old.index(c)
        state[head_w][i] = src[head_w][j].to(state[head_w].dtype)
        if head_b in src:
            state[head_b][i] = src[head_b][j].to(state[head_b].dtype)
    model.load_state_dict(state)
    new = [c for c in classes if c not in old]
    return f"; classifier rows copied for {len(shared)} classes" + (f", new: {', '.join(new)}" if new else "")


@dataclass
class EpochStats:
    """One epoch's numbers, reduced over all ranks: filled by _train_epoch, then _validate."""

    train_loss: float
    train_acc: float
    images_per_s: float
    val_loss: float = math.nan
    val_acc: float = math.nan
    pred_counts: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES))  # validation predictions per class


StepHook = Callable[[int, int], None]  # (epoch, step), called before each optimizer step


def _setup_device(cfg: TrainConfig, device: torch.device, info: dist_util.DistInfo, quiet: bool,
                  progress: Optional[bool]) -> _Env:
    """Threads, cuDNN/TF32 flags, precision, memory format and progress output, decided once."""
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // info.world_size))
    elif cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
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
    schedule = _fit_schedule(cfg, steps_per_epoch)
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


def _fit_schedule(cfg: TrainConfig, steps_per_epoch: int) -> WarmupCosine:
    return WarmupCosine(
        int(round(cfg.warmup_epochs * steps_per_epoch)), cfg.epochs * steps_per_epoch, cfg.schedule == "cosine"
    )


def _refit_schedule(cfg: TrainConfig, run: RunState) -> None:
    """Point the LR schedule at ``cfg.epochs`` again (a resumed run's new --epochs, --time-budget)."""
    run.schedule = _fit_schedule(cfg, run.steps_per_epoch)
    run.scheduler.lr_lambdas = [run.schedule] * len(run.optimizer.param_groups)


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
    fit = epoch + int(max(0.0, cfg.time_budget - elapsed) // max(epoch_time, 1e-6))
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
        _write_log(out, run.history)


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
    teacher = None
    if cfg.teacher:
        teacher = Teacher(cfg.teacher, data.stats.mean, data.stats.std, env.device, env.channels_last, env.amp,
                          classes=data.classes)
        _say(f"distilling from {teacher.describe()} (weight {cfg.distill_weight}, temperature {cfg.distill_temp}"
             f"{', teacher sees the clean face' if cfg.distill_clean else ''})",
             env.info)
    return _Batches(
        teacher=teacher,
        train_x=torch.from_numpy(data.train_images).unsqueeze(1).to(env.device),
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


def _step_hooks() -> list[StepHook]:
    """Callbacks the step loop calls before each step; set up once per run.

    The only one today is the test hook of ``FER_EDGE_TEST_KILL_AT=EPOCH:STEP``: a real
    SIGKILL mid-epoch, for the --resume tests. Without that variable the list is empty.
    """
    kill_at = _kill_point()
    if kill_at is None:
        return []

    def kill(epoch: int, step: int) -> None:
        if (epoch, step) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    return [kill]


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


def _views(b: _Batches, raw: torch.Tensor, yb: torch.Tensor, cfg: TrainConfig, g_aug: torch.Generator,
           mix_rng: Optional[np.random.Generator], num_classes: int = NUM_CLASSES) -> _StepViews:
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
        xb, target = mixup_batch(xb, yb, num_classes, float(mix_rng.beta(cfg.mixup, cfg.mixup)), g_aug,
                                 cfg.label_smoothing)
        smoothing = 0.0  # already in the soft targets
    c = raw.shape[1]
    student, teacher = (xb[:, :c], xb[:, c:]) if clean_view else (xb, xb)
    return _StepViews(student, teacher, target, smoothing)


def _train_epoch(cfg: TrainConfig, env: _Env, b: _Batches, run: RunState, epoch: int,
                 hooks: list[StepHook]) -> EpochStats:
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
        for hook in hooks:
            hook(epoch, step)
        idx = mine[step * bs : (step + 1) * bs]
        yb = b.train_y[idx]
        v = _views(b, b.train_x[idx], b.train_t[idx] if b.train_t is not None else yb, cfg, g_aug, mix_rng,
                   run.num_classes)
        xb, x_teacher, target, smoothing = v.student, v.teacher, v.target, v.smoothing
        if env.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=env.amp is not None):
            logits = run.train_model(xb)
        loss = F.cross_entropy(logits.float(), target, weight=b.loss_weights, label_smoothing=smoothing)
        if b.teacher is not None:
            w = cfg.distill_weight
            loss = (1.0 - w) * loss + w * distill_loss(logits, b.teacher.logits(x_teacher), cfg.distill_temp)
        if step % 25 == 0 and not bool(torch.isfinite(loss)):  # checked now and then: each check syncs a GPU
            _diverged(loss, epoch, step, run.optimizer)
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
        _diverged(torch.tensor(train_loss), epoch, steps, run.optimizer)
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
    """``best.pt`` (without training state) when the epoch improved, then ``last.pt`` and ``log.jsonl``.

    Main rank only. ``last.pt`` goes before the log, so the log never holds an epoch the
    checkpoint lacks.
    """
    finished = run.stopped_early or epoch == cfg.epochs
    state = _checkpoint(cfg, run.model, run.optimizer, run.scheduler, run.scaler, epoch, run.best_acc,
                        run.best_epoch, data, run.history, finished)
    if improved:
        atomic_save(model_file(state, "best"), out / "best.pt")
    if cfg.keep_epochs and epoch > cfg.epochs - cfg.keep_epochs:  # the tail of the schedule, to average
        atomic_save(model_file(state, "epoch"), out / f"epoch_{epoch:03d}.pt")
    atomic_save(state, out / "last.pt")
    _write_log(out, run.history)


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


COLLAPSE_SHARE = 0.9  # one class this share of the validation predictions: the net has collapsed
RISE_EPOCHS = 3  # from this epoch on, a training loss above the first epoch's means it is diverging


def divergence_warning(history: list[dict], train_loss: float, pred_counts: np.ndarray,
                       true_counts: np.ndarray, *, min_epochs: int = RISE_EPOCHS,
                       min_faces: int = 300) -> Optional[str]:
    """Why this epoch looks like early divergence, or None.

    Two signs, both cheap and both seen in real failed runs (an LR too high for a net
    without BatchNorm): the network predicts (almost) one class for every validation face
    although the labels are not like that, or the training loss is back above where the
    first epoch left it. Reported as a warning in the log, so the user can stop and lower
    --lr instead of discovering it from the curves hours later.

    All predictions one class is also what a net that has barely trained gives: before epoch
    ``min_epochs``, or with fewer than ``min_faces`` validation faces (a run on a few hundred
    faces), it says so and to train longer or on more faces, not to lower --lr; unless the
    training loss is far above a uniform guess's (twice ln(classes)), which only divergence gives.
    """
    reasons = []
    total = float(pred_counts.sum())
    top = int(np.argmax(pred_counts))
    collapsed = (total > 0 and pred_counts[top] / total >= COLLAPSE_SHARE
                 and true_counts[top] / max(1, true_counts.sum()) < 0.5)
    if collapsed:
        reasons.append(f"{100 * pred_counts[top] / total:.0f}% of validation faces are predicted '{FERPLUS_CLASSES[top]}'")
    rising = len(history) + 1 >= RISE_EPOCHS and bool(history) and train_loss > history[0]["train_loss"]
    if rising:
        reasons.append(f"training loss {train_loss:.4f} is above epoch 1's {history[0]['train_loss']:.4f}")
    if not reasons:
        return None
    epoch, faces = len(history) + 1, int(true_counts.sum())
    blown_up = train_loss > 2 * math.log(max(2, len(pred_counts)))
    if collapsed and not rising and not blown_up and (epoch < min_epochs or faces < min_faces):
        return (f"{reasons[0]}: all predictions one class after {epoch} epoch{'s' if epoch > 1 else ''} with "
                f"{faces} validation faces, too little training to tell divergence from a net that has not "
                "learned yet (train for more epochs, or on more faces)")
    return "; ".join(reasons) + " (early divergence? lower --lr or use --optimizer adamw)"


def _diverged(loss: torch.Tensor, epoch: int, step: int, optimizer: torch.optim.Optimizer) -> None:
    raise ModelError(
        f"training diverged (loss {loss.item()}) at epoch {epoch} step {step}; "
        f"lower --lr (peak now {optimizer.param_groups[0]['initial_lr']:.3g}) or use --optimizer adamw"
    )


def _checkpoint(cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler, epoch: int,
                best_acc: float, best_epoch: int, data: PreparedData, history: list[dict], finished: bool) -> dict:
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
        "classes": list(data.classes),
        "label_set": data.label_set,
        "config": cfg.to_dict(),
        "history": history,
    }
