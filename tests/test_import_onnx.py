"""`fer-edge import`: an exported model (fp32 or int8) back into a checkpoint that computes what it computes,
and that train --init / eval / export take again."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fer_edge.training.from_onnx import module_path  # noqa: E402
from test_training_e2e import cli, edgenet_run, stripes_csv, synthetic_faces, train_args  # noqa: E402,F401


@pytest.mark.parametrize("name,path", [
    ("/features/features.0/Conv", "features.0"),
    ("/layer1/layer1.0/conv1/Conv", "layer1.0.conv1"),
    ("/layer2/layer2.0/downsample/downsample.0/Conv", "layer2.0.downsample.0"),
    ("/head/head.3/Gemm", "head.3"),
    ("/fc/Gemm", "fc"),
])
def test_module_paths_from_the_exporters_node_names(name, path):
    assert module_path(name) == path


@pytest.fixture(scope="module")
def exported(edgenet_run, stripes_csv, tmp_path_factory):
    d = tmp_path_factory.mktemp("exp")
    assert cli("export", "--checkpoint", edgenet_run / "best.pt", "--out", d / "m.onnx", "--data", stripes_csv,
               "--int8") == 0
    return d


def _logits(model_path, faces):
    from fer_edge.runtime.model import FerModel
    from fer_edge.training.evaluate import normalize_np

    m = FerModel.load(str(model_path))
    return m.run(normalize_np(faces, m.contract.mean, m.contract.std))


@pytest.mark.parametrize("variant,agree", [("m.onnx", 1.0), ("m.int8.onnx", 0.8)])
def test_an_import_computes_what_the_onnx_model_computes(exported, stripes_csv, variant, agree, tmp_path, capsys):
    from fer_edge.training.checkpoint import build_from_checkpoint, load_checkpoint
    from fer_edge.training.evaluate import normalize_np

    out = tmp_path / "back.pt"
    assert cli("import", "--model", exported / variant, "--out", out, "--data", stripes_csv, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["bn_from_data"] and doc["argmax_agreement"] >= agree
    ckpt = load_checkpoint(out)
    model = build_from_checkpoint(ckpt)
    faces, _ = synthetic_faces(3, 7)
    ref = _logits(exported / variant, faces)
    with torch.no_grad():
        got = model(torch.from_numpy(normalize_np(faces, ckpt["norm"]["mean"], ckpt["norm"]["std"]))).numpy()
    if variant == "m.onnx":  # the same weights: only float rounding apart
        np.testing.assert_allclose(got, ref, atol=2e-3)
    assert (got.argmax(1) == ref.argmax(1)).mean() >= agree
    # BatchNorm carries the training faces' statistics, not the identity, so a fine-tune starts where it should
    bn = next(v for k, v in ckpt["model"].items() if k.endswith("running_var"))
    assert not torch.allclose(bn, torch.ones_like(bn), atol=1e-2)


def test_an_import_fine_tunes_and_exports_again(exported, stripes_csv, tmp_path):
    back = tmp_path / "back.pt"
    assert cli("import", "--model", exported / "m.int8.onnx", "--out", back, "--data", stripes_csv) == 0
    run = tmp_path / "ft"
    assert cli(*train_args(stripes_csv, "edgenet", run, "--epochs", "1", "--lr", "1e-4", "--augment", "none",
                           "--init", back)) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_val_accuracy"] >= 0.5  # starts from the trained weights (chance 1/7)
    assert cli("export", "--checkpoint", run / "best.pt", "--out", tmp_path / "again.onnx", "--data", stripes_csv) == 0


def test_import_refuses_what_is_not_a_fer_edge_export(tmp_path, capsys):
    from fixtures_runtime import write_model

    foreign = write_model(tmp_path / "x.onnx", metadata=None)
    assert cli("import", "--model", foreign, "--out", tmp_path / "x.pt") == 4
    assert "not exported by fer-edge" in capsys.readouterr().err
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    assert cli("import", "--model", tmp_path / "junk.onnx", "--out", tmp_path / "y.pt") == 4
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "y.pt").exists()


@pytest.mark.real_data
def test_the_packaged_default_imports_and_reads_as_it_does(real_fer_csv_small, tmp_path, capsys):
    assert cli("import", "--model", "default", "--out", tmp_path / "d.pt", "--data", real_fer_csv_small,
               "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "fernet_m" and doc["argmax_agreement"] >= 0.9  # int8 activations vs fp32


def test_train_init_takes_an_exported_model_and_imports_it(exported, stripes_csv, tmp_path, capsys):
    run = tmp_path / "ft"
    assert cli(*train_args(stripes_csv, "edgenet", run, "--epochs", "1", "--lr", "1e-4", "--augment", "none",
                           "--init", exported / "m.int8.onnx", "--json")) == 0
    assert "imported into" in capsys.readouterr().err and (run / "imported" / "m.int8.pt").is_file()
    assert json.loads((run / "summary.json").read_text())["best_val_accuracy"] >= 0.5


def test_a_flip_averaged_export_imports_as_its_network_and_exports_back_the_same(edgenet_run, stripes_csv, tmp_path,
                                                                                  capsys):
    """An export with --tta flip (the network run on each face and its mirror, logits averaged) imports as
    the network alone; exporting that with --tta flip again computes what the first file computes."""
    from fer_edge.training.checkpoint import build_from_checkpoint, load_checkpoint
    from fer_edge.training.evaluate import normalize_np

    assert cli("export", "--checkpoint", edgenet_run / "best.pt", "--out", tmp_path / "tta.onnx", "--data", stripes_csv,
               "--tta", "flip") == 0
    back = tmp_path / "back.pt"
    assert cli("import", "--model", tmp_path / "tta.onnx", "--out", back, "--data", stripes_csv, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["argmax_agreement"] == 1.0 and doc["max_abs_diff"] < 2e-3
    ckpt = load_checkpoint(back)
    assert ckpt["imported_from"]["tta"] == "flip"
    faces, _ = synthetic_faces(3, 7)
    ref = _logits(tmp_path / "tta.onnx", faces)
    model = build_from_checkpoint(ckpt)
    x = torch.from_numpy(normalize_np(faces, ckpt["norm"]["mean"], ckpt["norm"]["std"]))
    with torch.no_grad():
        plain, mirrored = model(x).numpy(), model(torch.flip(x, dims=[3])).numpy()
    np.testing.assert_allclose((plain + mirrored) / 2, ref, atol=2e-3)
    assert np.abs(plain - ref).max() > 1e-2  # the import is the network, not the average
    assert cli("export", "--checkpoint", back, "--out", tmp_path / "again.onnx", "--data", stripes_csv,
               "--tta", "flip") == 0
    np.testing.assert_allclose(_logits(tmp_path / "again.onnx", faces), ref, atol=2e-3)
