"""`fer-edge eval --model X.onnx` runs without torch; what it needs beyond the runtime
(scikit-learn; matplotlib for the plots) is the light [eval] extra, and the messages say so."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env


def _run_blocked(blocked: tuple[str, ...], *argv: str) -> subprocess.CompletedProcess:
    """`fer-edge ARGV` in a process where importing any of ``blocked`` fails, as if not installed."""
    # A finder that refuses the modules (sys.modules[m] = None would trip scipy, which probes
    # sys.modules['torch'] for array types).
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.partition('.')[0] in {blocked!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from fer_edge.cli import main\n"
        f"code = main({list(argv)!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "sys.exit(code)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=300)


def test_onnx_eval_without_torch_writes_report_and_plots(fer_csv, tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    r = _run_blocked(("torch", "torchvision"), "eval", "--model", "default", "--data", str(fer_csv),
                     "--split", "PublicTest", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    from fer_edge.runtime.default_model import default_model_path
    from fer_edge.runtime.model import FerModel

    shipped = FerModel.load(default_model_path(), device="cpu").contract.model
    assert report["backend"] == "onnxruntime" and report["n"] == 8 and report["model"] == shipped
    assert {p.name for p in out.iterdir()} >= {"report.json", "confusion.png", "roc.png"}
    assert "not drawn" not in r.stderr


def test_onnx_eval_without_matplotlib_says_which_plots_are_missing(fer_csv, tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "report"
    r = _run_blocked(("torch", "matplotlib"), "eval", "--model", "default", "--data", str(fer_csv),
                     "--split", "PublicTest", "--out", str(out))
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("fer-edge: note:")]
    assert notes == [f"fer-edge: note: {name} not drawn: matplotlib is not installed (pip install 'fer-edge[eval]')"
                     for name in ("confusion.png", "roc.png")]
    assert (out / "report.json").is_file() and not (out / "confusion.png").exists()


def test_onnx_eval_without_scikit_learn_names_the_eval_extra(fer_csv):
    r = _run_blocked(("torch", "sklearn"), "eval", "--model", "default", "--data", str(fer_csv))
    assert r.returncode == 6
    assert r.stderr.strip() == ("fer-edge: error: sklearn is not installed; install the [eval] extra: "
                                "pip install 'fer-edge[eval]'")


def test_eval_extra_is_declared_and_light():
    import tomllib

    meta = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    extra = meta["project"]["optional-dependencies"]["eval"]
    names = {d.split(">")[0].split("=")[0].strip() for d in extra}
    assert names == {"scikit-learn", "matplotlib"}
