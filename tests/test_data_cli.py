"""`fer-edge data stats`: table, JSON, and one-line errors with exit code 3."""
from __future__ import annotations

import json

import numpy as np

from conftest import run_cli
from fer_edge.cli import main
from fer_edge.cli.exitcodes import EXIT_INPUT
from fer_edge.labels import CLASSES
from native_reference import mean_std_reference


def test_stats_json(fer_csv, fer_data, capsys):
    assert main(["data", "stats", str(fer_csv), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "csv" and doc["rows"] == 40 and doc["size_bytes"] == fer_csv.stat().st_size
    assert doc["classes"] == list(CLASSES)
    assert list(doc["splits"]) == ["train", "validation", "test"]
    bounds = {"train": (0, 24), "validation": (24, 32), "test": (32, 40)}
    for split, (a, b) in bounds.items():
        s = doc["splits"][split]
        assert s["rows"] == b - a
        assert s["usage"] == {"train": "Training", "validation": "PublicTest", "test": "PrivateTest"}[split]
        expected = np.bincount(fer_data.labels[a:b], minlength=7).tolist()
        assert [s["per_class"][c] for c in CLASSES] == expected
        assert (s["mean"], s["std"]) == mean_std_reference(fer_data.images[a:b])
    assert (doc["mean"], doc["std"]) == mean_std_reference(fer_data.images)
    assert doc["parse_seconds"] > 0 and doc["stats_seconds"] > 0


def test_stats_table(fer_csv, capsys):
    assert main(["data", "stats", str(fer_csv)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"{fer_csv}: csv,") and "40 rows" in lines[0]
    assert lines[1].startswith("parsed in ")
    header = next(line for line in lines if line.startswith("split"))
    assert all(c[:8] in header for c in CLASSES)
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in ("train", "validation", "test", "all")}
    assert rows["train"][1:3] == ["Training", "24"]
    assert rows["validation"][1:3] == ["PublicTest", "8"]
    assert rows["all"][1] == "40"


def test_stats_image_folder(fer_image_folder, capsys):
    assert main(["data", "stats", str(fer_image_folder), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "image_folder" and doc["rows"] == 40
    assert {k: v["rows"] for k, v in doc["splits"].items()} == {"train": 24, "validation": 8, "test": 8}


def test_malformed_csv_is_one_line_and_exit_3(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n0," + " ".join(["1"] * 2303) + ",Training\n")
    res = run_cli("data", "stats", str(bad))
    assert res.returncode == EXIT_INPUT
    assert res.stderr == f"fer-edge: error: {bad} line 2: pixels has 2303 values, expected 2304\n"
    assert res.stdout == ""


def test_missing_path_exit_3(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "missing.csv"), "--json"]) == EXIT_INPUT
    assert "no such file or directory" in capsys.readouterr().err
