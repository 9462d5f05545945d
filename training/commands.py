"""CLI verbs of the training side: ``train``, ``train-all``, ``eval``, ``export``.

Nothing here imports torch at module level: ``fer-edge --help`` must work on an edge
install, and a training verb there must say how to get the [train] extra (exit 6).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Iterable

from fer_edge.cli.options import add_json_option
from fer_edge.cli.argtypes import file_with_suffix, float_range, int_at_least, non_negative_int, onnx_device, positive_float, positive_int
from fer_edge.errors import InputError, ModelError, UsageError, require
from fer_edge import jsonout
from fer_edge.runtime.default_model import PACKAGED_MODELS

from .config import RESUME_OVERRIDES  # torch-free, as this module must be


def _torch_env() -> None:
    """Settings that must be in the environment before torch (and its OpenMP runtime) loads.

    OMP_WAIT_POLICY=PASSIVE: OpenMP threads sleep at barriers instead of spinning. On a
    shared CPU (a background run beside tests, several ranks on one host) spinning threads
    steal the cores their peers need: edgenet training on 2 busy cores measured 30 img/s
    spinning vs 150-170 img/s passive (docs/TRAINING.md). A user's own setting wins.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _train_options(p: argparse.ArgumentParser) -> None:
    from .augment_config import PRESETS, AugmentConfig, describe_presets
    from .config import TrainConfig
    from .splits import FERPLUS_TARGETS

    d = TrainConfig(data="")
    p.add_argument("--data", help="FER2013 CSV (Kaggle layout: emotion,pixels,Usage) or image folder "
                   "(train/<class>/*.png, optional validation/ or PublicTest/)")
    p.add_argument("--ferplus", metavar="FER2013NEW.CSV",
                   help="Microsoft's FER+ votes for the rows of --data (fer2013new.csv, joined row by row): train "
                   "FER+'s 8 classes (FER2013's 7 + contempt), validated on the FER+ majority protocol")
    p.add_argument("--ferplus-target", choices=FERPLUS_TARGETS,
                   help="with --ferplus: votes (soft-label cross-entropy on each face's vote shares, the FER+ paper's "
                   "best mode; default) or majority (the majority label)")
    p.add_argument("--epochs", type=positive_int, help=f"maximum epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=positive_int, help=f"images per optimizer step, per process (default {d.batch_size})")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), help="auto: CUDA when available (default)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), help="sgd: Nesterov momentum 0.9 (default)")
    p.add_argument("--lr", type=positive_float, help="peak learning rate (default: 0.05 SGD with BatchNorm nets, "
                   "0.01 SGD for base/vgg13, 1e-3 AdamW)")
    p.add_argument("--weight-decay", type=float_range(0.0), help=f"(default {d.weight_decay}; not on biases/norms)")
    p.add_argument("--warmup-epochs", type=float_range(0.0), help=f"linear LR warm-up (default {d.warmup_epochs})")
    p.add_argument("--schedule", choices=("cosine", "constant"), help="LR after warm-up (default cosine)")
    p.add_argument("--label-smoothing", type=float_range(0.0, 1.0, high_open=True), help=f"(default {d.label_smoothing})")
    p.add_argument("--balance", choices=("none", "weights", "sampler"),
                   help="class imbalance: inverse-frequency loss weights or a class-balanced sampler (default none)")
    blur_presets = ", ".join(f"{n}: {c.blur_p:g}" for n, c in PRESETS.items() if c is not None and c.blur_p)
    p.add_argument("--augment", choices=tuple(PRESETS), help=describe_presets())
    p.add_argument("--blur-p", type=float_range(0.0, 1.0), metavar="P",
                   help=f"probability of a Gaussian blur (sigma {AugmentConfig().blur_sigma[0]:g}-"
                   f"{AugmentConfig().blur_sigma[1]:g}) on each training face, over the --augment preset's own "
                   f"({blur_presets}; the others: 0)")
    jpeg_presets = ", ".join(f"{n}: {c.jpeg_p:g}" for n, c in PRESETS.items() if c is not None and c.jpeg_p)
    p.add_argument("--jpeg-p", type=float_range(0.0, 1.0), metavar="P",
                   help=f"probability of a JPEG round trip (quality {AugmentConfig().jpeg_quality[0]:g}-"
                   f"{AugmentConfig().jpeg_quality[1]:g}) of each training face, over the --augment preset's own "
                   f"({jpeg_presets}; the others: 0)")
    p.add_argument("--mixup", type=float_range(0.0), help="mixup on every batch with Beta(A, A) blending; 0 = off (default)")
    p.add_argument("--init", metavar="CKPT",
                   help="start from this checkpoint's weights (same architecture) instead of a random init: fine-tuning "
                   f"with a fresh optimizer and schedule; an exported .onnx or a packaged model name ({', '.join(PACKAGED_MODELS)}) "
                   "is imported first (fer-edge import)")
    p.add_argument("--teacher", action="append", metavar="CKPT",
                   help="distil from this trained checkpoint, .onnx or packaged model (repeat for an ensemble: logits "
                   "averaged); the loss is --distill-weight x KL to the teacher + the rest x the label loss")
    p.add_argument("--distill-weight", type=float_range(0.0, 1.0),
                   help=f"share of the distillation loss with --teacher (default {d.distill_weight})")
    p.add_argument("--distill-temp", type=positive_float, help=f"distillation temperature (default {d.distill_temp})")
    p.add_argument("--distill-clean", action="store_true", default=None,
                   help="with --teacher and a photometric --augment (strong, strong-jpeg): the teacher sees each face "
                   "before the light, blur, noise and JPEG changes (same crop, flip and mixup), so the student learns to "
                   "read a degraded face the way the teacher reads the clean one")
    p.add_argument("--distill-cached", action="store_true", default=None,
                   help="with --teacher: the teacher scores each clean training face and its mirror image once, before "
                   "the first epoch, and the student learns from those stored logits (mixed along with mixup); a small "
                   "student then trains without a large teacher's forward pass in every step")
    p.add_argument("--keep-epochs", type=non_negative_int, metavar="K",
                   help="also keep the weights of the last K epochs as epoch_NNN.pt, for "
                   "scripts/average_checkpoints.py (averaged weights, BatchNorm recomputed; default 0)")
    p.add_argument("--patience", type=positive_int, help=f"early stopping: epochs without a better validation accuracy (default {d.patience})")
    p.add_argument("--val-fraction", type=float_range(0.0, 1.0, low_open=True, high_open=True),
                   help=f"held-out share of training faces when the data has no PublicTest split (default {d.val_fraction})")
    p.add_argument("--norm", choices=("train", "per_split"),
                   help="normalisation statistics: the training split's (default) or each split its own")
    p.add_argument("--seed", type=non_negative_int, help=f"(default {d.seed})")
    p.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"),
                   help="mixed precision; auto: bf16/fp16 on CUDA, fp32 on CPU (default auto)")
    p.add_argument("--channels-last", choices=("auto", "on", "off"),
                   help="memory format; auto: on for CUDA, and on the CPU for models measured faster with it (default)")
    p.add_argument("--threads", type=positive_int, help="CPU threads (default: all cores / processes)")
    p.add_argument("--time-budget", type=positive_float, metavar="SECONDS",
                   help="wall-clock budget for the epochs of this process: after epoch 2 the run lowers --epochs to "
                   "what fits and re-fits the LR schedule, so the cosine still ends at zero (a GPU machine held for a fixed time)")
    p.add_argument("--limit", type=positive_int, help="train on a seeded random subset of this many faces (quick runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (one line per epoch is still printed)")
    add_json_option(p, "the run summary as JSON")


