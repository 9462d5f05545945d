"""Augmentation, checkpoints, metrics and splits, each on its own."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fer_edge.errors import InputError, ModelError  # noqa: E402
from fer_edge.training.augment import AugmentConfig, augment_batch, random_erase  # noqa: E402
from fer_edge.training.checkpoint import (  # noqa: E402
    FORMAT,
    atomic_save,
    capture_rng,
    load_checkpoint,
    restore_rng,
)
from fer_edge.training.metrics import compute_report  # noqa: E402
from fer_edge.training.schedule import WarmupCosine  # noqa: E402
from fer_edge.training.splits import canonical_split, stratified_holdout  # noqa: E402
from fer_edge.training.trainer import class_weights  # noqa: E402


def _faces(n=8, seed=0):
    return torch.randn(n, 1, 48, 48, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------- augmentation


def test_augment_is_deterministic_per_generator_seed_and_keeps_shape():
    x = _faces()
    a = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(1))
    b = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(1))
    c = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_flip_only_augmentation_returns_each_face_or_its_mirror():
    x = _faces(16)
    cfg = AugmentConfig(translate_px=0, rotate_deg=0, scale=(1.0, 1.0), erase_p=0.0, flip=True)
    out = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    same = (out - x).abs().amax(dim=(1, 2, 3)) < 1e-4
    mirrored = (out - x.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-4
    assert bool((same | mirrored).all())
    assert same.any() and mirrored.any()  # 16 fair coins


def test_translation_brings_in_zero_borders():
    x = torch.ones(32, 1, 48, 48)
    cfg = AugmentConfig(translate_px=4, rotate_deg=0, scale=(1.0, 1.0), erase_p=0.0, flip=False)
    out = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1 + 1e-6
    assert (out < 0.5).any()  # some border is uncovered
    assert torch.allclose(out[:, :, 8:40, 8:40], torch.ones(1))  # the middle is untouched by a <=4 px shift


def test_random_erasing_zeroes_one_rectangle_within_the_area_bounds():
    x = torch.ones(64, 1, 48, 48)
    cfg = AugmentConfig(erase_p=1.0, erase_area=(0.05, 0.2))
    out = random_erase(x, cfg, torch.Generator().manual_seed(0))
    erased = (out == 0).sum(dim=(1, 2, 3)).float() / (48 * 48)
    assert (erased > 0).all()
    assert erased.max() <= 0.2 * 1.35  # rounding of the sides, clamping at the border
    for img in out[:, 0]:
        rows = (img == 0).any(1).nonzero().flatten()
        cols = (img == 0).any(0).nonzero().flatten()
        block = img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert (block == 0).all()  # a rectangle, not scattered pixels


# ----------------------------------------------------------------- checkpoints


def test_atomic_save_replaces_the_file_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"format": FORMAT, "x": torch.arange(3)}, path)
    atomic_save({"format": FORMAT, "x": torch.arange(5)}, path)
    assert torch.load(path, weights_only=True)["x"].tolist() == [0, 1, 2, 3, 4]
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
def test_checkpoints_are_written_with_the_user_s_umask_not_owner_only(tmp_path):
    import stat

    from fer_edge.training.checkpoint import current_umask

    old = os.umask(0o022)
    try:
        for mask, mode in ((0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)):
            os.umask(mask)
            assert current_umask() == mask
            path = tmp_path / f"best-{mask:03o}.pt"
            atomic_save({"v": 1}, path)
            assert stat.S_IMODE(path.stat().st_mode) == mode, (oct(mask), oct(path.stat().st_mode))
            atomic_save({"v": 2}, path)  # replacing it too
            assert stat.S_IMODE(path.stat().st_mode) == mode
    finally:
        os.umask(old)


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"v": 1}, path)
    with pytest.raises(Exception):
        atomic_save({"v": 2, "bad": lambda: None}, path)  # lambdas cannot be pickled
    assert torch.load(path, weights_only=True) == {"v": 1}
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    atomic_save({"rng": capture_rng()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_load_checkpoint_errors_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"not a fer-edge checkpoint \(not a PyTorch checkpoint file\)"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state": 1}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a fer-edge checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({"format": FORMAT, "version": 1, "model_name": "resnet18"}, tmp_path / "r18.pt")
    with pytest.raises(ModelError, match="'resnet18' model, not 'vgg13'"):
        load_checkpoint(tmp_path / "r18.pt", expect_model="vgg13")


# ----------------------------------------------------------------- schedule, weights, splits


def test_warmup_then_cosine_to_zero():
    s = WarmupCosine(warmup_steps=4, total_steps=14)
    assert [s(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert s(4) == 1.0 and s(9) == pytest.approx(0.5) and s(14) == pytest.approx(0.0)
    assert WarmupCosine(2, 10, cosine=False)(9) == 1.0


def test_class_weights_are_inverse_frequency_with_mean_one():
    w = class_weights(np.array([10, 40, 50, 0, 0, 0, 0])).numpy()
    assert w[0] / w[1] == pytest.approx(4.0) and w[1] / w[2] == pytest.approx(1.25)
    assert w[:3].mean() == pytest.approx(1.0) and (w[3:] == 0).all()


def test_stratified_holdout_is_per_class_and_seeded():
    labels = np.repeat(np.arange(7), [40, 5, 40, 80, 40, 30, 40])
    a = stratified_holdout(labels, 0.1, seed=1)
    assert np.array_equal(a, stratified_holdout(labels, 0.1, seed=1))
    assert not np.array_equal(a, stratified_holdout(labels, 0.1, seed=2))
    assert np.bincount(labels[a], minlength=7).tolist() == [4, 1, 4, 8, 4, 3, 4]
    with pytest.raises(InputError):
        stratified_holdout(labels, 1.5, seed=0)


def test_split_names_accept_usage_and_split_spellings():
    assert [canonical_split(s) for s in ("PublicTest", "privatetest", "Training", "val", "test")] == [
        "validation", "test", "train", "validation", "test"]
    with pytest.raises(InputError, match="unknown split"):
        canonical_split("holdout")


# ----------------------------------------------------------------- metrics


def test_report_matches_counts_computed_by_hand():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 200)
    logits = rng.standard_normal((200, 7)).astype(np.float32)
    logits[np.arange(200), labels] += 1.5  # better than chance, not perfect
    classes = [f"c{i}" for i in range(7)]
    report, curves = compute_report(labels, logits, classes)
    pred = logits.argmax(1)
    assert report.n == 200
    assert report.accuracy == pytest.approx((pred == labels).mean())
    z = logits - logits.max(1, keepdims=True)
    nll = -(z[np.arange(200), labels] - np.log(np.exp(z).sum(1)))
    assert report.loss == pytest.approx(nll.mean(), rel=1e-5)
    cm = np.array(report.confusion_matrix)
    assert cm.sum() == 200 and cm[2, 5] == ((labels == 2) & (pred == 5)).sum()
    for c, name in enumerate(classes):
        m = report.per_class[name]
        tp = ((pred == c) & (labels == c)).sum()
        fp = ((pred == c) & (labels != c)).sum()
        fn = ((pred != c) & (labels == c)).sum()
        assert m.precision == pytest.approx(tp / (tp + fp))
        assert m.recall == pytest.approx(tp / (tp + fn)) and m.tpr == m.recall
        assert m.fpr == pytest.approx(fp / (labels != c).sum())
        assert m.support == (labels == c).sum()
        assert 0.5 < m.auc <= 1.0 and curves[name][2] == m.auc
    f1s = [report.per_class[n].f1 for n in classes]
    assert report.macro["f1"] == pytest.approx(np.mean(f1s))
    assert report.weighted["f1"] == pytest.approx(np.average(f1s, weights=np.bincount(labels, minlength=7)))


def test_report_handles_a_class_missing_from_the_split():
    labels = np.array([0, 0, 3, 3, 3])
    logits = np.eye(7, dtype=np.float32)[[0, 3, 3, 3, 1]]
    report, curves = compute_report(labels, logits, [str(i) for i in range(7)])
    assert report.per_class["1"].support == 0 and report.per_class["1"].auc is None
    assert report.per_class["1"].fpr == pytest.approx(1 / 5)
    assert report.accuracy == pytest.approx(3 / 5)
    assert "1" not in curves


def test_weights_of_another_architecture_are_a_model_error():
    from fer_edge.training.checkpoint import build_from_checkpoint
    from fer_edge.training.models import create_model

    ckpt = {"model_name": "resnet18", "model": create_model("edgenet").state_dict()}
    with pytest.raises(ModelError, match="weights do not fit a 'resnet18' model"):
        build_from_checkpoint(ckpt, "x.pt")


def test_export_warns_when_a_variant_loses_accuracy():
    from fer_edge.training.variants import drop_warning

    assert drop_warning("int8", 0.70, 0.695) is None
    w = drop_warning("int8", 0.551, 0.299)
    assert w is not None and "25.2 points" in w and "55.1 -> 29.9 %" in w and "--calibration-size" in w
    assert "fp32 model" in drop_warning("fp16", 0.7, 0.6)
