"""Everything that defines a training run, stored in its checkpoints so --resume can continue it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .augment_config import DEFAULT_AUGMENT

if TYPE_CHECKING:
    from .augment_config import AugmentConfig

#: The architecture `fer-edge train` trains when --model is not given.
DEFAULT_MODEL = "resnet18"

#: Options a resumed run (``train --resume``, a run ``train-all`` finds) may change; every other option
#: continues the run as configured.
RESUME_OVERRIDES = ("epochs", "device", "data", "threads", "patience", "time_budget")
#: Options that name which run to continue rather than configure it: --out (however it is spelled, or a run
#: folder moved since) and --model (checked against the checkpoint when it is loaded).
RUN_NAMES = ("model", "out")


@dataclass
class TrainConfig:
    data: str
    model: str = DEFAULT_MODEL
    out: str = f"runs/{DEFAULT_MODEL}"
    epochs: int = 30
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd (Nesterov momentum 0.9) | adamw
    lr: Optional[float] = None  # None: the optimizer's default for this model
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    schedule: str = "cosine"  # cosine | constant (after warm-up)
    label_smoothing: float = 0.1
    balance: str = "none"  # none | weights (inverse-frequency loss weights) | sampler
    augment: str = DEFAULT_AUGMENT  # a key of augment_config.PRESETS
    mixup: float = 0.0  # Beta(alpha, alpha) of mixup on every batch; 0 = off
    patience: int = 10  # early stopping: epochs without a better validation accuracy
    val_fraction: float = 0.1  # held out when the data has no validation split
    norm: str = "train"  # train | per_split
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto | off | bf16 | fp16
    channels_last: str = "auto"  # auto | on | off
    threads: Optional[int] = None
    limit: Optional[int] = None  # use a random subset of this many training faces
    time_budget: Optional[float] = None  # seconds: after epoch 2, lower --epochs to what fits (schedule re-fitted)
    init: Optional[str] = None  # start from this checkpoint's weights (fine-tuning); optimizer and schedule fresh
    teacher: Optional[list[str]] = None  # checkpoints to distil from (logits averaged); None = no distillation
    distill_weight: float = 0.7  # share of the distillation loss; the rest is the hard-label loss
    distill_temp: float = 3.0  # softmax temperature of the distillation loss
    keep_epochs: int = 0  # also keep the weights of the last K epochs (epoch_NNN.pt) for weight averaging
    distill_clean: bool = False  # the teacher sees each face before the photometric changes (light, blur, noise, JPEG)
    distill_cached: bool = False  # the teacher scores each clean face (and its mirror) once, before the first epoch
    blur_p: Optional[float] = None  # probability of the Gaussian blur; None = the --augment preset's own
    jpeg_p: Optional[float] = None  # probability of the JPEG round trip; None = the --augment preset's own
    ferplus: Optional[str] = None  # Microsoft's fer2013new.csv: train FER+'s 8 classes on its votes
    ferplus_target: str = "votes"  # votes (soft-label cross-entropy on the vote shares) | majority

    def augment_config(self) -> "AugmentConfig | None":
        """The batch augmentation this run uses: the preset, with --blur-p and --jpeg-p laid over it."""
        from .augment_config import AugmentConfig

        aug = AugmentConfig.preset(self.augment)
        if aug is not None and self.blur_p is not None:
            aug = replace(aug, blur_p=self.blur_p)
        if aug is not None and self.jpeg_p is not None:
            aug = replace(aug, jpeg_p=self.jpeg_p)
        return aug

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def resumed(cls, saved: dict[str, Any], given: dict[str, Any], out: str, refusal: str) -> "TrainConfig":
        """The config of a run continued from a checkpoint whose config is ``saved``: the options ``given``
        that are RESUME_OVERRIDES replace the saved ones, and ``out`` is the folder it was found in (the
        saved one may be spelled otherwise or name where the run was before a move). A given option that
        differs from the saved run otherwise is refused (UsageError, ``refusal`` then the options): it would
        be silently ignored, or change a run half way."""
        from fer_edge.errors import UsageError

        cfg = cls.from_dict(saved)
        conflicts = [k for k, v in given.items()
                     if k not in RESUME_OVERRIDES and k not in RUN_NAMES and v != getattr(cfg, k)]
        if conflicts:
            raise UsageError(f"{refusal}; these options differ from it: "
                             + ", ".join(f"--{k.replace('_', '-')}" for k in conflicts))
        for k in RESUME_OVERRIDES:
            if k in given:
                setattr(cfg, k, given[k])

        def moved(path: Optional[str]) -> Optional[str]:
            """A file of the run's own folder (an --init or --teacher imported into OUT/imported/) where
            the folder is now."""
            try:
                return str(Path(out) / Path(path).relative_to(cfg.out)) if path and cfg.out else path
            except ValueError:
                return path

        cfg.init = moved(cfg.init)
        cfg.teacher = [moved(t) for t in cfg.teacher] if cfg.teacher else cfg.teacher
        cfg.out = str(out)
        return cfg

    def resolved_lr(self, uses_batchnorm: bool) -> float:
        """Default learning rates that train each family from scratch without diverging."""
        if self.lr is not None:
            return self.lr
        if self.optimizer == "adamw":
            return 1e-3
        # Nets without BatchNorm (base, vgg13) need a gentler SGD start than the ResNets.
        return 0.05 if uses_batchnorm else 0.01