def _split_name(text: str) -> str:
    """``type=`` for --split: a Kaggle Usage name or a split name (checked by splits.canonical_split)."""
    from .splits import canonical_split

    try:
        canonical_split(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _model_names(names, allow_all: bool = False, many: bool = False):
    """``type=`` for --model / --models: architectures of the registry (``all`` where it means something)."""

    def parse(text: str) -> str:
        wanted = [t.strip() for t in text.split(",")] if many else [text.strip()]
        for w in wanted:
            if w not in names and not (allow_all and w == "all"):
                extra = ", or 'all'" if allow_all else ""
                raise argparse.ArgumentTypeError(f"unknown model {w!r}; use {', '.join(names)}{extra}")
        return ",".join(wanted)

    return parse


def register(subparsers) -> None:
    from fer_edge.cli.exitcodes import Exit, help_line

    from .config import DEFAULT_MODEL
    from .export import TTA_MODES
    from .variants import CALIBRATION_SIZE
    from .models import list_models

    names = list_models()
    training_codes = help_line(Exit.OK, Exit.USAGE, Exit.INPUT, Exit.MODEL, Exit.DEVICE, Exit.DEPENDENCY,
                               Exit.INTERRUPTED)
    file_codes = help_line(Exit.OK, Exit.USAGE, Exit.INPUT, Exit.MODEL, Exit.DEPENDENCY, Exit.INTERRUPTED)
    p = subparsers.add_parser(
        "train",
        help="train a model on FER2013 (needs the [train] extra)",
        description="Train one architecture on FER2013 with augmentation, label smoothing, warm-up + cosine LR and "
        "early stopping on the validation split (PublicTest). Writes OUT/last.pt every epoch (atomically), "
        "OUT/best.pt, OUT/log.jsonl, OUT/curves.png and OUT/summary.json. Under torchrun it trains with "
        "DistributedDataParallel (same command). " + training_codes,
    )
    p.add_argument("--model", type=_model_names(names, allow_all=True),
                   help=f"architecture: {', '.join(names)}, or 'all' for the four reference models "
                   f"(default {DEFAULT_MODEL})")
    p.add_argument("--out", help="run directory (default runs/MODEL)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.pt (same settings; "
                   f"{', '.join('--' + k.replace('_', '-') for k in RESUME_OVERRIDES)} may change: a new --epochs "
                   "re-fits the LR schedule)")
    _train_options(p)
    p.set_defaults(func=run_train)

    p = subparsers.add_parser(
        "train-all",
        help="train the four reference models in sequence and compare them",
        description="Train base, vgg13, resnet18 and resnet50 one after another into OUT/<model>/ and write "
        "OUT/comparison.md and OUT/comparison.json. Runs already complete are skipped, unfinished ones resumed. "
        + training_codes,
    )
    p.add_argument("--out", default="runs", help="parent directory of the runs (default runs)")
    p.add_argument("--models", type=_model_names(names, many=True), help=f"comma-separated subset/extension of the list (default base,vgg13,resnet18,resnet50; "
                   f"available: {', '.join(names)})")
    _train_options(p)
    p.set_defaults(func=run_train_all)

    p = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint or an exported .onnx model on a FER2013 split",
        description="Accuracy, loss, per-class precision/recall/F1/TPR/FPR/AUC, macro and weighted averages and the "
        "confusion matrix. An .onnx model runs through the fer-edge runtime without torch (needs the light [eval] extra: "
        "scikit-learn, and matplotlib for the plots); a checkpoint (.pt) needs the [train] extra. Writes report.json, report.md, per_class.csv, confusion.csv, confusion.png and "
        "roc.png to --out. " + help_line(Exit.OK, Exit.USAGE, Exit.INPUT, Exit.MODEL, Exit.DEVICE, Exit.DEPENDENCY,
                                         Exit.INTERRUPTED),
    )
    p.add_argument("--model", required=True, metavar="PATH", help="training checkpoint (best.pt/last.pt; a run "
                   f"directory means its best.pt), .onnx file, or a packaged model: {', '.join(PACKAGED_MODELS)}")
    p.add_argument("--data", required=True, help="FER2013 CSV or image folder")
    p.add_argument("--ferplus", metavar="FER2013NEW.CSV",
                   help="FER+ votes for the rows of --data: score a FER+ model by the FER+ majority protocol (faces "
                   "without a strict majority, or whose majority is unknown / not a face, are left out)")
    p.add_argument("--split", default="PublicTest", type=_split_name,
                   help="PublicTest (default), PrivateTest or Training (or validation, test, train)")
    p.add_argument("--out", help="directory for the report files (default: none written unless given); refuses "
                   "(exit 2, nothing written) when a report file is already there, unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="replace report files an earlier run left in --out (never the model or the data)")
    p.add_argument("--device", default="auto", type=onnx_device,
                   help="auto, cpu or cuda (checkpoints); cpu/cuda/tensorrt for .onnx")
    p.add_argument("--threads", type=positive_int, help="onnxruntime threads for .onnx models")
    p.add_argument("--split-stats", action="store_true",
                   help="normalise with the evaluated split's own mean/std (the reference design's per-split mode)")
    p.add_argument("--robustness", action="store_true",
                   help="also score the split under perturbations of the photo (dim to bright exposure, low contrast, "
                   "blur, +-10deg rotation, JPEG q30, mirror) and report the accuracy drop of each "
                   "(robustness.json / robustness.md in --out)")
    add_json_option(p, "the JSON report")
    p.set_defaults(func=run_eval)

    p = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX (optionally int8 / fp16 variants)",
        description="Export a training checkpoint to ONNX: input 'input' float32 (N,1,48,48) with a dynamic batch "
        "axis, output 'logits' (N,7), opset 17 (TorchScript exporter; --dynamo uses opset 18), and the preprocessing "
        "contract (classes, input size, channels, mean/std, model name, validation accuracy) in the metadata key "
        "'fer_edge'. ONNX Runtime and PyTorch logits must agree within 1e-4 on random and real faces, else the export "
        "fails and writes nothing. --int8/--fp16 also write OUT.int8.onnx / OUT.fp16.onnx with their accuracy drop "
        "on PublicTest; a failed or interrupted export leaves none of its files. " + file_codes,
    )
    p.add_argument("--checkpoint", required=True, help="training checkpoint, e.g. runs/resnet18/best.pt (or the run directory)")
    p.add_argument("--out", required=True, type=file_with_suffix(".onnx"),
                   help="output .onnx path; refuses (exit 2, nothing written) when it or its .int8/.fp16 variant "
                   "exists, unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the files of an earlier export (never the checkpoint or the data)")
    p.add_argument("--data", help="FER2013 CSV / folder for the real-face parity check, calibration and accuracy "
                   "(default: the dataset the checkpoint was trained on, if it still exists)")
    p.add_argument("--opset", type=int_at_least(13), help="ONNX opset (default 17; 18 with --dynamo)")
    p.add_argument("--dynamo", action="store_true", help="use torch.export-based exporter instead of TorchScript")
    p.add_argument("--tta", choices=TTA_MODES, default="none",
                   help="test-time augmentation inside the graph; flip: average each face with its mirror image "
                   "(twice the work per face; default none)")
    p.add_argument("--int8", action="store_true", help="also write a static-quantized int8 model (QDQ, per-channel)")
    p.add_argument("--fp16", action="store_true", help="also write an fp16 model (float32 input/output)")
    p.add_argument("--calibration-size", type=positive_int, default=CALIBRATION_SIZE,
                   help=f"training faces for int8 calibration (default {CALIBRATION_SIZE})")
    p.add_argument("--ferplus", metavar="FER2013NEW.CSV",
                   help="a FER+ model's labels for --data: its accuracy and temperature are measured on the FER+ "
                   "majority labels (default: the file it was trained with, if it still exists)")
    add_json_option(p, "the export summary as JSON")
    p.set_defaults(func=run_export)

    p = subparsers.add_parser(
        "import",
        help="rebuild a training checkpoint from an exported .onnx model (int8 dequantized)",
        description="The shipped .onnx files are the durable form of fer-edge's weights: this writes a checkpoint "
        "that train --init / --teacher, eval and export take, from any fer-edge export (fp32, fp16 or int8, whose "
        "weights are dequantized; an export with --tta flip gives the network alone, which export --tta flip wraps "
        "again). BatchNorm, folded into the convolutions at export, is re-inserted so the "
        "checkpoint computes what the ONNX model computes (with --data, its statistics are those of the training "
        "faces, which a fine-tune needs). Reports how often the two agree on validation faces. " + file_codes,
    )
    p.add_argument("--model", required=True, metavar="ONNX",
                   help=f"an .onnx exported by fer-edge, or a packaged model name ({', '.join(PACKAGED_MODELS)})")
    p.add_argument("--out", required=True, type=file_with_suffix(".pt"),
                   help="the checkpoint to write; refuses (exit 2) when it exists, unless --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--data", help="FER2013 CSV: BatchNorm statistics from its training faces and the agreement check "
                   "on its validation faces (recommended before a fine-tune)")
    add_json_option(p, "the import summary as JSON")
    p.set_defaults(func=run_import)


