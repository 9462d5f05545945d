"""Distillation (--teacher) and --time-budget: the loss, the teacher's own normalisation, a student that
learns the task from a trained teacher's soft targets alone."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fer_edge.training.checkpoint import load_checkpoint  # noqa: E402
from fer_edge.training.distill import Teacher, distill_loss  # noqa: E402
from test_training_e2e import cli, edgenet_run, stripes_csv, synthetic_faces, train_args  # noqa: E402,F401


def test_distill_loss_is_zero_only_when_the_student_agrees():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(8, 7, generator=g) * 3
    assert float(distill_loss(t.clone(), t, 3.0)) == pytest.approx(0.0, abs=1e-6)
    s = torch.randn(8, 7, generator=g)
    loss = distill_loss(s, t, 2.0)
    q = torch.softmax(t / 2, 1)
    manual = (q * (q.log() - torch.log_softmax(s / 2, 1))).sum(1).mean() * 4
    assert float(loss) == pytest.approx(float(manual), rel=1e-5) and float(loss) > 0.1


def test_teacher_reexpresses_the_students_normalisation(edgenet_run):
    ckpt = load_checkpoint(edgenet_run / "best.pt")
    mean, std = ckpt["norm"]["mean"], ckpt["norm"]["std"]
    px = torch.from_numpy(synthetic_faces(2, 9)[0]).float().unsqueeze(1)
    own = Teacher([str(edgenet_run / "best.pt")], mean, std, torch.device("cpu"))
    other = Teacher([str(edgenet_run / "best.pt")], 100.0, 40.0, torch.device("cpu"))
    a = own.logits((px - mean) / std)
    b = other.logits((px - 100.0) / 40.0)  # the same faces, normalised by a student with other stats
    assert torch.allclose(a, b, atol=1e-4)
    # Two copies of one teacher average to that teacher.
    pair = Teacher([str(edgenet_run / "best.pt")] * 2, mean, std, torch.device("cpu"))
    assert torch.allclose(pair.logits((px - mean) / std), a, atol=1e-5)


def test_student_learns_from_the_teacher_alone(edgenet_run, stripes_csv, tmp_path):
    teacher_acc = load_checkpoint(edgenet_run / "best.pt")["best_val_accuracy"]
    assert teacher_acc >= 0.6
    out = tmp_path / "student"
    # --distill-weight 1: the labels carry no weight, so everything the student learns comes from the teacher.
    code = cli(*train_args(stripes_csv, "edgenet", out, "--epochs", "6", "--augment", "light", "--lr", "0.05",
                           "--teacher", edgenet_run / "best.pt", "--distill-weight", "1.0", "--seed", "3"))
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    # Chance is 1/7; measured 0.61 with a 0.75 teacher.
    assert summary["best_val_accuracy"] >= 0.45
    cfg = load_checkpoint(out / "last.pt")["config"]
    assert cfg["teacher"] == [str(edgenet_run / "best.pt")] and cfg["distill_weight"] == 1.0


def test_mirrored_logits_average_each_face_and_its_mirror(edgenet_run):
    ckpt = load_checkpoint(edgenet_run / "best.pt")
    mean, std = ckpt["norm"]["mean"], ckpt["norm"]["std"]
    x = torch.randn(10, 1, 48, 48, generator=torch.Generator().manual_seed(4))  # no face is its own mirror
    teacher = Teacher([str(edgenet_run / "best.pt")], mean, std, torch.device("cpu"))
    cached = teacher.mirrored_logits(x, batch_size=3)  # batches of 3 over 10 faces: the last one short
    expected = (teacher.logits(x) + teacher.logits(torch.flip(x, dims=(3,)))) / 2
    assert cached.shape == (10, 7) and torch.allclose(cached, expected, atol=1e-5)
    assert not torch.allclose(teacher.logits(x), expected, atol=1e-3)  # the mirror counts


def test_student_learns_from_cached_teacher_logits_alone(edgenet_run, stripes_csv, tmp_path, capsys):
    out = tmp_path / "student"
    # As above, with the teacher run once before training: with mixup, the stored logits are mixed along.
    code = cli(*train_args(stripes_csv, "edgenet", out, "--epochs", "6", "--augment", "light", "--lr", "0.05",
                           "--teacher", edgenet_run / "best.pt", "--distill-weight", "1.0", "--seed", "3",
                           "--distill-cached", "--mixup", "0.2"))
    assert code == 0
    assert "teacher scores each clean face and its mirror once" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["best_val_accuracy"] >= 0.45
    assert load_checkpoint(out / "last.pt")["config"]["distill_cached"] is True


@pytest.mark.parametrize("extra, message", [
    ((), "--distill-cached needs --teacher"),
    (("--teacher", "T", "--distill-clean", "--augment", "strong"), "drop --distill-clean"),
])
def test_distill_cached_misuse_is_a_usage_error(edgenet_run, stripes_csv, tmp_path, capsys, extra, message):
    extra = tuple(str(edgenet_run / "best.pt") if a == "T" else a for a in extra)
    code = cli(*train_args(stripes_csv, "edgenet", tmp_path / "s", "--epochs", "1", "--distill-cached", *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "Traceback" not in err


def test_missing_teacher_is_a_one_line_error(stripes_csv, tmp_path, capsys):
    code = cli(*train_args(stripes_csv, "edgenet", tmp_path / "s", "--epochs", "1", "--teacher", tmp_path / "nope.pt"))
    err = capsys.readouterr().err.strip()
    assert code != 0 and "nope.pt" in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_time_budget_lowers_epochs_and_refits_the_schedule(stripes_csv, tmp_path, capsys):
    out = tmp_path / "budget"
    # A budget no epoch fits in: the run ends after the two epochs it measured, as a finished run.
    code = cli(*train_args(stripes_csv, "edgenet", out, "--epochs", "40", "--time-budget", "0.01"))
    assert code == 0
    captured = capsys.readouterr()
    said = captured.out + captured.err
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    ckpt = load_checkpoint(out / "last.pt")
    assert len(log) == 2 and ckpt["config"]["epochs"] == 2 and ckpt["finished"]
    assert "time budget 0s" in said and "so 2 epochs instead of 40" in said


def test_time_budget_fit_counts_the_epochs_left_and_refits_the_cosine():
    from types import SimpleNamespace

    from fer_edge.training import distributed as dist_util
    from fer_edge.training.config import TrainConfig
    from fer_edge.training.schedule import WarmupCosine
    from fer_edge.training.trainer import _fit_time_budget

    cfg = TrainConfig(data="", epochs=40, time_budget=10.0, warmup_epochs=1.0)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    schedule = WarmupCosine(10, 400)
    run = SimpleNamespace(steps_per_epoch=10, optimizer=opt, schedule=schedule,
                          scheduler=torch.optim.lr_scheduler.LambdaLR(opt, schedule))
    env = SimpleNamespace(device=torch.device("cpu"), info=dist_util.DistInfo(0, 1, 0))
    _fit_time_budget(cfg, env, run, epoch=2, elapsed=2.5, epoch_time=1.0)  # 7.5 s left: 7 more epochs
    assert cfg.epochs == 9 and run.schedule.total_steps == 90
    lam = run.scheduler.lr_lambdas[0]
    assert lam(45) == pytest.approx(0.5 * (1 + np.cos(np.pi * 35 / 80))) and lam(90) == pytest.approx(0.0)
    _fit_time_budget(cfg, env, run, epoch=2, elapsed=2.5, epoch_time=0.1)  # everything fits: unchanged
    assert cfg.epochs == 9



def test_init_starts_from_a_checkpoints_weights(edgenet_run, stripes_csv, tmp_path, capsys):
    start = load_checkpoint(edgenet_run / "best.pt")["best_val_accuracy"]
    # An LR too small to move the weights: the run scores what its starting weights score.
    args = ["--epochs", "1", "--lr", "1e-9", "--augment", "none", "--json"]
    assert cli(*train_args(stripes_csv, "edgenet", tmp_path / "ft", *args, "--init", edgenet_run / "best.pt")) == 0
    tuned = json.loads(capsys.readouterr().out)["best_val_accuracy"]
    assert cli(*train_args(stripes_csv, "edgenet", tmp_path / "fresh", *args)) == 0
    fresh = json.loads(capsys.readouterr().out)["best_val_accuracy"]
    assert tuned == pytest.approx(start, abs=0.04) and fresh < start - 0.2


def test_init_with_another_architecture_is_a_one_line_error(edgenet_run, stripes_csv, tmp_path, capsys):
    code = cli(*train_args(stripes_csv, "fernet_s", tmp_path / "x", "--epochs", "1", "--init", edgenet_run / "best.pt"))
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 4 and "edgenet" in err and "fernet_s" in err


def _clean_view_batches(aug, teacher=True):
    from fer_edge.training.trainer import _Batches

    g = torch.Generator().manual_seed(5)
    raw = torch.randint(80, 171, (16, 1, 48, 48), generator=g, dtype=torch.uint8)  # no clipping under +-40
    empty = torch.zeros(0)
    b = _Batches(train_x=raw, train_y=torch.arange(16) % 7, val_x=empty, val_y=empty, mean=128.0, std=64.0,
                 loss_weights=None, sample_weights=None, aug=aug, teacher=object() if teacher else None)
    return b, raw


def _views_of(b, raw, mixup: float, clean: bool, seed: int = 11):
    from fer_edge.training.config import TrainConfig
    from fer_edge.training.trainer import _views

    cfg = TrainConfig(data="", mixup=mixup, distill_clean=clean)
    mix_rng = np.random.default_rng(seed) if mixup > 0 else None
    return _views(b, raw, b.train_y, cfg, torch.Generator().manual_seed(seed), mix_rng)


@pytest.mark.parametrize("mixup", [0.0, 0.4])
def test_distill_clean_teacher_sees_the_same_warp_without_the_light_change(mixup):
    from fer_edge.training.augment import AugmentConfig

    # Photometric change = a brightness shift only: then student - teacher must be that shift,
    # constant over each face's centre, exactly when the teacher's view went through the
    # student's crop, flip, rotation and mixup. Erasing off so every centre pixel is a face.
    aug = AugmentConfig(photometric_p=1.0, gamma=(1.0, 1.0), contrast=(1.0, 1.0), brightness_px=40.0, erase_p=0.0)
    b, raw = _clean_view_batches(aug)
    v = _views_of(b, raw, mixup, clean=True)
    assert v.student.shape == v.teacher.shape == (16, 1, 48, 48)
    diff = (v.student - v.teacher)[:, 0, 14:34, 14:34].reshape(16, -1)
    spread = diff.max(1).values - diff.min(1).values
    assert float(spread.max()) < 1e-4  # one shift per face: same geometry for both views
    assert float(diff.abs().mean()) > 0.1  # and the shifts are really there (uniform in +-40 px = +-0.62)
    assert float(diff.abs().max()) <= 40.0 / 64.0 + 1e-4
    # The teacher's centre is not the student's: different views of the same warped face.
    assert not torch.allclose(v.student, v.teacher)


def test_distill_clean_changes_nothing_else_about_a_step():
    from fer_edge.training.augment import AugmentConfig

    aug = AugmentConfig.preset("strong-jpeg")
    b, raw = _clean_view_batches(aug)
    with_clean = _views_of(b, raw, 0.2, clean=True)
    without = _views_of(b, raw, 0.2, clean=False)
    # The same random draws: the student's batch and targets are bit-identical.
    assert torch.equal(with_clean.student, without.student) and torch.equal(with_clean.target, without.target)
    assert without.teacher is without.student
    # No teacher, no clean view (the flag alone does nothing).
    b2, _ = _clean_view_batches(aug, teacher=False)
    alone = _views_of(b2, raw, 0.2, clean=True)
    assert alone.teacher is alone.student
    assert with_clean.teacher is not with_clean.student  # with a teacher, the flag does make one


def test_distill_clean_end_to_end_and_its_usage_errors(edgenet_run, stripes_csv, tmp_path, capsys):
    out = tmp_path / "clean"
    code = cli(*train_args(stripes_csv, "edgenet", out, "--epochs", "1", "--augment", "strong",
                           "--teacher", edgenet_run / "best.pt", "--distill-clean"))
    assert code == 0 and "teacher sees the clean face" in capsys.readouterr().err
    assert load_checkpoint(out / "last.pt")["config"]["distill_clean"] is True
    for extra in ([], ["--teacher", str(edgenet_run / "best.pt"), "--augment", "standard"]):
        code = cli(*train_args(stripes_csv, "edgenet", tmp_path / "bad", "--epochs", "1", "--distill-clean", *extra))
        err = capsys.readouterr().err.strip()
        assert code == 2 and "--distill-clean needs" in err and len(err.splitlines()) == 1


def test_blur_p_lays_over_the_preset_and_makes_a_plain_preset_photometric():
    from dataclasses import replace

    from fer_edge.training.augment import AugmentConfig, photometric_batch
    from fer_edge.training.config import TrainConfig

    strong = AugmentConfig.preset("strong-jpeg")
    assert TrainConfig(data="", augment="strong-jpeg").augment_config() == strong
    assert TrainConfig(data="", augment="strong-jpeg", blur_p=0.6).augment_config() == replace(strong, blur_p=0.6)
    assert TrainConfig(data="", augment="none", blur_p=0.6).augment_config() is None
    standard = TrainConfig(data="", augment="standard", blur_p=1.0).augment_config()
    assert standard.photometric and not AugmentConfig.preset("standard").photometric
    # blur_p 1 on the standard preset: every face is smoothed and nothing else changes its light.
    x = torch.from_numpy(synthetic_faces(3, 5)[0][:16]).float().unsqueeze(1)
    y = photometric_batch(x, standard, torch.Generator().manual_seed(3))
    rough = lambda t: (t[:, :, 1:] - t[:, :, :-1]).abs().mean(dim=(1, 2, 3))  # noqa: E731
    assert (rough(y) < rough(x)).all() and float(rough(y).sum() / rough(x).sum()) < 0.8  # sigma drawn in 0.3-1.3
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=2.0)


def test_blur_p_end_to_end_and_its_usage_error(edgenet_run, stripes_csv, tmp_path, capsys):
    out = tmp_path / "blur"
    code = cli(*train_args(stripes_csv, "edgenet", out, "--epochs", "1", "--augment", "standard", "--blur-p", "0.5",
                           "--teacher", edgenet_run / "best.pt", "--distill-clean"))
    assert code == 0 and "teacher sees the clean face" in capsys.readouterr().err
    assert load_checkpoint(out / "last.pt")["config"]["blur_p"] == 0.5
    code = cli(*train_args(stripes_csv, "edgenet", tmp_path / "bad", "--epochs", "1", "--augment", "none", "--blur-p", "0.5"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--blur-p needs an --augment" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exc:  # argparse's own range check
        cli(*train_args(stripes_csv, "edgenet", tmp_path / "bad", "--blur-p", "1.5"))
    assert exc.value.code == 2 and "--blur-p: must be in [0, 1], got 1.5" in capsys.readouterr().err


def test_jpeg_p_lays_over_the_preset_and_compresses_every_face_at_one(edgenet_run, stripes_csv, tmp_path, capsys):
    from dataclasses import replace

    import cv2

    from fer_edge.training.augment import AugmentConfig, photometric_batch
    from fer_edge.training.config import TrainConfig

    strong = AugmentConfig.preset("strong-jpeg")
    assert TrainConfig(data="", augment="strong-jpeg", jpeg_p=0.6).augment_config() == replace(strong, jpeg_p=0.6)
    assert TrainConfig(data="", augment="none", jpeg_p=0.6).augment_config() is None
    standard = replace(TrainConfig(data="", augment="standard", jpeg_p=1.0).augment_config(), jpeg_quality=(30, 30))
    assert standard.photometric and not AugmentConfig.preset("standard").photometric
    # jpeg_p 1: every face comes out as OpenCV's JPEG q30 round trip of it, give or take the DCT's rounding.
    faces = synthetic_faces(3, 5)[0][:8]
    y = photometric_batch(torch.from_numpy(faces).float().unsqueeze(1), standard, torch.Generator().manual_seed(3))
    ref = np.stack([cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 30])[1], cv2.IMREAD_GRAYSCALE)
                    for f in faces]).astype(np.float32)
    assert np.abs(y[:, 0].numpy() - ref).mean() < 1.0 < np.abs(faces.astype(np.float32) - ref).mean()
    out = tmp_path / "jpeg"
    code = cli(*train_args(stripes_csv, "edgenet", out, "--epochs", "1", "--augment", "standard", "--jpeg-p", "0.5"))
    assert code == 0 and load_checkpoint(out / "last.pt")["config"]["jpeg_p"] == 0.5
    capsys.readouterr()
    code = cli(*train_args(stripes_csv, "edgenet", tmp_path / "bad", "--epochs", "1", "--augment", "none", "--jpeg-p", "0.5"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--jpeg-p needs an --augment" in err and len(err.splitlines()) == 1
