"""The data layer and `fer-edge data stats` on the real FER2013 faces (skipped without them).

Expected counts come straight from the npz files' `emotion` arrays, not from our reader.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, run_cli
from fer_edge.data import read_fer_csv
from fer_edge.labels import CLASSES
from native_reference import mean_std_reference

pytestmark = pytest.mark.real_data
NPZ = {"train": "fer2013_train.npz", "validation": "fer2013_publictest.npz"}


def npz_faces(folder: Path, split: str, limit: int = 0):
    import cv2

    z = np.load(folder / NPZ[split])
    jpeg, off, emotion = z["jpeg"], z["offsets"], z["emotion"].astype(np.int64)
    n = len(emotion) if not limit else min(limit, len(emotion))
    faces = np.stack([cv2.imdecode(jpeg[off[i] : off[i + 1]], cv2.IMREAD_GRAYSCALE) for i in range(n)])
    return faces, emotion[:n]


def npz_counts(folder: Path, split: str) -> list[int]:
    emotion = np.load(folder / NPZ[split])["emotion"].astype(np.int64)
    return np.bincount(emotion, minlength=len(CLASSES)).tolist()


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
    """The full CSV: the one the project keeps at ../data/fer2013.csv, else written now (~30 s)."""
    ready = REPO_ROOT.parent / "data" / "fer2013.csv"
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
    assert doc["rows"] == 28709 + 3589
    assert doc["splits"]["train"]["rows"] == 28709
    assert doc["splits"]["validation"]["rows"] == 3589
    assert "test" not in doc["splits"]
    for split in ("train", "validation"):
        counts = [doc["splits"][split]["per_class"][c] for c in CLASSES]
        assert counts == npz_counts(real_fer2013_dir, split)
    human = run_cli("data", "stats", str(full_real_csv))
    assert human.returncode == 0
    assert "28,709" in human.stdout and "3,589" in human.stdout