def _explicit(args: argparse.Namespace) -> dict:
    """The training options the user actually gave (argparse defaults are None)."""
    from .config import TrainConfig
    from dataclasses import fields

    names = {f.name for f in fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def _print_summary(result, as_json: bool) -> None:
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return
    if as_json:
        print(jsonout.dumps(result.to_dict(), indent=2))
    else:
        print(
            f"{result.model}: best validation accuracy {result.best_val_accuracy:.4f} at epoch {result.best_epoch} "
            f"({result.epochs_run} epochs, {result.wall_time_s:.0f}s, {result.images_per_s:.0f} img/s) -> {result.out_dir}",
            file=sys.stderr,
        )


def run_train(args: argparse.Namespace) -> int:
    if args.model == "all":
        args.models = None
        args.out = args.out or "runs"
        return run_train_all(args)
    _torch_env()
    require("torch")
    from .checkpoint import load_checkpoint
    from .config import DEFAULT_MODEL, TrainConfig
    from .trainer import train

    given = _explicit(args)
    ckpt = None
    if args.resume:
        out = Path(args.out or f"runs/{args.model or DEFAULT_MODEL}")
        if not (out / "last.pt").is_file():
            raise ModelError(f"--resume: no checkpoint at {out / 'last.pt'} (start without --resume)")
        ckpt = load_checkpoint(out / "last.pt", expect_model=args.model)
        cfg = TrainConfig.resumed(ckpt["config"], given, str(out), "--resume continues the run as it was configured")
    else:
        if not args.data:
            raise UsageError("--data is required (a FER2013 CSV or image folder)")
        model = args.model or DEFAULT_MODEL
        cfg = TrainConfig(**{**given, "model": model, "out": args.out or f"runs/{model}"})
        if (Path(cfg.out) / "last.pt").exists():
            raise UsageError(
                f"{cfg.out} already holds a training run; continue it with --resume or choose another --out"
            )
    _check_data(cfg.data)
    if cfg.ferplus:
        _check_data(cfg.ferplus, "--ferplus")
    elif "ferplus_target" in given:
        raise UsageError("--ferplus-target needs --ferplus fer2013new.csv")
    if cfg.distill_clean and not cfg.teacher:
        raise UsageError("--distill-clean needs --teacher")
    if cfg.distill_cached and not cfg.teacher:
        raise UsageError("--distill-cached needs --teacher")
    if cfg.distill_cached and cfg.distill_clean:
        raise UsageError("--distill-cached already gives the teacher the clean face; drop --distill-clean")
    if cfg.blur_p is not None and cfg.augment == "none":
        raise UsageError("--blur-p needs an --augment other than none")
    if cfg.jpeg_p is not None and cfg.augment == "none":
        raise UsageError("--jpeg-p needs an --augment other than none")
    aug = cfg.augment_config()  # what the trainer will use
    if cfg.distill_clean and not (aug is not None and aug.photometric):
        raise UsageError(f"--distill-clean needs a photometric --augment (strong or strong-jpeg), --blur-p or --jpeg-p, not {cfg.augment!r}")
    imports = {} if args.resume else _import_targets(cfg)  # a resumed run has its imports in its config
    _check_run_outputs(cfg, args.resume, imports.values())  # before anything is imported, read or written
    if imports:  # an exported model (or a packaged one) becomes a checkpoint first: fer-edge import
        cfg.teacher = [_checkpoint_of(t, "--teacher", cfg, imports) for t in cfg.teacher] if cfg.teacher else cfg.teacher
        cfg.init = _checkpoint_of(cfg.init, "--init", cfg, imports) if cfg.init else cfg.init
    for t in cfg.teacher or []:  # before any data is read: a typo should not cost a minute of loading
        if not Path(t).is_file():
            raise InputError(f"--teacher {t}: no such checkpoint")
    if cfg.init and not Path(cfg.init).is_file():
        raise InputError(f"--init {cfg.init}: no such checkpoint")
    result = train(cfg, resume=args.resume, quiet=args.quiet, checkpoint=ckpt)
    _print_summary(result, args.json)
    return 0


def _check_run_outputs(cfg, resume: bool, imports: Iterable[Path] = ()) -> None:
    """Refuse (UsageError, exit 2) a run whose files in ``cfg.out`` (checkpoint.RUN_FILES, the
    ``--keep-epochs`` weights, the ``imports`` of its --init / --teacher models) would replace one of its
    inputs (--data, --ferplus, --init, --teacher), or, unless it is resumed, a file that was there before
    it: the run would destroy them, an epoch or hours later. Call it before anything is written."""
    from fer_edge.cli.outputs import check_derived_outputs

    from .checkpoint import RUN_FILES, epoch_file

    out = Path(cfg.out)
    files = [out / name for name in RUN_FILES]
    if cfg.keep_epochs:  # the epochs kept depend on when the run stops (--time-budget): any of them
        files += [out / epoch_file(e) for e in range(1, cfg.epochs + 1)]
    inputs = [p for p in (cfg.data, cfg.ferplus, cfg.init, *(cfg.teacher or [])) if p]
    check_derived_outputs("--out", files + list(imports), inputs, overwrite=True)  # never an input
    # nor, unless resumed, a file already there (train has no --overwrite: the remedy is another folder)
    check_derived_outputs("--out", files, [], overwrite=resume, remedy="choose another --out (an empty or new folder)",
                          overwrite_hint=None)


def _is_import(model: str) -> bool:
    """Whether a --init / --teacher ``model`` is imported before training (fer-edge import): an ``.onnx``
    export or a packaged model name."""
    return model in PACKAGED_MODELS or Path(model).suffix.lower() == ".onnx"


def _import_targets(cfg) -> dict[str, Path]:
    """Where each --teacher and --init that :func:`_is_import` is imported: ``OUT/imported/NAME.pt``, where
    two models of one name (a/m.onnx, b/m.onnx) get m.pt and m-2.pt, not one import for both."""
    folder = Path(cfg.out) / "imported"
    targets: dict[str, Path] = {}
    for model in [*(cfg.teacher or []), *([cfg.init] if cfg.init else [])]:
        if model in targets or not _is_import(model):
            continue
        stem = model if model in PACKAGED_MODELS else Path(model).stem
        dst, n = folder / f"{stem}.pt", 2
        while dst in targets.values():
            dst, n = folder / f"{stem}-{n}.pt", n + 1
        targets[model] = dst
    return targets


def _checkpoint_of(model: str, option: str, cfg, imports: dict[str, Path]) -> str:
    """``model`` as a checkpoint path: an ``.onnx`` export or a packaged model name
    (``PACKAGED_MODELS``) is imported into the run folder (``imports[model]``, BatchNorm statistics
    from the training faces of ``--data``); anything else is returned as it is.

    An import already there is reused only when it was made from the same file's bytes and the same
    --data (from_onnx.imported_from): an earlier attempt may have imported another file of that name.
    One that is not a fer-edge import at all is not ours to replace (UsageError)."""
    from fer_edge.runtime.default_model import resolve_model_path

    if model not in imports:
        return model
    src = resolve_model_path(model)
    if not src.is_file():
        raise ModelError(f"{option} {model}: model not found")
    from .checkpoint import load_checkpoint
    from .from_onnx import import_onnx, imported_from

    _check_data(cfg.data)
    dst = imports[model]
    if os.path.lexists(dst):
        try:
            earlier = load_checkpoint(dst)
        except ModelError:
            earlier = {}
        if "imported_from" not in earlier:
            raise UsageError(f"--out would overwrite {dst}, which existed before this run and is not a checkpoint "
                             f"fer-edge imported; move it away or choose another --out")
        if imported_from(earlier, src, cfg.data):
            return str(dst)
    result = import_onnx(src, dst, data=cfg.data)
    print(f"{option} {model}: imported into {dst} ({result.layers} layers)", file=sys.stderr)
    return str(dst)


def _check_data(path: str, option: str = "") -> None:
    if not Path(path).exists():
        raise InputError(f"{option + ' ' if option else ''}{path}: no such file or directory")


def run_train_all(args: argparse.Namespace) -> int:
    _torch_env()
    require("torch")
    from .compare import plan_runs, train_all

    if not args.data:
        raise UsageError("--data is required (a FER2013 CSV or image folder)")
    _check_data(args.data)
    models = args.models.split(",") if getattr(args, "models", None) else None
    given = _explicit(args)
    given.pop("model", None)
    out = Path(args.out)
    runs = plan_runs(args.data, out, models=models, options=given)  # every run checked before the first trains
    for cfg, resume in runs:
        _check_run_outputs(cfg, resume)
    table = train_all(args.data, out, quiet=args.quiet, runs=runs)
    if args.json:
        print(jsonout.dumps(table, indent=2))
    else:
        print(f"\ncomparison ({out / 'comparison.md'}, {out / 'comparison.json'}):")
        print((out / "comparison.md").read_text(), end="")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    _torch_env()
    require("sklearn", extra="eval")  # scikit-learn only: an .onnx model is evaluated without torch
    from fer_edge.runtime.default_model import resolve_model_path

    from .evaluate import evaluate, write_report

    args.model = str(resolve_model_path(args.model))  # "default": the packaged model
    if args.out:
        from fer_edge.cli.outputs import check_derived_outputs

        from .robustness import ROBUSTNESS_FILES
        from .evaluate import REPORT_FILES

        names = REPORT_FILES + (ROBUSTNESS_FILES if args.robustness else ())
        check_derived_outputs("--out", [Path(args.out) / n for n in names], [args.model, args.data], args.overwrite)

    if args.ferplus:
        _check_data(args.ferplus, "--ferplus")
    report, curves = evaluate(args.model, args.data, args.split, device=args.device, threads=args.threads,
                              split_stats=args.split_stats, ferplus=args.ferplus)
    robust = None
    if args.robustness:
        from .evaluate import load_split, scorer
        from .robustness import robustness_report, write_robustness

        images, labels = load_split(args.data, args.split, ferplus=args.ferplus)
        score = scorer(args.model, device=args.device, threads=args.threads, split_stats=args.split_stats)
        robust = robustness_report(score, images, labels, model=report.model, split=report.split,
                                   progress=lambda name: print(f"robustness: {name}", file=sys.stderr))
        report.extra["robustness"] = robust.to_dict()
    if args.out:
        notes: list[str] = []
        for path in write_report(report, curves, args.out, notes=notes):
            print(f"wrote {path}", file=sys.stderr)
        for note in notes:  # plots that could not be drawn
            print(f"fer-edge: note: {note}", file=sys.stderr)
        if robust is not None:
            for path in write_robustness(robust, args.out):
                print(f"wrote {path}", file=sys.stderr)
    if args.json:
        print(jsonout.dumps(report.to_dict(), indent=2))
    else:
        from .metrics import markdown_table

        print(markdown_table(report), end="")
        if robust is not None:
            print("\n" + robust.markdown(), end="")
    return 0


def run_import(args: argparse.Namespace) -> int:
    _torch_env()
    require("torch")
    require("onnx")
    from fer_edge.cli.outputs import check_derived_outputs
    from fer_edge.runtime.default_model import resolve_model_path

    from .from_onnx import import_onnx

    model = resolve_model_path(args.model)
    if not model.is_file():
        raise ModelError(f"{args.model}: model not found")
    if args.data:
        _check_data(args.data, "--data")
    check_derived_outputs("--out", [Path(args.out)], [str(model)] + ([args.data] if args.data else []),
                          args.overwrite, remedy="choose another --out file")
    result = import_onnx(model, args.out, data=args.data)
    agree = (f"; agrees with the ONNX model on {100 * result.argmax_agreement:.1f} % of {result.faces} validation "
             f"faces (logits within {result.max_abs_diff:.3g})" if result.argmax_agreement is not None else "")
    print(f"wrote {result.path}: {result.model}, {result.layers} layers"
          f"{', BatchNorm statistics from the training faces' if result.bn_from_data else ''}{agree}", file=sys.stderr)
    if args.json:
        print(jsonout.dumps(result.to_dict(), indent=2))
    return 0


def run_export(args: argparse.Namespace) -> int:
    _torch_env()
    require("torch")
    require("onnx")
    from .export import export_checkpoint, read_contract, whole_or_nothing
    from .variants import VariantRequest, measure_variants, plan_variants

    if args.data:
        _check_data(args.data)
    if args.ferplus:
        _check_data(args.ferplus, "--ferplus")
    from fer_edge.cli.outputs import check_derived_outputs

    from .quantize import variant_path

    targets = [Path(args.out)] + [variant_path(args.out, tag) for tag, on in (("int8", args.int8), ("fp16", args.fp16)) if on]
    check_derived_outputs("--out", targets, [p for p in (args.checkpoint, args.data, args.ferplus) if p],
                          args.overwrite, remedy="choose another --out file")
    request = VariantRequest(args.checkpoint, args.data, args.ferplus, args.int8, args.fp16, args.calibration_size)
    plan = plan_variants(request)  # the data, its FER+ join and int8's calibration faces, before anything is written
    with whole_or_nothing(targets):
        result = export_checkpoint(args.checkpoint, args.out, data=args.data, opset=args.opset, dynamo=args.dynamo,
                                   tta=args.tta)
        par = result.parity
        real = f", real faces {par['max_abs_diff_real']:.2e}" if par["max_abs_diff_real"] is not None else " (no real faces)"
        print(f"wrote {result.path} ({result.size_bytes / 1e6:.1f} MB, opset {result.opset}); parity max |diff| "
              f"random {par['max_abs_diff_random']:.2e}{real}", file=sys.stderr)
        result.variants = measure_variants(result, request, plan)
        result.contract = json.loads(read_contract(result.path).to_json())  # now with the measured accuracy
    if args.json:
        print(jsonout.dumps(result.to_dict(), indent=2))
    return 0
