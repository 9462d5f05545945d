"""End to end on generated faces, on the CPU: train, kill and resume, evaluate, export, parity.

The faces are horizontal stripes whose period encodes the class (random phase, noise):
easy enough that a few epochs learn them, and invariant to the flips and shifts of the
augmentation, so a run that does not learn points at the training code.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from fer_edge.cli import main  # noqa: E402
from fer_edge.contract import METADATA_KEY, ModelContract  # noqa: E402
from fer_edge.labels import CLASSES  # noqa: E402

from conftest import cli_env  # noqa: E402
PERIODS = (3, 4, 6, 8, 11, 16, 24)  # stripe period in pixels, per class


def synthetic_faces(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(48, dtype=np.float64)[:, None]
    faces, labels = [], []
    for c, period in enumerate(PERIODS):
        for _ in range(per_class):
            phase = rng.uniform(0, 2 * np.pi)
            img = 128 + 90 * np.sin(2 * np.pi * y / period + phase) + rng.normal(0, 20, (48, 48))
            faces.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(c)
    return np.stack(faces), np.array(labels)


def write_csv(path: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for usage, (faces, labels) in splits.items():
            for img, lab in zip(faces, labels):
                w.writerow([int(lab), " ".join(map(str, img.ravel().tolist())), usage])
    return path


@pytest.fixture(scope="module")
def stripes_csv(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data")
    return write_csv(d / "synthetic.csv", {"Training": synthetic_faces(16, 0), "PublicTest": synthetic_faces(4, 1)})


def cli(*argv: str) -> int:
    return main([str(a) for a in argv])


def env() -> dict[str, str]:
    """Subprocesses import the same fer_edge as this process (the installed one under CI)."""
    return cli_env()


def train_args(data, model, out, *extra):
    # One thread: the tests' batches are tiny, and on a shared CPU two OpenMP threads spinning at
    # barriers (torch is imported before the CLI could set OMP_WAIT_POLICY) run 5x slower.
    return ["train", "--data", data, "--model", model, "--out", out, "--quiet", "--batch-size", "16",
            "--threads", "1", *extra]


@pytest.fixture(scope="module")
def edgenet_run(stripes_csv, tmp_path_factory) -> Path:
    """edgenet trained for 6 epochs on the stripes: the run the eval/export tests use."""
    out = tmp_path_factory.mktemp("runs") / "edgenet"
    assert cli(*train_args(stripes_csv, "edgenet", out, "--epochs", "6", "--augment", "light", "--lr", "0.05")) == 0
    return out


def test_training_writes_the_run_files_and_learns(edgenet_run):
    for name in ("last.pt", "best.pt", "log.jsonl", "curves.png", "summary.json"):
        assert (edgenet_run / name).is_file(), name
    rows = [json.loads(line) for line in (edgenet_run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 7))
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s"} <= set(rows[0])
    summary = json.loads((edgenet_run / "summary.json").read_text())
    assert summary["best_val_accuracy"] == pytest.approx(max(r["val_acc"] for r in rows), abs=1e-6)
    assert summary["best_val_accuracy"] >= 0.5  # chance is 1/7
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    ckpt = torch.load(edgenet_run / "last.pt", weights_only=True)
    assert ckpt["model_name"] == "edgenet" and ckpt["epoch"] == 6
    assert {"model", "optimizer", "scheduler", "rng", "norm", "config", "history"} <= set(ckpt)
    faces, _ = synthetic_faces(16, 0)
    assert ckpt["norm"]["mean"] == pytest.approx(faces.mean(), abs=1e-3)
    assert ckpt["norm"]["std"] == pytest.approx(faces.std(), abs=1e-3)


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["model"]


def test_killed_run_resumes_to_the_same_weights(stripes_csv, tmp_path):
    assert cli(*train_args(stripes_csv, "edgenet", tmp_path / "straight", "--epochs", "2", "--limit", "64")) == 0

    # tests/kill_at.py: the CLI with a SIGKILL in the middle of epoch 2 (before its step 2)
    killed = [str(Path(__file__).with_name("kill_at.py")), "2:2",
              *train_args(stripes_csv, "edgenet", tmp_path / "killed", "--epochs", "2", "--limit", "64")]
    proc = subprocess.run([sys.executable, *killed], env=env(), capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["epoch"] == 1
    assert len((tmp_path / "killed" / "log.jsonl").read_text().splitlines()) == 1

    assert cli("train", "--resume", "--out", tmp_path / "killed", "--model", "edgenet", "--quiet") == 0
    a, b = _weights(tmp_path / "straight" / "last.pt"), _weights(tmp_path / "killed" / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    log_a = [json.loads(x) for x in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("images_per_s", "epoch_time_s")} for r in rows]  # noqa: E731
    assert strip(log_a) == strip(log_b)


def test_resume_with_another_architecture_fails_clearly(edgenet_run, capsys):
    assert cli("train", "--resume", "--out", edgenet_run, "--model", "vgg13") == 4
    assert "checkpoint is a 'edgenet' model, not 'vgg13'" in capsys.readouterr().err


def test_resume_refuses_changed_hyperparameters(edgenet_run, capsys):
    assert cli("train", "--resume", "--out", edgenet_run, "--lr", "0.3") == 2  # a command-line problem: exit 2
    assert "--lr" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["train", "train-all"])
def test_training_without_data_is_a_usage_error(verb, tmp_path, capsys):
    assert cli(verb, "--out", tmp_path / "r") == 2
    assert "--data is required" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_without_a_checkpoint_fails_clearly(tmp_path, capsys):
    assert cli("train", "--resume", "--out", tmp_path / "empty", "--model", "edgenet") == 4
    assert "no checkpoint" in capsys.readouterr().err


def test_csv_without_training_rows_is_an_input_error(tmp_path, capsys):
    data = write_csv(tmp_path / "val_only.csv", {"PublicTest": synthetic_faces(2, 3)})
    assert cli(*train_args(data, "edgenet", tmp_path / "r", "--epochs", "1")) == 3
    err = capsys.readouterr().err
    assert "no training faces" in err and "Traceback" not in err


def test_missing_data_file_is_an_input_error(tmp_path, capsys):
    assert cli(*train_args(tmp_path / "nope.csv", "edgenet", tmp_path / "r")) == 3
    assert "nope.csv" in capsys.readouterr().err


def test_holdout_validation_when_there_is_no_publictest(tmp_path):
    data = write_csv(tmp_path / "train_only.csv", {"Training": synthetic_faces(10, 4)})
    assert cli(*train_args(data, "edgenet", tmp_path / "r", "--epochs", "1", "--val-fraction", "0.2")) == 0
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["val_source"] == "holdout"
    ckpt = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    faces, labels = synthetic_faces(10, 4)
    # statistics of the 56 remaining training faces, not of all 70
    assert ckpt["norm"]["mean"] != pytest.approx(faces.mean(), abs=1e-6)


def test_eval_of_a_checkpoint_writes_the_report(edgenet_run, stripes_csv, tmp_path, capsys):
    assert cli("eval", "--model", edgenet_run / "best.pt", "--data", stripes_csv, "--split", "PublicTest",
               "--json", "--out", tmp_path / "ev") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 28 and set(report["per_class"]) == set(CLASSES)
    summary = json.loads((edgenet_run / "summary.json").read_text())
    assert report["accuracy"] == pytest.approx(summary["best_val_accuracy"], abs=1e-9)
    for name in ("report.json", "report.md", "per_class.csv", "confusion.csv", "confusion.png", "roc.png"):
        assert (tmp_path / "ev" / name).stat().st_size > 0
    assert np.array(report["confusion_matrix"]).sum() == 28
    assert cli("eval", "--model", edgenet_run, "--data", stripes_csv, "--json") == 0  # a run directory: its best.pt
    assert json.loads(capsys.readouterr().out)["accuracy"] == report["accuracy"]


def test_eval_of_a_missing_split_or_model_fails_clearly(edgenet_run, stripes_csv, tmp_path, capsys):
    assert cli("eval", "--model", edgenet_run / "best.pt", "--data", stripes_csv, "--split", "PrivateTest") == 3
    assert "no faces in split PrivateTest" in capsys.readouterr().err
    assert cli("eval", "--model", tmp_path / "x.onnx", "--data", stripes_csv) == 4


@pytest.fixture(scope="module")
def exported(edgenet_run, stripes_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "edgenet.onnx"
    assert cli("export", "--checkpoint", edgenet_run / "best.pt", "--out", out, "--data", stripes_csv,
               "--int8", "--fp16", "--calibration-size", "64") == 0
    return out


def _contract(path: Path) -> ModelContract:
    m = onnx.load(str(path))
    return ModelContract.from_json({p.key: p.value for p in m.metadata_props}[METADATA_KEY])


def test_export_embeds_the_contract_and_matches_torch(exported, edgenet_run, stripes_csv):
    onnx.checker.check_model(onnx.load(str(exported)), full_check=True)
    c = _contract(exported)
    ckpt = torch.load(edgenet_run / "best.pt", weights_only=True)
    assert c.model == "edgenet" and c.classes == CLASSES and (c.input_size, c.channels) == (48, 1)
    assert (c.mean, c.std) == (pytest.approx(ckpt["norm"]["mean"]), pytest.approx(ckpt["norm"]["std"]))
    assert c.val_accuracy == pytest.approx(ckpt["best_val_accuracy"])
    assert c.extra["opset"] == 17 and c.extra["precision"] == "fp32"
    sess = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, out.name) == ("input", "logits") and not isinstance(inp.shape[0], int)
    from fer_edge.training.checkpoint import build_from_checkpoint

    model = build_from_checkpoint(ckpt)
    faces, _ = synthetic_faces(4, 1)
    x = ((faces.astype(np.float32) - c.mean) / c.std)[:, None]
    for batch in (x[:1], x[:5], x):
        with torch.no_grad():
            ref = model(torch.from_numpy(batch)).numpy()
        assert np.abs(sess.run(["logits"], {"input": batch})[0] - ref).max() <= 1e-4


def test_int8_and_fp16_variants_record_their_accuracy_drop(exported):
    for tag in ("int8", "fp16"):
        path = exported.with_name(f"edgenet.{tag}.onnx")
        c = _contract(path)
        assert c.extra["precision"] == tag
        assert c.extra["accuracy_drop"] == pytest.approx(c.extra["accuracy_fp32"] - c.extra["accuracy_publictest"])
        assert abs(c.extra["accuracy_drop"]) <= 0.15  # 28 faces: a few flips at most
    q = onnx.load(str(exported.with_name("edgenet.int8.onnx")))
    assert any(n.op_type == "QuantizeLinear" for n in q.graph.node)
    # the first convolution reads the face in fp32; the convolutions after it are int8 (QDQ)
    dequantized = {o for n in q.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    first, *rest = [n for n in q.graph.node if n.op_type == "Conv"]
    assert not dequantized & set(first.input[:2])
    assert rest and all(set(n.input[:2]) <= dequantized for n in rest)
    assert exported.with_name("edgenet.int8.onnx").stat().st_size < exported.stat().st_size / 2


def test_eval_of_onnx_goes_through_the_runtime_without_torch(exported, stripes_csv, edgenet_run):
    code = (
        "import json, sys\n"
        "from fer_edge.training.evaluate import evaluate\n"
        f"report, _ = evaluate({str(exported)!r}, {str(stripes_csv)!r}, 'PublicTest')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(json.dumps({'accuracy': report.accuracy, 'backend': report.backend, 'n': report.n}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    best = json.loads((edgenet_run / "summary.json").read_text())["best_val_accuracy"]
    assert r["backend"] == "onnxruntime" and r["n"] == 28
    assert r["accuracy"] == pytest.approx(best, abs=1 / 28 + 1e-9)  # at most one near-tie flips


def test_export_refuses_a_non_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 10)
    assert cli("export", "--checkpoint", bad, "--out", tmp_path / "m.onnx") == 4
    assert not (tmp_path / "m.onnx").exists()


def test_export_refuses_to_replace_an_onnx_file_unless_told(edgenet_run, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert cli("export", "--checkpoint", edgenet_run / "best.pt", "--out", out) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert cli("export", "--checkpoint", edgenet_run / "best.pt", "--out", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"would overwrite {out}" in err[0] and "choose another --out file" in err[0]
    assert out.read_bytes() == before
    assert cli("export", "--checkpoint", edgenet_run / "best.pt", "--out", out, "--overwrite") == 0


def test_export_fails_loudly_and_writes_nothing_when_parity_breaks(edgenet_run, tmp_path, monkeypatch):
    import fer_edge.training.export as export_mod
    from fer_edge.errors import ModelError

    real = export_mod.check_parity

    def broken(path, model, faces, tolerance=1e-4, seed=0):
        with torch.no_grad():  # a model that disagrees with the exported graph
            model.head[-1].bias.add_(1e-2)
        return real(path, model, faces, tolerance, seed)

    monkeypatch.setattr(export_mod, "check_parity", broken)
    with pytest.raises(ModelError, match="parity check failed"):
        export_mod.export_checkpoint(str(edgenet_run / "best.pt"), str(tmp_path / "m.onnx"))
    assert list(tmp_path.iterdir()) == []


REFERENCE = ("base", "vgg13", "resnet18", "resnet50")


@pytest.fixture(scope="module")
def reference_runs(stripes_csv, tmp_path_factory) -> Path:
    """`train --model all`: the four reference models, one optimizer step each (16 faces, batch 16)."""
    out = tmp_path_factory.mktemp("all")
    assert cli("train", "--model", "all", "--data", stripes_csv, "--out", out, "--epochs", "1", "--limit", "16",
               "--batch-size", "16", "--threads", "1", "--quiet") == 0
    return out


@pytest.mark.slow
def test_model_all_trains_every_reference_model(reference_runs, stripes_csv):
    # --model all is train-all of the reference models: each one trained from --data into
    # OUT/<model> with the options given (not the model name), and the comparison table.
    assert sorted(p.name for p in reference_runs.iterdir() if p.is_dir()) == sorted(REFERENCE)
    for model in REFERENCE:
        ckpt = torch.load(reference_runs / model / "last.pt", weights_only=True)
        assert ckpt["model_name"] == model and ckpt["epoch"] == 1
        assert (ckpt["config"]["data"], ckpt["config"]["epochs"], ckpt["config"]["limit"]) == (str(stripes_csv), 1, 16)
    table = (reference_runs / "comparison.md").read_text()
    assert all(f"| {model} |" in table for model in REFERENCE)


@pytest.mark.slow
@pytest.mark.parametrize("model", REFERENCE)
def test_reference_model_evaluates_and_exports(model, reference_runs, stripes_csv, tmp_path, capsys):
    out = reference_runs / model
    capsys.readouterr()
    assert cli("eval", "--model", out / "best.pt", "--data", stripes_csv, "--json") == 0
    assert json.loads(capsys.readouterr().out)["n"] == 28
    onnx_path = tmp_path / f"{model}.onnx"
    assert cli("export", "--checkpoint", out / "best.pt", "--out", onnx_path, "--data", stripes_csv) == 0
    assert _contract(onnx_path).model == model
    from fer_edge.training.checkpoint import build_from_checkpoint

    torch_model = build_from_checkpoint(torch.load(out / "best.pt", weights_only=True))
    x = np.random.default_rng(0).standard_normal((3, 1, 48, 48)).astype(np.float32)
    with torch.no_grad():
        ref = torch_model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    # 1e-4 absolute for trained-size logits; a 1-step resnet50 on 16 faces has unsettled BatchNorm
    # statistics and logits near 1e6, where fp32 agreement is relative (see export.allowance).
    from fer_edge.training.export import allowance

    assert np.abs(sess.run(["logits"], {"input": x})[0] - ref).max() <= allowance(1e-4, float(np.abs(ref).max()))


@pytest.mark.slow
def test_ddp_with_gloo_on_two_processes(stripes_csv, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "fer_edge", *train_args(stripes_csv, "edgenet", out, "--epochs", "1", "--limit", "64")]
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "device cpu x2" in proc.stderr
    rows = (out / "log.jsonl").read_text().splitlines()
    assert len(rows) == 1
    assert proc.stderr.count("epoch 1/1") == 1  # only rank 0 reports
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in ckpt["model"])  # saved unwrapped


@pytest.mark.slow
def test_train_all_writes_a_comparison_table(stripes_csv, tmp_path, capsys):
    assert cli("train-all", "--data", stripes_csv, "--out", tmp_path, "--models", "edgenet,resnet18", "--epochs", "1",
               "--threads", "1", "--limit", "32", "--batch-size", "16", "--quiet", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["edgenet", "resnet18"]
    table = (tmp_path / "comparison.md").read_text()
    assert "| edgenet |" in table and "| resnet18 |" in table
    assert (tmp_path / "edgenet" / "best.pt").is_file() and (tmp_path / "resnet18" / "best.pt").is_file()
    # without --json the table is printed, with where it was written (complete runs are not retrained)
    assert cli("train-all", "--data", stripes_csv, "--out", tmp_path, "--models", "edgenet,resnet18", "--epochs", "1",
               "--threads", "1", "--limit", "32", "--batch-size", "16", "--quiet") == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "comparison.md") in printed and table in printed


def test_image_folder_layout_trains(fer_image_folder, tmp_path):
    out = tmp_path / "r"
    assert cli(*train_args(fer_image_folder, "edgenet", out, "--epochs", "1")) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["val_source"] == "validation"  # the copy's test/ folder holds PublicTest_*.png
    assert torch.load(out / "last.pt", weights_only=True)["config"]["data"] == str(fer_image_folder)


@pytest.mark.parametrize("option", [("--balance", "sampler"), ("--balance", "weights"), ("--norm", "per_split"),
                                    ("--optimizer", "adamw"), ("--amp", "bf16")])
def test_training_options_are_applied_and_recorded(option, stripes_csv, tmp_path):
    out = tmp_path / "r"
    assert cli(*train_args(stripes_csv, "edgenet", out, "--epochs", "1", "--limit", "32", *option)) == 0
    ckpt = torch.load(out / "last.pt", weights_only=True)
    key = option[0][2:]
    assert ckpt["config"][key] == option[1]
    if option == ("--norm", "per_split"):
        val, _ = synthetic_faces(4, 1)
        assert ckpt["val_norm"]["mean"] == pytest.approx(val.mean(), abs=1e-3)
        assert ckpt["normalization"] == "per_split"
    if option == ("--amp", "bf16"):
        assert json.loads((out / "summary.json").read_text())["amp"] == "bfloat16"
        assert all(v.dtype == torch.float32 for v in ckpt["model"].values() if v.is_floating_point())
    if option[1] == "adamw":
        assert isinstance(ckpt["optimizer"]["state"][0].get("exp_avg"), torch.Tensor)


@pytest.mark.parametrize("mode", ["weights", "sampler"])
def test_balance_reaches_the_loss_or_the_draws(mode, tmp_path, monkeypatch):
    # Recording --balance in the config is not enough: the loss must get the inverse-frequency
    # class weights (weights), or each epoch's order must be drawn with them per face (sampler).
    import fer_edge.training.trainer as trainer_mod

    faces, labels = synthetic_faces(16, 0)
    keep = np.concatenate([np.flatnonzero(labels == c)[: 16 if c in (0, 3) else 2] for c in range(len(PERIODS))])
    data = write_csv(tmp_path / "imbalanced.csv", {"Training": (faces[keep], labels[keep]),
                                                   "PublicTest": synthetic_faces(2, 1)})
    counts = np.bincount(labels[keep], minlength=len(CLASSES))
    expected = trainer_mod.class_weights(counts)
    assert float(expected.max() / expected.min()) == pytest.approx(8.0)  # 16 faces against 2
    seen = []
    if mode == "weights":
        real_ce = trainer_mod.F.cross_entropy

        def spy_ce(*args, **kwargs):
            if kwargs.get("weight") is not None:
                seen.append(kwargs["weight"].detach().cpu().clone())
            return real_ce(*args, **kwargs)

        monkeypatch.setattr(trainer_mod.F, "cross_entropy", spy_ce)
    else:
        real_multinomial = torch.multinomial

        def spy_multinomial(weights, *args, **kwargs):
            seen.append(weights.detach().cpu().clone())
            return real_multinomial(weights, *args, **kwargs)

        monkeypatch.setattr(torch, "multinomial", spy_multinomial)
    assert cli(*train_args(data, "edgenet", tmp_path / "r", "--epochs", "1", "--balance", mode)) == 0
    assert seen, f"--balance {mode} never reached the training step"
    if mode == "weights":
        assert all(torch.allclose(w, expected) for w in seen)
    else:
        per_face = expected.double()[torch.from_numpy(labels[keep])]
        assert all(torch.equal(torch.sort(w).values, torch.sort(per_face).values) for w in seen)


@pytest.mark.real_data
@pytest.mark.slow
def test_real_faces_train_evaluate_and_export(real_fer_csv_small, tmp_path, capsys):
    out = tmp_path / "r"
    assert cli(*train_args(real_fer_csv_small, "edgenet", out, "--epochs", "1", "--limit", "128")) == 0
    capsys.readouterr()
    assert cli("export", "--checkpoint", out / "best.pt", "--out", tmp_path / "m.onnx", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["parity"]["n_real"] == 64 and result["parity"]["max_abs_diff_real"] <= 1e-4
    assert cli("eval", "--model", tmp_path / "m.onnx", "--data", real_fer_csv_small, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 300 and report["backend"] == "onnxruntime"


def test_resume_of_a_finished_run_can_extend_it(stripes_csv, tmp_path, capsys):
    out = tmp_path / "r"
    assert cli(*train_args(stripes_csv, "edgenet", out, "--epochs", "1", "--limit", "32")) == 0
    assert cli("train", "--resume", "--out", out, "--quiet") == 0  # finished: nothing to do
    assert len((out / "log.jsonl").read_text().splitlines()) == 1
    assert cli("train", "--resume", "--out", out, "--epochs", "2", "--quiet", "--json") == 0
    assert [json.loads(x)["epoch"] for x in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert json.loads(capsys.readouterr().out)["epochs_run"] == 2


def test_training_without_torch_explains_the_extra(stripes_csv, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    assert cli(*train_args(stripes_csv, "edgenet", tmp_path / "r")) == 6
    assert "fer-edge[train]" in capsys.readouterr().err


def test_unknown_model_name_fails_before_reading_data(tmp_path, capsys):
    # a usage error (exit 2), raised by argparse before the data is looked at
    data = write_csv(tmp_path / "d.csv", {"Training": synthetic_faces(1, 0)})
    for csv in (tmp_path / "absent.csv", data):
        with pytest.raises(SystemExit) as exc:
            cli(*train_args(csv, "resnet19", tmp_path / "r"))
        assert exc.value.code == 2
        assert "argument --model: unknown model 'resnet19'" in capsys.readouterr().err


def test_progress_bar_shows_loss_accuracy_and_throughput(stripes_csv, tmp_path, capsys):
    from fer_edge.training.config import TrainConfig
    from fer_edge.training.trainer import train

    cfg = TrainConfig(data=str(stripes_csv), model="edgenet", out=str(tmp_path / "r"), epochs=1, batch_size=8, limit=32,
                      threads=1)
    result = train(cfg, progress=True)
    err = capsys.readouterr().err
    assert "loss=" in err and "acc=" in err and "img_s=" in err
    assert "epoch 1/1" in err and result.epochs_run == 1


def test_training_refuses_to_overwrite_a_run(edgenet_run, stripes_csv, capsys):
    before = (edgenet_run / "last.pt").stat().st_mtime_ns
    assert cli(*train_args(stripes_csv, "edgenet", edgenet_run, "--epochs", "1")) == 2  # an --out that holds a run: exit 2, nothing touched
    assert "--resume" in capsys.readouterr().err
    assert (edgenet_run / "last.pt").stat().st_mtime_ns == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_a_device_error(stripes_csv, tmp_path, capsys):
    assert cli(*train_args(stripes_csv, "edgenet", tmp_path / "r", "--device", "cuda")) == 5
    assert "no CUDA device" in capsys.readouterr().err


def test_resume_of_an_early_stopped_run_reports_it_stopped_early(stripes_csv, tmp_path, capsys):
    out = tmp_path / "r"
    # An LR too small to change any prediction: epoch 2 is no better than epoch 1, so patience 1 stops it.
    assert cli(*train_args(stripes_csv, "edgenet", out, "--epochs", "6", "--limit", "32", "--patience", "1",
                           "--lr", "1e-9", "--json")) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["stopped_early"] and first["epochs_run"] == 2
    assert cli("train", "--resume", "--out", out, "--quiet", "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["stopped_early"] and again["epochs_run"] == 2
