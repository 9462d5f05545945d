"""Every option value is checked where argparse parses it: exit 2, argparse's one-line
message naming the option, no traceback, and nothing opened or trained first."""
from __future__ import annotations

import json

import pytest

from fer_edge.cli import main

# (argv, option named in the message). Each of these used to crash, exit 0 having done
# nothing, or exit 3/4/5 as if the input, model or device were at fault.
BAD = [
    (["infer", "x.jpg", "--max-faces", "0"], "--max-faces"),
    (["infer", "x.jpg", "--top-k", "0"], "--top-k"),
    (["infer", "x.jpg", "--margin", "-0.5"], "--margin"),
    (["infer", "x.jpg", "--margin", "nan"], "--margin"),
    (["infer", "x.jpg", "--detector", "foo"], "--detector"),
    (["infer", "x.jpg", "--detector", "haar:nope"], "--detector"),
    (["infer", "x.jpg", "--threads", "0"], "--threads"),
    (["infer", "x.jpg", "--threads", "10000"], "--threads"),  # a pool that size never let the process exit
    (["infer", "x.jpg", "--device", "foo"], "--device"),
    (["infer", "x.jpg", "--device", "cpu:1"], "--device"),
    (["demo", "--top-k", "0"], "--top-k"),
    (["webcam", "--max-frames", "0"], "--max-frames"),
    (["webcam", "--detect-every", "0"], "--detect-every"),
    (["webcam", "--detect-scale", "2"], "--detect-scale"),
    (["webcam", "--min-hits", "0"], "--min-hits"),
    (["webcam", "--smooth-alpha", "0"], "--smooth-alpha"),
    (["info", "--device", "foo"], "--device"),
    (["train", "--data", "d.csv", "--batch-size", "0"], "--batch-size"),
    (["train", "--data", "d.csv", "--lr", "-1"], "--lr"),
    (["train", "--data", "d.csv", "--label-smoothing", "2"], "--label-smoothing"),
    (["train", "--data", "d.csv", "--epochs", "0"], "--epochs"),
    (["train", "--data", "d.csv", "--epochs", "-3"], "--epochs"),
    (["train", "--data", "d.csv", "--epochs", "two"], "--epochs"),
    (["train", "--data", "d.csv", "--val-fraction", "1"], "--val-fraction"),
    (["train", "--data", "d.csv", "--threads", "0"], "--threads"),
    (["train", "--data", "d.csv", "--model", "foo"], "--model"),
    (["train-all", "--data", "d.csv", "--models", "base,foo"], "--models"),
    (["eval", "--model", "m.onnx", "--data", "d.csv", "--threads", "0"], "--threads"),
    (["eval", "--model", "m.onnx", "--data", "d.csv", "--device", "foo"], "--device"),
    (["export", "--checkpoint", "c.pt", "--out", "m.onnx", "--calibration-size", "0"], "--calibration-size"),
    (["export", "--checkpoint", "c.pt", "--out", "m.pt"], "--out"),
    (["eval", "--model", "m.onnx", "--data", "d.csv", "--split", "holdout"], "--split"),
    (["webcam", "--output", "out.mkv"], "--output"),
]


def option_error(argv, option: str, capsys) -> str:
    """Run ``argv``, which must end as argparse ends a bad ``option`` value (exit 2, its one line last,
    no traceback); that line."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"fer-edge {argv[0]}: error: argument {option}"), err
    assert "Traceback" not in err
    return last


@pytest.mark.parametrize("argv,option", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_values_are_usage_errors(argv, option, capsys):
    option_error(argv, option, capsys)



@pytest.mark.parametrize("argv,usage", [
    (["infer", "x.jpg", "--bogus"], "usage: fer-edge infer "),
    (["webcam", "--bogus", "1"], "usage: fer-edge webcam "),
    (["train", "--data", "d.csv", "--bogus"], "usage: fer-edge train "),
    (["--bogus"], "usage: fer-edge [-h]"),
])
def test_an_unknown_option_is_reported_with_its_verbs_usage(argv, usage, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage), err
    verb = f"fer-edge {argv[0]}" if not argv[0].startswith("-") else "fer-edge"
    assert err.strip().splitlines()[-1] == f"{verb}: error: unrecognized arguments: {' '.join(argv[argv.index('--bogus'):])}"

GOOD = [
    ["infer", "x.jpg", "--max-faces", "1", "--top-k", "7", "--margin", "0.2", "--detector", "haar:alt2",
     "--threads", "2", "--device", "cuda:1"],
    ["webcam", "--detect-scale", "1", "--smooth-alpha", "1", "--min-hits", "1"],
    ["train", "--data", "d.csv", "--epochs", "1", "--lr", "0.1", "--label-smoothing", "0", "--model", "edgenet"],
    ["train-all", "--data", "d.csv", "--models", "base,resnet18"],
]


@pytest.mark.parametrize("argv", GOOD, ids=[a[0] for a in GOOD])
def test_good_option_values_parse(argv):
    from fer_edge.cli import build_parser

    args = build_parser().parse_args(argv)
    assert args.func is not None


def test_info_unavailable_device_exits_5_and_still_checks_the_model(monkeypatch, capsys):
    """`info --device cuda` without CUDA: a device problem (exit 5), not an invalid model."""
    import fer_edge.runtime.providers as providers

    monkeypatch.setattr(providers, "available_providers", lambda: [providers.CPU])
    code = main(["info", "--device", "cuda", "--json"])
    info = json.loads(capsys.readouterr().out)
    assert code == 5
    assert info["device"]["ok"] is False and "CUDA" in info["device"]["error"]
    assert info["default_model"]["valid"] is True


def test_info_reports_the_installed_torch_version(capsys):
    # (that it does so without importing torch is checked in a fresh process: test_cli_infer.py::test_info_json)
    from importlib import metadata

    try:
        expected = metadata.version("torch")
    except metadata.PackageNotFoundError:
        expected = None
    assert main(["info", "--json", "--device", "cpu"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["versions"]["torch"] == expected


def test_model_default_names_the_packaged_model(tmp_path, capsys, monkeypatch):
    from fer_edge.runtime.default_model import sample_image_path

    assert main(["infer", str(sample_image_path()), "--model", "default", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["images"][0]["faces"]) == 1
    # a file called "default" in the working directory is ./default, not the packaged model
    (tmp_path / "default").write_bytes(b"junk")
    monkeypatch.chdir(tmp_path)
    assert main(["infer", str(sample_image_path()), "--model", "default", "--json"]) == 0
    assert main(["infer", str(sample_image_path()), "--model", "./default"]) == 4


@pytest.mark.parametrize("verb", ["infer", "demo"])
def test_overwrite_without_save_annotated_is_a_usage_error(verb, capsys):
    from fer_edge.runtime.default_model import sample_image_path

    argv = [verb, "--overwrite"] + ([str(sample_image_path())] if verb == "infer" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fer-edge: error: --overwrite applies to the annotated copies: use it with --save-annotated DIR"]


def test_info_with_an_unavailable_device_says_so_on_stderr(monkeypatch, capsys):
    import fer_edge.runtime.providers as providers

    monkeypatch.setattr(providers, "available_providers", lambda: [providers.CPU])
    assert main(["info", "--device", "cuda"]) == 5
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("fer-edge: error: CUDA was requested but is not available")
