"""The data layer and `fer-edge data stats` on the real FER2013 faces (skipped without them).

Expected faces and counts come straight from fer2013.npz (tests/real_fer2013.py), not from our reader.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import real_fer2013
from conftest import REPO_ROOT, run_cli
from fer_edge.data import read_fer_csv
from fer_edge.labels import CLASSES
from native_reference import mean_std_reference

pytestmark = pytest.mark.real_data
TRAINING_FACES, PUBLICTEST_FACES = 28_561, 3_579  # fer2013.npz: FER2013 less the 158 rows FER+ found no face in
npz_faces = real_fer2013.faces
npz_counts = real_fer2013.counts


def test_small_real_csv_matches_the_npz_faces(real_fer2013_dir, real_fer_csv_small):
    ds = read_fer_csv(real_fer_csv_small)
    assert ds.split_names() == ["train", "validation"]
    for split in ("train", "validation"):
        faces, labels = npz_faces(real_fer2013_dir, split, limit=300)
        sub = ds.subset(split)
        np.testing.assert_array_equal(sub.images, faces)
        np.testing.assert_array_equal(sub.labels, labels)


def test_data_stats_json_on_small_real_csv(real_fer2013_dir, real_fer_csv_small):
    res = run_cli("data", "stats", str(real_fer_csv_small), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    for split in ("train", "validation"):
        faces, labels = npz_faces(real_fer2013_dir, split, limit=300)
        s = doc["splits"][split]
        assert s["rows"] == 300
        assert [s["per_class"][c] for c in CLASSES] == np.bincount(labels, minlength=7).tolist()
        mean, std = mean_std_reference(faces)
        assert (s["mean"], s["std"]) == (mean, std)


@pytest.fixture(scope="module")
def full_real_csv(real_fer2013_dir, tmp_path_factory) -> Path:
    """The full CSV: the one a developer keeps at data/fer2013.csv, else written now (~20 s)."""
    ready = REPO_ROOT / "data" / "fer2013.csv"
    if ready.is_file() and ready.stat().st_size > 200_000_000:
        return ready
    out = tmp_path_factory.mktemp("real_full") / "fer2013.csv"
    subprocess.run([sys.executable, str(real_fer2013_dir / "to_csv.py"), str(out)], check=True, capture_output=True)
    return out


@pytest.mark.slow
def test_data_stats_full_real_csv(real_fer2013_dir, full_real_csv):
    res = run_cli("data", "stats", str(full_real_csv), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["rows"] == TRAINING_FACES + PUBLICTEST_FACES
    assert doc["splits"]["train"]["rows"] == TRAINING_FACES
    assert doc["splits"]["validation"]["rows"] == PUBLICTEST_FACES
    assert "test" not in doc["splits"]
    for split in ("train", "validation"):
        counts = [doc["splits"][split]["per_class"][c] for c in CLASSES]
        assert counts == npz_counts(real_fer2013_dir, split)
    human = run_cli("data", "stats", str(full_real_csv))
    assert human.returncode == 0
    assert f"{TRAINING_FACES:,}" in human.stdout and f"{PUBLICTEST_FACES:,}" in human.stdout
