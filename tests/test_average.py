"""--keep-epochs and weight averaging (training/average.py): the kept epochs, the mean of their
weights, BatchNorm recomputed on the training faces, its own validation accuracy, clear errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fer_edge.errors import InputError, ModelError  # noqa: E402
from fer_edge.training.average import average_checkpoints  # noqa: E402
from fer_edge.training.checkpoint import build_from_checkpoint, load_checkpoint  # noqa: E402
from test_training_e2e import cli, edgenet_run, env, stripes_csv, synthetic_faces, train_args  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def kept_run(stripes_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("keep") / "edgenet"
    assert cli(*train_args(stripes_csv, "edgenet", out, "--epochs", "4", "--augment", "light", "--lr", "0.05",
                           "--keep-epochs", "2")) == 0
    return out


def test_keep_epochs_keeps_exactly_the_last_k(kept_run):
    assert sorted(p.name for p in kept_run.glob("epoch_*.pt")) == ["epoch_003.pt", "epoch_004.pt"]
    kept = load_checkpoint(kept_run / "epoch_004.pt")
    last = load_checkpoint(kept_run / "last.pt")
    assert kept["kind"] == "epoch" and "optimizer" not in kept
    assert all(torch.equal(kept["model"][k], last["model"][k]) for k in last["model"])


def test_average_is_the_mean_of_the_weights_with_batchnorm_recomputed(kept_run, stripes_csv, tmp_path):
    paths = [kept_run / "epoch_003.pt", kept_run / "epoch_004.pt"]
    a, b = (load_checkpoint(p)["model"] for p in paths)
    out = tmp_path / "avg.pt"
    avg = average_checkpoints(paths, str(stripes_csv), out)
    w = avg["model"]
    conv = next(k for k, v in a.items() if v.ndim == 4)
    assert torch.allclose(w[conv], (a[conv] + b[conv]) / 2, atol=1e-6) and not torch.equal(a[conv], b[conv])
    # BatchNorm running statistics are the averaged net's own, not the mean of the two epochs'.
    bn = next(k for k in a if k.endswith("running_var"))
    assert not torch.allclose(w[bn], (a[bn] + b[bn]) / 2, atol=1e-4)
    # Its validation accuracy is measured, and the file is a checkpoint like any other.
    assert 0.0 <= avg["best_val_accuracy"] <= 1.0 and avg["kind"] == "averaged"
    # last.pt can be averaged too, but its optimizer state does not come along.
    assert "optimizer" not in average_checkpoints([kept_run / "last.pt", paths[0]], str(stripes_csv), tmp_path / "l.pt")
    model = build_from_checkpoint(load_checkpoint(out), str(out)).eval()
    x = torch.randn(3, 1, 48, 48)
    assert model(x).shape == (3, 7)
    assert cli("eval", "--model", out, "--data", stripes_csv, "--split", "PublicTest", "--out", tmp_path / "ev") == 0


def test_average_refuses_what_cannot_be_averaged(kept_run, edgenet_run, stripes_csv, tmp_path, capsys):
    with pytest.raises(InputError, match="at least two"):
        average_checkpoints([kept_run / "epoch_004.pt"], str(stripes_csv), tmp_path / "x.pt")
    other = tmp_path / "other"
    assert cli(*train_args(stripes_csv, "fernet_s", other, "--epochs", "1")) == 0
    with pytest.raises(ModelError, match="different architectures"):
        average_checkpoints([kept_run / "epoch_004.pt", other / "best.pt"], str(stripes_csv), tmp_path / "x.pt")
    # The script: one line on stderr, exit 2, nothing written.
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "average_checkpoints.py"), "--data", str(stripes_csv),
                        "--out", str(tmp_path / "y.pt"), str(kept_run / "epoch_004.pt")],
                       capture_output=True, text=True, env=env())
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "y.pt").exists()


def test_train_side_by_side_averages_a_kept_run_and_evaluates_both(kept_run, stripes_csv, tmp_path, monkeypatch):
    """scripts/train_side_by_side.py's post-processing of a job trained with --keep-epochs: best.pt and
    the average of the kept epochs are both exported and evaluated, and both come back in fp16."""
    import importlib.util
    import json
    import shutil
    import time

    from conftest import cli_env

    spec = importlib.util.spec_from_file_location("train_side_by_side", ROOT / "scripts" / "train_side_by_side.py")
    dt = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "train_side_by_side", dt)  # its dataclasses look their module up
    spec.loader.exec_module(dt)
    monkeypatch.setenv("PYTHONPATH", cli_env()["PYTHONPATH"])
    out = tmp_path / "work" / "runs" / "a"
    shutil.copytree(kept_run, out)
    job = dt.Job("a", "edgenet", 4, [], out=out, res=tmp_path / "results" / "a")
    job.res.mkdir(parents=True)
    dt.post_process(job, stripes_csv, time.monotonic() + 600, 1, bring=True)
    assert job.notes == []
    averaged = load_checkpoint(out / "averaged.pt")
    assert averaged["averaged_from"] == [str(out / "epoch_003.pt"), str(out / "epoch_004.pt")]
    for prefix, onnx, weights in (("", "a.int8.onnx", "best.fp16.pt"), ("avg-", "a.avg.int8.onnx", "averaged.fp16.pt")):
        report = json.loads((job.res / f"{prefix}eval-int8" / "report.json").read_text())
        assert report["split"] == "PublicTest" and report["n"] == 28  # 4 stripes of each class
        assert (job.res / f"{prefix}eval-int8" / "robustness.json").is_file()
        assert (job.res / f"{prefix}eval-fp32" / "report.json").is_file() and (job.res / onnx).is_file()
        brought = load_checkpoint(job.res / weights)["model"]
        assert all(v.dtype == torch.float16 for v in brought.values() if v.is_floating_point())
    exported = json.loads((job.res / "avg-export.json").read_text())
    assert exported["path"].endswith("a.avg.onnx")
