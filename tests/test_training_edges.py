"""Edges of the training verbs: which run --resume and train-all continue, what a run may write in its
folder, and exports that leave all their files or none. Tiny models on synthetic faces, in process."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from fer_edge.cli import main  # noqa: E402
from fer_edge.cli.exitcodes import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE  # noqa: E402
from fer_edge.errors import InputError  # noqa: E402
from synthetic import make_synthetic, write_fer_csv  # noqa: E402
from test_ferplus import votes, write_ferplus  # noqa: E402

QUICK = ("--model", "fernet_xs", "--threads", "1", "--amp", "off", "--batch-size", "16", "--quiet")


def train(data, out, *extra: object) -> int:
    return main(["train", "--data", str(data), "--out", str(out), "--epochs", "1", *QUICK, *map(str, extra)])


def resume(out, *extra: object) -> int:
    return main(["train", "--resume", "--out", str(out), "--threads", "1", "--quiet", *map(str, extra)])


def log_rows(run: Path) -> int:
    return len((run / "log.jsonl").read_text().splitlines())


def last_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_fer_csv(tmp_path_factory.mktemp("data") / "fer2013.csv", make_synthetic(seed=1234))


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    """A finished one-epoch fernet_xs run (read only: tests copy what they change)."""
    out = tmp_path_factory.mktemp("runs") / "xs"
    assert train(data, out) == EXIT_OK
    return out


# --------------------------------------------------------------------------- which run is continued


def test_resume_takes_the_run_folder_however_it_is_spelled_or_wherever_it_moved(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert train(data, "r") == EXIT_OK
    for epochs, spelling in enumerate(("./r", "r/", str(tmp_path / "r")), start=2):
        assert resume(spelling, "--epochs", epochs) == EXIT_OK, spelling
    shutil.move("r", "moved")
    assert resume("moved", "--epochs", 5) == EXIT_OK
    assert log_rows(tmp_path / "moved") == 5 and not (tmp_path / "r").exists()


def test_a_moved_run_resumes_with_the_init_it_imported_into_its_folder(run, data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", "init.onnx", "--data", str(data)]) == EXIT_OK
    assert train(data, "r", "--init", "init.onnx") == EXIT_OK
    assert (tmp_path / "r" / "imported" / "init.pt").is_file()
    shutil.move("r", "moved")
    assert resume("moved", "--epochs", 2) == EXIT_OK  # its config named r/imported/init.pt
    assert log_rows(tmp_path / "moved") == 2


def test_resume_still_refuses_a_changed_setting(run, tmp_path, capsys):
    r = tmp_path / "r"
    shutil.copytree(run, r)
    assert resume(r, "--lr", "0.5") == EXIT_USAGE
    assert last_error(capsys).endswith("these options differ from it: --lr")


def test_train_all_from_another_folder_continues_the_run_where_it_is(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train-all", "--data", str(data), "--models", "fernet_xs", "--out", "ta", "--epochs", "1",
                 "--threads", "1", "--amp", "off", "--quiet"]) == EXIT_OK
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["train-all", "--data", str(data), "--models", "fernet_xs", "--out", "../ta", "--epochs", "2",
                 "--threads", "1", "--quiet"]) == EXIT_OK
    assert log_rows(tmp_path / "ta" / "fernet_xs") == 2
    assert list((tmp_path / "sub").iterdir()) == []


@pytest.mark.parametrize("changed", [("--lr", "0.3"), ("--augment", "none"), ("--label-smoothing", "0.3")])
def test_train_all_refuses_options_that_differ_from_a_run_it_finds(data, run, tmp_path, capsys, changed):
    ta = tmp_path / "ta"
    shutil.copytree(run, ta / "fernet_xs")
    before = (ta / "fernet_xs" / "last.pt").read_bytes()
    assert main(["train-all", "--data", str(data), "--models", "fernet_xs", "--out", str(ta), "--epochs", "2",
                 "--threads", "1", "--quiet", *changed]) == EXIT_USAGE
    assert last_error(capsys).endswith(f"these options differ from it: {changed[0]}")
    assert (ta / "fernet_xs" / "last.pt").read_bytes() == before and log_rows(ta / "fernet_xs") == 1


# --------------------------------------------------------------------------- what a run may write


@pytest.mark.parametrize("option,name", [("--init", "best.pt"), ("--teacher", "best.pt"), ("--data", "log.jsonl")])
def test_train_never_writes_over_its_own_inputs(data, run, tmp_path, capsys, option, name):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(run / "best.pt" if name.endswith(".pt") else data, out / name)
    before = (out / name).read_bytes()
    if option == "--data":
        assert main(["train", "--data", str(out / name), "--out", str(out), "--epochs", "1", *QUICK]) == EXIT_USAGE
    else:
        assert train(data, out, option, out / name) == EXIT_USAGE
    line = last_error(capsys)
    assert line.startswith("fer-edge: error: --out would overwrite the input") and str(out / name) in line
    assert (out / name).read_bytes() == before and sorted(p.name for p in out.iterdir()) == [name]


@pytest.mark.parametrize("name", ["best.pt", "curves.png", "summary.json"])
def test_train_refuses_a_folder_holding_files_it_would_replace(data, tmp_path, capsys, name):
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_bytes(b"the user's own file")
    assert train(data, out) == EXIT_USAGE
    assert last_error(capsys) == (f"fer-edge: error: --out would overwrite {out / name}, which existed before this "
                                  "run; choose another --out (an empty or new folder)")
    assert (out / name).read_bytes() == b"the user's own file" and [p.name for p in out.iterdir()] == [name]


def test_keep_epochs_files_count_as_what_a_run_writes(data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "epoch_002.pt").write_bytes(b"kept from elsewhere")
    assert main(["train", "--data", str(data), "--out", str(out), "--epochs", "2", "--keep-epochs", "1",
                 *QUICK]) == EXIT_USAGE
    assert "epoch_002.pt, which existed before this run" in last_error(capsys)


def test_train_all_refuses_a_model_folder_holding_files_it_would_replace(data, tmp_path, capsys):
    ta = tmp_path / "ta"
    (ta / "fernet_xs").mkdir(parents=True)
    (ta / "fernet_xs" / "best.pt").write_bytes(b"mine")
    assert main(["train-all", "--data", str(data), "--models", "fernet_xs", "--out", str(ta), "--epochs", "1",
                 "--threads", "1", "--quiet"]) == EXIT_USAGE
    assert "best.pt, which existed before this run" in last_error(capsys)
    assert (ta / "fernet_xs" / "best.pt").read_bytes() == b"mine"


# --------------------------------------------------------------------------- imported --init / --teacher


@pytest.fixture(scope="module")
def two_exports_of_one_name(run, tmp_path_factory) -> tuple[Path, Path]:
    """a/m.onnx and b/m.onnx: the run's weights, and the same weights scaled (another model, same name)."""
    d = tmp_path_factory.mktemp("exports")
    ckpt = torch.load(run / "best.pt", weights_only=True)
    ckpt["model"] = {k: v * 1.5 if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    torch.save(ckpt, d / "other.pt")
    paths = []
    for sub, src in (("a", run / "best.pt"), ("b", d / "other.pt")):
        (d / sub).mkdir()
        assert main(["export", "--checkpoint", str(src), "--out", str(d / sub / "m.onnx")]) == EXIT_OK
        paths.append(d / sub / "m.onnx")
    return paths[0], paths[1]


def _imported_path(pt: Path) -> str:
    return torch.load(pt, weights_only=True)["imported_from"]["path"]


def test_an_import_left_by_an_earlier_attempt_of_another_file_is_redone(data, two_exports_of_one_name, tmp_path):
    a, b = two_exports_of_one_name
    out = tmp_path / "out"
    assert main(["import", "--model", str(a), "--out", str(out / "imported" / "m.pt"), "--data", str(data)]) == 0
    assert train(data, out, "--init", b) == EXIT_OK
    assert _imported_path(out / "imported" / "m.pt") == str(b)


def test_an_import_of_the_same_file_is_reused(data, two_exports_of_one_name, tmp_path, capsys):
    a, _ = two_exports_of_one_name
    dst = tmp_path / "out" / "imported" / "m.pt"
    assert main(["import", "--model", str(a), "--out", str(dst), "--data", str(data)]) == 0
    stamp = dst.stat().st_mtime_ns
    assert train(data, tmp_path / "out", "--init", a) == EXIT_OK
    assert dst.stat().st_mtime_ns == stamp and "imported into" not in capsys.readouterr().err


def test_two_teachers_of_one_name_are_two_imports(data, two_exports_of_one_name, tmp_path):
    a, b = two_exports_of_one_name
    out = tmp_path / "out"
    assert train(data, out, "--teacher", a, "--teacher", b) == EXIT_OK
    teachers = torch.load(out / "last.pt", weights_only=True)["config"]["teacher"]
    assert teachers == [str(out / "imported" / "m.pt"), str(out / "imported" / "m-2.pt")]
    assert [_imported_path(Path(t)) for t in teachers] == [str(a), str(b)]


def test_a_file_in_imported_that_fer_edge_did_not_import_is_not_replaced(data, two_exports_of_one_name, tmp_path,
                                                                         capsys):
    a, _ = two_exports_of_one_name
    dst = tmp_path / "out" / "imported" / "m.pt"
    dst.parent.mkdir(parents=True)
    dst.write_bytes(b"not ours")
    assert train(data, tmp_path / "out", "--init", a) == EXIT_USAGE
    assert "is not a checkpoint fer-edge imported" in last_error(capsys) and dst.read_bytes() == b"not ours"


# --------------------------------------------------------------------------- export: all its files or none


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def ferplus_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(FER+ run, its fer2013.csv, its fer2013new.csv): one epoch of fernet_xs on FER+ votes."""
    d = tmp_path_factory.mktemp("ferplus")
    fer = make_synthetic(seed=7)
    csv = write_fer_csv(d / "fer2013.csv", fer)
    new = write_ferplus(d / "fer2013new.csv", [(u, "x.png", votes(happiness=6, neutral=4)) for u in fer.usages])
    assert train(csv, d / "run", "--ferplus", new) == EXIT_OK
    return d / "run", csv, new


def test_export_with_a_ferplus_file_that_does_not_line_up_writes_nothing(ferplus_run, tmp_path, capsys):
    run_dir, csv, new = ferplus_run
    short = tmp_path / "short.csv"
    short.write_text("".join(new.read_text().splitlines(keepends=True)[:-1]))
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", "--checkpoint", str(run_dir / "best.pt"), "--out", str(out / "m.onnx"), "--data", str(csv),
                 "--ferplus", str(short)]) == EXIT_INPUT
    assert "does not line up" in last_error(capsys) and _files(out) == []


def test_int8_export_with_data_without_training_faces_writes_nothing(run, tmp_path, capsys):
    only_test = write_fer_csv(tmp_path / "test_only.csv", make_synthetic({"PublicTest": 8}, seed=3))
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(out / "m.onnx"), "--data",
                 str(only_test), "--int8"]) == EXIT_INPUT
    assert "no training faces for int8 calibration" in last_error(capsys) and _files(out) == []


def test_ctrl_c_during_int8_leaves_no_export(run, data, tmp_path, monkeypatch, capsys):
    import fer_edge.training.quantize as quantize

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(quantize, "quantize_int8", interrupted)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(out / "m.onnx"), "--data", str(data),
                 "--int8", "--fp16"]) == EXIT_INTERRUPTED
    assert _files(out) == []
    monkeypatch.undo()
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(out / "m.onnx"), "--data", str(data),
                 "--int8"]) == EXIT_OK  # the rerun needs no --overwrite
    assert _files(out) == ["m.int8.onnx", "m.onnx"]


def test_a_failed_overwrite_keeps_the_files_it_did_not_replace(run, data, tmp_path, monkeypatch):
    import fer_edge.training.quantize as quantize

    out = tmp_path / "out"
    out.mkdir()
    (out / "m.fp16.onnx").write_bytes(b"an earlier export's")

    def failing(*args, **kwargs):
        raise InputError("disk gone")

    monkeypatch.setattr(quantize, "quantize_int8", failing)
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(out / "m.onnx"), "--data", str(data),
                 "--int8", "--fp16", "--overwrite"]) == EXIT_INPUT  # m.fp16.onnx is one of its targets
    assert _files(out) == ["m.fp16.onnx"]
    assert (out / "m.fp16.onnx").read_bytes() == b"an earlier export's"


def _bad_csv(data: Path, folder: Path) -> Path:
    lines = data.read_text().splitlines()
    emotion, pixels, usage = lines[5].split(",")
    lines[5] = ",".join([emotion, " ".join(pixels.split()[:-1]), usage])
    bad = folder / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    return bad


def test_export_of_malformed_data_is_an_input_error_naming_the_line(run, data, tmp_path, capsys):
    from fer_edge.training.export import export_checkpoint

    bad = _bad_csv(data, tmp_path)
    with pytest.raises(InputError, match="line 6: pixels has 2303 values"):
        export_checkpoint(str(run / "best.pt"), str(tmp_path / "m.onnx"), data=str(bad))
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / "m.onnx"),
                 "--data", str(bad)]) == EXIT_INPUT
    assert last_error(capsys) == f"fer-edge: error: {bad} line 6: pixels has 2303 values, expected 2304"
    assert not (tmp_path / "m.onnx").exists()


def test_export_refuses_ferplus_labels_for_a_fer2013_model(run, data, ferplus_run, tmp_path, capsys):
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / "m.onnx"), "--data",
                 str(data), "--ferplus", str(ferplus_run[2])]) == EXIT_INPUT
    assert "predicts 7 classes, not FER+'s 8" in last_error(capsys) and not (tmp_path / "m.onnx").exists()


def test_export_into_a_place_that_cannot_hold_files_is_an_output_error(run, capsys):
    target = Path("/proc/fer_edge_test.onnx")
    try:
        open(target, "wb").close()
    except FileNotFoundError:
        pass
    except OSError:
        pytest.skip("/proc refuses files otherwise here")
    else:
        pytest.skip("/proc takes files here")
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--out", str(target)]) == EXIT_INPUT
    assert last_error(capsys) == (f"fer-edge: error: cannot write {target}: No such file or directory; "
                                  "nothing was left under that name")


def test_write_failure_takes_a_missing_folder_of_the_output_not_a_missing_input(tmp_path):
    import errno

    from fer_edge.atomic import write_failure

    out = tmp_path / "gone" / "m.onnx"
    for name in (out, out.with_name(".m.onnx.tmp"), out.with_name(".m.onnx.x1y2.tmp")):
        exc = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(name))
        assert isinstance(write_failure(exc, out), InputError), name
    assert isinstance(write_failure(NotADirectoryError(errno.ENOTDIR, "Not a directory", str(out)), out), InputError)
    missing_input = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(tmp_path / "data.csv"))
    assert write_failure(missing_input, out) is None
    assert write_failure(RuntimeError(f"{os.strerror(errno.ENOENT)}: data.csv"), out) is None


@pytest.mark.parametrize("verb", [["train"], ["train-all"], ["eval"], ["export"], ["import"]])
def test_training_verbs_list_their_exit_codes(verb, capsys):
    with pytest.raises(SystemExit):
        main([*verb, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit codes: 0 ok, 2 bad command line, 3 no readable input, 4 model problem" in text
    assert "130 interrupted" in text


def test_resume_help_lists_the_options_a_resume_may_change():
    import argparse

    from fer_edge.cli import build_parser
    from fer_edge.training.commands import RESUME_OVERRIDES

    verbs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    resume_help = next(a.help for a in verbs.choices["train"]._actions if "--resume" in a.option_strings)
    for option in ("--epochs", "--patience", "--data", "--threads", "--time-budget"):  # --time-budget was left out
        assert option in resume_help, resume_help
    assert all(f"--{k.replace('_', '-')}" in resume_help for k in RESUME_OVERRIDES), resume_help
