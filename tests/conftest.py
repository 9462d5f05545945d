"""Shared fixtures: small synthetic FER2013 data in every layout, and the real data when present.

Fixtures (all function-scoped unless noted):
  fer_data            SyntheticFer with 24 Training, 8 PublicTest, 8 PrivateTest random faces
  make_fer_csv        make_fer_csv(name="x.csv", data=None, **fmt) -> (Path, SyntheticFer); fmt as in
                      tests/synthetic.py's write_fer_csv (layout, quote_pixels, newline, ...)
  fer_csv             a Kaggle-layout fer2013.csv made from fer_data
  make_image_folder   make_image_folder(name="faces", data=None, **kw) -> (Path, SyntheticFer)
  fer_image_folder    the train/test image-folder layout (train/<class>/Training_<i>.png, test/...)
  real_fer2013_dir    $FER_EDGE_FER2013_DIR, else ../shared/data/fer2013 (session; skips when absent)
  real_fer_csv_small  Kaggle's fer2013.csv layout of the real faces, 300 per split, via to_csv.py (session)
  real_ferplus_small  (fer2013.csv, fer2013new.csv) of the same 300 faces per split, via to_csv.py --ferplus (session)
  pixels_path         each of the C++ row parser's paths in turn: simd, scalar, slow (module)
Helpers: REPO_ROOT, SHARED_FER2013, run_cli(*args) -> CompletedProcess.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import pytest

from synthetic import SyntheticFer, make_synthetic, write_fer_csv, write_image_folder

# `python -m fer_edge` in a subprocess puts its working directory first on sys.path; run from the
# repository root, the source tree's fer_edge (no compiled extension, no training/ mapping) would
# shadow the installed package under test. Python 3.11's PYTHONSAFEPATH turns that off for every
# subprocess the tests start.
os.environ.setdefault("PYTHONSAFEPATH", "1")

def pytest_configure(config) -> None:
    try:
        import fer_edge._native  # noqa: F401
    except ImportError as exc:  # a source tree that was never built: say what to run, no traceback
        pytest.exit(str(exc), returncode=1)


REPO_ROOT = Path(__file__).resolve().parent.parent
# The real FER2013 faces (fer2013.npz: original pixels, FER2013 and FER+ labels, + to_csv.py, which
# writes the CSVs users have): FER_EDGE_FER2013_DIR when set, else the shared copy beside the repository.
FER2013_ENV = "FER_EDGE_FER2013_DIR"
SHARED_FER2013 = Path(os.environ.get(FER2013_ENV) or REPO_ROOT.parent / "shared" / "data" / "fer2013").expanduser()


def cli_env() -> dict[str, str]:
    """Environment for `python -m fer_edge` subprocesses: the same fer_edge as this process."""
    import fer_edge

    env = dict(os.environ)
    pkg_parent = str(Path(fer_edge.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fer_edge", *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=timeout,
    )


@pytest.fixture
def fer_data() -> SyntheticFer:
    return make_synthetic(seed=1234)


@pytest.fixture
def make_fer_csv(tmp_path: Path) -> Callable[..., tuple[Path, SyntheticFer]]:
    def make(name: str = "fer2013.csv", data: Optional[SyntheticFer] = None, **fmt) -> tuple[Path, SyntheticFer]:
        d = data if data is not None else make_synthetic(seed=1234)
        return write_fer_csv(tmp_path / name, d, **fmt), d

    return make


@pytest.fixture
def fer_csv(make_fer_csv) -> Path:
    return make_fer_csv()[0]


@pytest.fixture
def make_image_folder(tmp_path: Path) -> Callable[..., tuple[Path, SyntheticFer]]:
    def make(name: str = "faces", data: Optional[SyntheticFer] = None, **kw) -> tuple[Path, SyntheticFer]:
        d = data if data is not None else make_synthetic(seed=1234)
        return write_image_folder(tmp_path / name, d, **kw), d

    return make


@pytest.fixture
def fer_image_folder(make_image_folder) -> Path:
    return make_image_folder()[0]


@pytest.fixture(scope="module", params=["simd", "scalar", "slow"])
def pixels_path(request):
    """Each row parser in turn (fast path with the SIMD kernel, fast path with the portable
    kernel, the simple byte-at-a-time path alone): same results."""
    from fer_edge import _native

    _native._set_pixels_path(request.param)
    yield request.param
    _native._set_pixels_path("simd")


@pytest.fixture(scope="session")
def real_fer2013_dir() -> Path:
    if not ((SHARED_FER2013 / "fer2013.npz").is_file() and (SHARED_FER2013 / "to_csv.py").is_file()):
        pytest.skip(f"real FER2013 data not found at {SHARED_FER2013} (set {FER2013_ENV} to the folder "
                    "holding fer2013.npz and to_csv.py)")
    return SHARED_FER2013


@pytest.fixture(scope="session")
def real_fer_csv_small(real_fer2013_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("real_fer") / "fer2013_small.csv"
    subprocess.run(
        [sys.executable, str(real_fer2013_dir / "to_csv.py"), str(out), "--limit-per-split", "300"],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def real_ferplus_small(real_fer2013_dir: Path, tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("real_ferplus")
    csv, new = d / "fer2013.csv", d / "fer2013new.csv"
    subprocess.run(
        [sys.executable, str(real_fer2013_dir / "to_csv.py"), str(csv), "--ferplus", str(new),
         "--limit-per-split", "300"],
        check=True,
        capture_output=True,
    )
    return csv, new
