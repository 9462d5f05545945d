"""The default-model recipe: per-face normalisation in the graph, photometric augmentation,
mixup, flip averaging in the export, the robustness report and the early-divergence warning."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from fer_edge.labels import NUM_CLASSES  # noqa: E402
from fer_edge.training.augment import AugmentConfig, mixup_batch, photometric_batch  # noqa: E402
from fer_edge.training.models import create_model  # noqa: E402
from fer_edge.training.robustness import (  # noqa: E402
    PERTURBATIONS,
    accuracy_and_macro_f1,
    robustness_report,
)
from fer_edge.training.divergence import divergence_warning  # noqa: E402
from test_training_e2e import cli, stripes_csv, synthetic_faces, train_args  # noqa: E402,F401


# --------------------------------------------------------------------------- the model


def test_fernet_logits_do_not_change_with_exposure_or_contrast():
    torch.manual_seed(0)
    model = create_model("fernet_s").eval()
    faces = torch.from_numpy(synthetic_faces(2, 3)[0][:8]).float().unsqueeze(1)
    x = (faces - 130.0) / 78.0
    dim = (faces * 0.4 - 130.0) / 78.0  # a face in a dim room, normalised with the same global stats
    flat = ((faces - 128.0) * 0.5 + 128.0 - 130.0) / 78.0
    with torch.no_grad():
        ref, a, b = model(x), model(dim), model(flat)
    # Equal up to the epsilon that keeps flat faces finite (1e-3 against a std of ~0.3 here).
    assert torch.allclose(ref, a, atol=1e-3) and torch.allclose(ref, b, atol=1e-3)
    # ... while a model without per-face normalisation does change: the test can tell the difference.
    edge = create_model("edgenet").eval()
    with torch.no_grad():
        assert not torch.allclose(edge(x), edge(dim), atol=1e-2)


def test_fernet_flat_face_gives_finite_logits():
    model = create_model("fernet_s").eval()
    with torch.no_grad():
        out = model(torch.full((2, 1, 48, 48), 0.3))
    assert torch.isfinite(out).all()


# --------------------------------------------------------------------------- augmentation


def _faces(n=16) -> torch.Tensor:
    return torch.from_numpy(synthetic_faces(3, 5)[0][:n]).float().unsqueeze(1)


def test_photometric_batch_is_seeded_and_stays_in_pixel_range():
    cfg = AugmentConfig.preset("strong")
    x = _faces()
    a = photometric_batch(x, cfg, torch.Generator().manual_seed(7))
    b = photometric_batch(x, cfg, torch.Generator().manual_seed(7))
    c = photometric_batch(x, cfg, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 255 and a.shape == x.shape
    changed = (a - x).abs().flatten(1).amax(1) > 1
    assert 0 < int(changed.sum()) < len(x)  # photometric_p 0.5: some faces changed, some left as they were


def test_photometric_batch_with_zero_probabilities_is_the_identity():
    x = _faces()
    cfg = AugmentConfig(photometric_p=0.0, blur_p=0.0, noise_p=0.0)
    assert torch.equal(photometric_batch(x, cfg, torch.Generator().manual_seed(0)), x)


def test_blur_smooths_every_face_and_keeps_its_mean():
    x = _faces()
    cfg = AugmentConfig(blur_p=1.0, blur_sigma=(1.0, 1.0))
    y = photometric_batch(x, cfg, torch.Generator().manual_seed(0))

    def roughness(t):  # mean absolute vertical gradient (the stripes are horizontal)
        return (t[:, :, 1:] - t[:, :, :-1]).abs().mean(dim=(1, 2, 3))

    assert (roughness(y) < 0.8 * roughness(x)).all()
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=2.0)


def test_mixup_blends_faces_and_targets_alike():
    x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, 2, 2).contiguous()
    y = torch.tensor([0, 1, 2, 3])
    teacher = torch.arange(4 * NUM_CLASSES, dtype=torch.float32).view(4, NUM_CLASSES)
    xm, t, tm = mixup_batch(x, y, NUM_CLASSES, 0.3, torch.Generator().manual_seed(1), label_smoothing=0.1,
                            paired=teacher)
    assert torch.allclose(t.sum(1), torch.ones(4))
    lam = 0.7  # folded to >= 0.5
    partner = (xm[:, 0, 0, 0] - lam * x[:, 0, 0, 0]) / (1 - lam)  # the face each was mixed with
    for i in range(4):
        j = int(round(float(partner[i])))
        expected = torch.full((NUM_CLASSES,), 0.1 / NUM_CLASSES)
        expected[i] += lam * 0.9
        expected[j] += (1 - lam) * 0.9
        assert torch.allclose(t[i], expected, atol=1e-6)
        assert torch.allclose(tm[i], lam * teacher[i] + (1 - lam) * teacher[j])  # the same partner, the same share
    assert mixup_batch(x, y, NUM_CLASSES, 0.3, torch.Generator().manual_seed(1))[2] is None


# --------------------------------------------------------------------------- divergence warning


def test_divergence_warning_names_a_collapsed_network():
    true = np.full(7, 100)  # 700 validation faces
    collapsed = np.array([0, 0, 0, 680, 20, 0, 0])
    hist = [{"train_loss": 1.9}, {"train_loss": 1.85}]  # epoch 3: enough training to tell
    w = divergence_warning(hist, 1.84, collapsed, true)
    assert w is not None and "'happy'" in w and "--lr" in w
    assert divergence_warning(hist, 1.84, np.full(7, 100), true) is None


def test_a_collapse_after_too_little_training_says_to_train_longer_not_to_lower_the_lr():
    true = np.array([3, 1, 3, 5, 3, 1, 2])  # a 200-face run's 18 validation faces
    collapsed = np.array([0, 0, 0, 18, 0, 0, 0])
    for hist, loss in (([], 2.10), ([{"train_loss": 2.10}], 1.95)):  # epochs 1 and 2
        w = divergence_warning(hist, loss, collapsed, true)
        assert w is not None and "all predictions one class" in w and "train for more epochs, or on more faces" in w
        assert "--lr" not in w
    many = np.full(7, 100)
    w = divergence_warning([], 1.95, np.array([0, 0, 0, 700, 0, 0, 0]), many)  # 700 faces, but epoch 1
    assert "too little training" in w and "--lr" not in w
    three = [{"train_loss": 2.0}, {"train_loss": 1.95}]
    w = divergence_warning(three, 1.9, collapsed, true)  # epoch 3, yet only 18 faces
    assert "on more faces" in w and "--lr" not in w
    # a loss far above a uniform guess's ln(7) = 1.95 is divergence however short the run
    assert "lower --lr" in divergence_warning([], 14.98, collapsed, true)


def test_divergence_warning_names_a_rising_loss_only_after_the_first_epochs():
    true = np.full(7, 10)
    spread = np.full(7, 10)
    hist = [{"train_loss": 1.8}, {"train_loss": 1.6}]
    assert "above epoch 1" in divergence_warning(hist, 2.3, spread, true)
    assert divergence_warning(hist, 1.5, spread, true) is None
    assert divergence_warning(hist[:1], 2.3, spread, true) is None  # epoch 2: too early to tell


def test_a_run_with_a_huge_learning_rate_warns_in_its_log(tmp_path, stripes_csv, capsys):
    out = tmp_path / "hot"
    # lr 2 without warm-up: fernet_s collapses onto one class in its first epoch (loss stays finite).
    assert cli(*train_args(stripes_csv, "fernet_s", out, "--epochs", "1", "--lr", "2", "--warmup-epochs", "0",
                           "--augment", "none")) == 0
    assert "warning: epoch 1: 100% of validation faces are predicted" in capsys.readouterr().err
    row = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert "early divergence" in row["warning"]


# --------------------------------------------------------------------------- robustness report


def test_perturbations_change_the_pixels_as_named():
    faces = synthetic_faces(1, 2)[0]
    by_name = {p.name: p.apply(faces) for p in PERTURBATIONS}
    for name, out in by_name.items():
        assert out.shape == faces.shape and out.dtype == np.uint8, name
    assert np.array_equal(by_name["mirror"], faces[:, :, ::-1])
    assert by_name["dim x0.4"].mean() == pytest.approx(0.4 * faces.mean(), abs=1.0)
    assert by_name["contrast x0.5"].std() < 0.6 * faces.std()
    assert not np.array_equal(by_name["jpeg q30"], faces)


def test_robustness_report_measures_the_drop_of_a_brightness_sensitive_model():
    faces, labels = synthetic_faces(4, 9)

    def by_brightness(images):  # a "model" that reads the class off the mean pixel: dimming breaks it
        logits = np.zeros((len(images), NUM_CLASSES), np.float32)
        logits[np.arange(len(images)), np.clip(images.mean(axis=(1, 2)) // 40, 0, 6).astype(int)] = 1
        return logits

    truth = np.clip(faces.mean(axis=(1, 2)) // 40, 0, 6).astype(int)
    r = robustness_report(by_brightness, faces, truth, model="toy", split="PublicTest")
    assert r.clean_accuracy == 1.0
    rows = {row.perturbation: row for row in r.rows}
    assert rows["dim x0.4"].drop_points > 50 and rows["mirror"].drop_points == 0
    assert r.worst.perturbation in ("dim x0.4", "dim x0.7", "bright x1.4")
    assert "| dim x0.4 |" in r.markdown()


def test_accuracy_and_macro_f1_match_scikit_learn():
    sklearn = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    acc, f1 = accuracy_and_macro_f1(y, p)
    assert acc == pytest.approx(sklearn.accuracy_score(y, p))
    assert f1 == pytest.approx(sklearn.f1_score(y, p, average="macro"))


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def fernet_run(stripes_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "fernet_s"
    assert cli(*train_args(stripes_csv, "fernet_s", out, "--epochs", "3", "--augment", "strong", "--mixup", "0.2")) == 0
    return out


def test_flip_averaged_export_is_mirror_invariant_and_matches_torch(fernet_run, stripes_csv, tmp_path):
    out = tmp_path / "m.onnx"
    assert cli("export", "--checkpoint", fernet_run / "best.pt", "--out", out, "--data", stripes_csv,
               "--tta", "flip") == 0
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = json.loads(sess.get_modelmeta().custom_metadata_map["fer_edge"])
    assert meta["extra"]["tta"] == "flip"
    x = np.random.default_rng(0).standard_normal((5, 1, 48, 48)).astype(np.float32)
    a = sess.run(None, {"input": x})[0]
    b = sess.run(None, {"input": np.ascontiguousarray(x[:, :, :, ::-1])})[0]
    assert np.allclose(a, b, atol=1e-5)
    from fer_edge.training.checkpoint import build_from_checkpoint, load_checkpoint

    ckpt = load_checkpoint(fernet_run / "best.pt")
    net = build_from_checkpoint(ckpt, fernet_run / "best.pt").eval()
    with torch.no_grad():
        t = torch.from_numpy(x)
        ref = (net(t) + net(torch.flip(t, dims=[3]))) / 2
    assert np.allclose(a, ref.numpy(), atol=1e-4)


def test_eval_robustness_writes_and_prints_the_report(fernet_run, stripes_csv, tmp_path, capsys):
    assert cli("eval", "--model", fernet_run / "best.pt", "--data", stripes_csv, "--robustness",
               "--out", tmp_path / "rep") == 0
    printed = capsys.readouterr().out
    assert "Robustness of fernet_s on PublicTest" in printed and "| jpeg q30 |" in printed
    rep = json.loads((tmp_path / "rep" / "robustness.json").read_text())
    assert [r["perturbation"] for r in rep["rows"]] == [p.name for p in PERTURBATIONS]
    assert rep["faces"] == 28 and rep["worst"]["perturbation"] in {p.name for p in PERTURBATIONS}
    main = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert main["extra"]["robustness"]["clean_accuracy"] == pytest.approx(main["accuracy"])


def test_export_and_eval_never_overwrite_files_they_were_not_told_to_replace(fernet_run, stripes_csv, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    int8 = tmp_path / "m.int8.onnx"
    int8.write_bytes(b"the user's own file")
    assert cli("export", "--checkpoint", fernet_run / "best.pt", "--out", out, "--data", stripes_csv, "--int8") == 2
    assert "would overwrite" in capsys.readouterr().err and not out.exists()
    assert int8.read_bytes() == b"the user's own file"
    assert cli("export", "--checkpoint", fernet_run / "best.pt", "--out", out, "--data", stripes_csv, "--int8",
               "--overwrite", "--calibration-size", "32") == 0
    assert out.is_file() and int8.read_bytes() != b"the user's own file"

    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "report.md").write_text("notes of mine")
    assert cli("eval", "--model", out, "--data", stripes_csv, "--out", rep) == 2
    assert "report.md" in capsys.readouterr().err and (rep / "report.md").read_text() == "notes of mine"
    assert not (rep / "report.json").exists()
    assert cli("eval", "--model", out, "--data", stripes_csv, "--out", rep, "--overwrite") == 0
    assert (rep / "report.json").is_file()


@pytest.mark.parametrize("quality", [30, 90])
def test_jpeg_batch_matches_a_real_jpeg_round_trip(quality):
    import cv2

    from fer_edge.training.augment import jpeg_batch

    faces = synthetic_faces(2, 11)[0][:10]
    real = np.stack([cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 0)
                     for f in faces]).astype(np.float32)
    ours = jpeg_batch(torch.from_numpy(faces).float().unsqueeze(1), torch.full((10,), float(quality)))
    ours = ours.squeeze(1).numpy()
    artefacts = np.abs(faces.astype(np.float32) - real).mean()  # what libjpeg's round trip changes
    assert artefacts > 2.0
    # Ours differs from libjpeg by its integer DCT's rounding only (measured: 4 % of the artefacts at
    # quality 30, 15 % at 90, where the artefacts themselves are small).
    assert np.abs(ours - real).mean() < 0.2 * artefacts
    assert ours.min() >= 0 and ours.max() <= 255


def test_strong_jpeg_preset_compresses_some_faces_and_is_seeded():
    cfg = AugmentConfig(jpeg_p=0.5)
    x = _faces()
    a = photometric_batch(x, cfg, torch.Generator().manual_seed(3))
    b = photometric_batch(x, cfg, torch.Generator().manual_seed(3))
    changed = (a - x).abs().flatten(1).amax(1) > 0
    assert torch.equal(a, b) and 0 < int(changed.sum()) < len(x)
    assert AugmentConfig.preset("strong-jpeg").jpeg_p > 0 and AugmentConfig.preset("strong").jpeg_p == 0
