"""FER+ as a label set: Microsoft's fer2013new.csv read as it ships, joined to fer2013.csv row by row,
the majority protocol, training on the votes, and 8-class models through eval, export and the runtime."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from fixtures_runtime import sample_image  # noqa: F401
from fer_edge.data.ferplus import (
    EXCLUDED,
    VOTE_COLUMNS,
    majority_labels,
    read_ferplus_csv,
    vote_distribution,
)
from fer_edge.data.loading import load_dataset
from fer_edge.errors import InputError
from fer_edge.labels import FERPLUS_CLASSES

# Vote columns (fer2013new.csv order): neutral happiness surprise sadness anger disgust fear contempt unknown NF
NEUTRAL, HAPPINESS, SURPRISE, SADNESS, ANGER, DISGUST, FEAR, CONTEMPT, UNKNOWN, NF = range(10)
# The class each vote column stands for, written out here (not taken from the module under test).
CLASS_OF_COLUMN = {NEUTRAL: "neutral", HAPPINESS: "happy", SURPRISE: "surprise", SADNESS: "sad", ANGER: "angry",
                   DISGUST: "disgust", FEAR: "fear", CONTEMPT: "contempt"}


def votes(**counts: int) -> list[int]:
    v = [0] * 10
    for name, n in counts.items():
        v[VOTE_COLUMNS.index(name)] = n
    return v


def write_ferplus(path: Path, rows: list[tuple[str, str, list[int]]], header=None) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header or ["Usage", "Image name", *VOTE_COLUMNS])
        for usage, name, v in rows:
            w.writerow([usage, name, *v])
    return path


def test_majority_protocol_drops_single_votes_and_needs_more_than_half():
    cases = [
        (votes(happiness=6, neutral=4), FERPLUS_CLASSES.index("happy")),
        # 5 of 10 is not more than half ...
        (votes(happiness=5, neutral=5), EXCLUDED),
        # ... but single votes are outliers: 5 of the 8 left (5 + 3) is
        (votes(happiness=5, neutral=3, sadness=1, fear=1), FERPLUS_CLASSES.index("happy")),
        (votes(contempt=7, neutral=3), FERPLUS_CLASSES.index("contempt")),
        (votes(unknown=6, neutral=4), EXCLUDED),  # the majority is "unknown"
        (votes(NF=10), EXCLUDED),  # not a face
        (votes(anger=1, fear=1, sadness=1), EXCLUDED),  # nothing left after the outliers
        (votes(anger=4, disgust=3, fear=3), EXCLUDED),  # no majority
    ]
    got = majority_labels(np.array([v for v, _ in cases]))
    assert got.tolist() == [want for _, want in cases]


def test_vote_distribution_is_the_share_of_each_emotion_after_the_outliers():
    dist, usable = vote_distribution(np.array([votes(happiness=6, neutral=3, anger=1), votes(unknown=7, neutral=3),
                                               votes(sadness=2, fear=2, unknown=2, NF=1)]))
    assert usable.tolist() == [True, False, True]
    want = np.zeros(8)
    want[FERPLUS_CLASSES.index("happy")], want[FERPLUS_CLASSES.index("neutral")] = 6 / 9, 3 / 9
    np.testing.assert_allclose(dist[0], want, atol=1e-6)
    assert dist[2][FERPLUS_CLASSES.index("sad")] == pytest.approx(0.5)
    assert dist[2][FERPLUS_CLASSES.index("fear")] == pytest.approx(0.5)


def test_reader_takes_microsofts_file_with_not_face_rows_and_joins_by_position(make_fer_csv, fer_data, tmp_path):
    fer_csv, data = make_fer_csv()
    rows = []
    for i, usage in enumerate(data.usages):
        # every fifth row is one FER+ found no face in: Microsoft leaves its Image name empty
        name = "" if i % 5 == 0 else f"fer{i:07d}.png"
        rows.append((usage, name, votes(NF=10) if not name else votes(happiness=8, neutral=2)))
    new = write_ferplus(tmp_path / "fer2013new.csv", rows)
    v = read_ferplus_csv(new)
    assert len(v) == len(data) and v.has_image.tolist() == [i % 5 != 0 for i in range(len(data))]
    ds = load_dataset(fer_csv, ferplus=new)
    assert ds.votes.shape == (len(data), 10)
    labels = majority_labels(ds.subset("validation").votes)
    n_val = data.usages.count("PublicTest")
    first_val = data.usages.index("PublicTest")
    want = [EXCLUDED if (first_val + k) % 5 == 0 else FERPLUS_CLASSES.index("happy") for k in range(n_val)]
    assert labels.tolist() == want


def test_a_pair_that_does_not_line_up_is_one_clear_error(make_fer_csv, tmp_path):
    fer_csv, data = make_fer_csv()
    rows = [(u, "x.png", votes(happiness=10)) for u in data.usages]
    short = write_ferplus(tmp_path / "short.csv", rows[:-1])
    with pytest.raises(InputError, match=r"rows.*does not line up"):
        load_dataset(fer_csv, ferplus=short)
    swapped = list(rows)
    k = data.usages.index("PublicTest")
    swapped[k] = ("Training", "x.png", votes(happiness=10))
    bad = write_ferplus(tmp_path / "swapped.csv", swapped)
    with pytest.raises(InputError, match=rf"row {k + 2} is train but row {k + 2} of .* is validation"):
        load_dataset(fer_csv, ferplus=bad)
    res = run_cli("data", "stats", "--data", str(fer_csv), "--ferplus", str(short))
    assert res.returncode == 3 and len(res.stderr.strip().splitlines()) == 1 and "line up" in res.stderr


@pytest.mark.parametrize("text,why", [
    ("usage,pixels\n", "header"),
    ("Usage,Image name," + ",".join(VOTE_COLUMNS) + "\nTraining,a.png,1,2,3\n", "line 2: 5 fields"),
    ("Usage,Image name," + ",".join(VOTE_COLUMNS) + "\nTraining,a.png,1,2,3,x,0,0,0,0,0,0\n", "line 2: the vote"),
    ("Usage,Image name," + ",".join(VOTE_COLUMNS) + "\nLater,a.png,1,2,3,4,0,0,0,0,0,0\n", "line 2: Usage"),
])
def test_malformed_ferplus_files_name_the_line(text, why, tmp_path):
    p = tmp_path / "new.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=why):
        read_ferplus_csv(p)


def test_data_stats_reports_the_majority_labels_per_split(make_fer_csv, tmp_path):
    fer_csv, data = make_fer_csv()
    cycle = [votes(contempt=6, neutral=4), votes(unknown=9, NF=1), votes(happiness=10)]
    rows = [(u, "a.png", cycle[i % 3]) for i, u in enumerate(data.usages)]
    new = write_ferplus(tmp_path / "fer2013new.csv", rows)
    res = run_cli("data", "stats", "--data", str(fer_csv), "--ferplus", str(new), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)["ferplus"]
    for split, usage in (("train", "Training"), ("validation", "PublicTest")):
        idx = [i for i, u in enumerate(data.usages) if u == usage]
        want_contempt = sum(1 for i in idx if i % 3 == 0)
        want_happy = sum(1 for i in idx if i % 3 == 2)
        assert doc[split]["per_class"]["contempt"] == want_contempt
        assert doc[split]["per_class"]["happy"] == want_happy
        assert doc[split]["excluded"] == len(idx) - want_contempt - want_happy
    human = run_cli("data", "stats", str(fer_csv), "--ferplus", str(new))
    assert "FER+ majority labels" in human.stdout and "contempt" in human.stdout


# ---------------------------------------------------------------- training an 8-class model end to end

PERIODS8 = (3, 4, 6, 8, 11, 16, 24, 40)  # a stripe period per FER+ class


@pytest.fixture(scope="module")
def stripes_ferplus(tmp_path_factory) -> tuple[Path, Path]:
    """Stripe 'faces' whose period is the class, with FER+ votes that point at it (7 of 10)."""
    d = tmp_path_factory.mktemp("ferplus")
    rng = np.random.default_rng(0)
    y = np.arange(48, dtype=np.float64)[:, None]
    col_of_class = {c: col for col, c in CLASS_OF_COLUMN.items()}
    with open(d / "fer2013.csv", "w", newline="") as f, open(d / "fer2013new.csv", "w", newline="") as g:
        w, wn = csv.writer(f), csv.writer(g)
        w.writerow(["emotion", "pixels", "Usage"])
        wn.writerow(["Usage", "Image name", *VOTE_COLUMNS])
        for usage, per_class in (("Training", 16), ("PublicTest", 5)):
            for c, period in enumerate(PERIODS8):
                for _ in range(per_class):
                    img = 128 + 90 * np.sin(2 * np.pi * y / period + rng.uniform(0, 6.3)) + rng.normal(0, 20, (48, 48))
                    px = " ".join(map(str, np.clip(img, 0, 255).astype(np.uint8).ravel().tolist()))
                    v = [0] * 10
                    v[col_of_class[FERPLUS_CLASSES[c]]] = 7
                    v[UNKNOWN] = 3
                    w.writerow([min(c, 6), px, usage])  # FER2013 has no contempt: any label will do
                    wn.writerow([usage, "x.png", *v])
    return d / "fer2013.csv", d / "fer2013new.csv"


@pytest.fixture(scope="module")
def ferplus_model(stripes_ferplus, tmp_path_factory) -> Path:
    from test_training_e2e import cli, train_args

    data, new = stripes_ferplus
    out = tmp_path_factory.mktemp("runs") / "fp"
    assert cli(*train_args(data, "edgenet", out, "--epochs", "6", "--augment", "light", "--lr", "0.05",
                           "--ferplus", new)) == 0
    onnx = out.parent / "fp.onnx"
    assert cli("export", "--checkpoint", out / "best.pt", "--out", onnx, "--data", data, "--ferplus", new,
               "--int8") == 0
    return out


def test_a_ferplus_run_learns_eight_classes_and_exports_them(ferplus_model, stripes_ferplus):
    from fer_edge.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(ferplus_model / "best.pt")
    assert ckpt["classes"] == list(FERPLUS_CLASSES) and ckpt["label_set"] == "ferplus"
    assert ckpt["config"]["ferplus_target"] == "votes"
    assert ckpt["best_val_accuracy"] >= 0.5  # chance is 1/8
    res = run_cli("eval", "--model", str(ferplus_model.parent / "fp.int8.onnx"), "--data", str(stripes_ferplus[0]),
                  "--ferplus", str(stripes_ferplus[1]), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["classes"] == list(FERPLUS_CLASSES) and doc["n"] == 8 * 5 and doc["label_set"] == "ferplus"
    assert doc["accuracy"] >= 0.5 and 0 <= doc["ece"] <= 1 and doc["nll"] > 0
    assert doc["temperature"] != 1.0  # fitted at export, stored in the contract


def test_a_ferplus_model_without_its_labels_says_which_file_to_give(ferplus_model, stripes_ferplus):
    res = run_cli("eval", "--model", str(ferplus_model.parent / "fp.onnx"), "--data", str(stripes_ferplus[0]))
    assert res.returncode == 3 and "--ferplus" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_the_runtime_shows_the_classes_the_model_has(ferplus_model, sample_image):
    import fer_edge

    faces = fer_edge.predict(str(sample_image), model=str(ferplus_model.parent / "fp.int8.onnx"))
    assert faces and list(faces[0].probabilities) == list(FERPLUS_CLASSES)
    res = run_cli("infer", "--model", str(ferplus_model.parent / "fp.int8.onnx"), str(sample_image), "--json")
    assert res.returncode == 0, res.stderr
    assert "contempt" in json.loads(res.stdout)["images"][0]["faces"][0]["probabilities"]


def test_majority_training_and_a_fer2013_init(stripes_ferplus, tmp_path, capsys):
    """--ferplus-target majority trains on hard labels; --init from a 7-class model copies its 7 rows."""
    from fer_edge.training.checkpoint import load_checkpoint
    from test_training_e2e import cli, train_args

    data, new = stripes_ferplus
    seven = tmp_path / "seven"
    assert cli(*train_args(data, "edgenet", seven, "--epochs", "1", "--augment", "none")) == 0
    out = tmp_path / "maj"
    assert cli(*train_args(data, "edgenet", out, "--epochs", "1", "--augment", "none", "--ferplus", new,
                           "--ferplus-target", "majority", "--init", seven / "best.pt")) == 0
    assert "classifier rows copied for 7 classes, new: contempt" in capsys.readouterr().err
    src, dst = load_checkpoint(seven / "best.pt"), load_checkpoint(out / "last.pt")
    assert dst["config"]["ferplus_target"] == "majority" and dst["model"]["head.3.weight"].shape[0] == 8
    assert src["model"]["head.3.weight"].shape[0] == 7
    assert cli(*train_args(data, "edgenet", tmp_path / "x", "--epochs", "1", "--ferplus-target", "votes")) == 2


def test_a_ferplus_export_without_its_labels_measures_nothing_rather_than_fer2013s(ferplus_model, stripes_ferplus,
                                                                                   tmp_path, capsys):
    """Without fer2013new.csv, an int8 FER+ export calibrates its quantization but records no accuracy
    or temperature: scoring 8 classes against FER2013's 7 labels would be silently wrong."""
    import torch

    from fer_edge.training.checkpoint import load_checkpoint
    from fer_edge.training.export import read_contract
    from test_training_e2e import cli

    ckpt = load_checkpoint(ferplus_model / "best.pt")
    ckpt["config"]["ferplus"] = str(tmp_path / "gone.csv")
    torch.save(ckpt, tmp_path / "moved.pt")
    assert cli("export", "--checkpoint", tmp_path / "moved.pt", "--out", tmp_path / "m.onnx",
               "--data", stripes_ferplus[0], "--int8") == 0
    assert "pass --ferplus" in capsys.readouterr().err
    for name in ("m.onnx", "m.int8.onnx"):
        c = read_contract(tmp_path / name)
        assert c.temperature == 1.0 and "accuracy_publictest" not in c.extra
