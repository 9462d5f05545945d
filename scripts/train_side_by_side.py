#!/usr/bin/env python3
"""Train several models side by side on one GPU machine within a time budget, then export and evaluate them.

Why side by side: FER2013's 48x48 faces leave a data-centre GPU idle most of the time behind
Python's kernel launches (a small net's step is a few hundred tiny kernels), so N trainings in N
processes share the GPU at little cost to each. Why a budget: on a machine held for a fixed time,
every job gets ``fer-edge train --time-budget`` (the schedule is re-fitted to the epochs that
fit) and the driver stops whatever is left before the end, keeping what finished.

The data: a folder (``--data-dir``, default ``.data/``) holding ``fer2013.npz`` and its
``to_csv.py`` (54 MB together: the original FER2013 pixels with FER2013 and FER+ labels), from
which the driver writes Kaggle's ``fer2013.csv`` and Microsoft's ``fer2013new.csv`` (about 20 s),
or those two CSVs themselves. On the machine that prepares the run (``.data/`` is git-ignored):

    mkdir -p .data && cp ../shared/data/fer2013/{fer2013.npz,to_csv.py} .data/

then, on the GPU machine, from the repository root, for example:

    OUT=/tmp/out python3 scripts/train_side_by_side.py --budget 480 \
        --job "resnet18=resnet18:60:--augment strong --mixup 0.2" \
        --job "ferplus=fernet_m:120:--ferplus --augment strong --mixup 0.2" --bring ferplus

A job is NAME=MODEL:EPOCHS[:EXTRA fer-edge train OPTIONS]; a bare ``--ferplus`` among the options
trains on FER+'s votes (the driver supplies fer2013new.csv) and evaluates on its majority labels.
Each finished job is exported (fp32 + int8, temperature fitted) and evaluated on PublicTest (int8
with --robustness) while the others still train. Written under $OUT: results.tar.gz (or
results.tar.gz.00, .01, ... when over 15 MiB; ``cat results.tar.gz.* | tar xz``) holding
results/NAME/{train.log, summary.json, log.jsonl, curves.png, export.json, eval-fp32/,
eval-int8/} plus, for --bring jobs, best.fp16.pt (the weights in half precision: a teacher for
--teacher, or for a local export) and the int8 ONNX file when under 8 MB. A job given
--keep-epochs K is also averaged over its kept epochs (scripts/average_checkpoints.py, BatchNorm
recomputed on the GPU) and that average exported and evaluated the same way: avg-export.json,
avg-eval-fp32/, avg-eval-int8/, NAME.avg.int8.onnx and, brought, averaged.fp16.pt. On a CPU, as
a rehearsal with tiny budgets:

    OUT=/tmp/out python3 scripts/train_side_by_side.py --budget 300 --limit 500 --job "a=fernet_s:2"
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

PART_BYTES = 15 * 1024 * 1024  # results are moved in files of at most 16 MiB
SMALL_ONNX = 8_000_000
FER_EDGE = [sys.executable, "-m", "fer_edge"]  # the CLI of the Python this runs under, PATH or not
STARTUP_S = 30  # a trainer's own start (imports, CUDA, reading the CSV), outside its --time-budget
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:5.0f}s] {msg}", flush=True)


@dataclass
class Job:
    name: str
    model: str
    epochs: int
    extra: list[str]
    out: Path = Path()
    res: Path = Path()
    proc: Optional[subprocess.Popen] = None
    post: Optional[Future] = None
    notes: list[str] = field(default_factory=list)

    @property
    def ferplus(self) -> bool:
        """Trained on FER+'s votes: a bare --ferplus among its options."""
        return "--ferplus" in self.extra

    def train_options(self, ferplus_csv: Path) -> list[str]:
        """Its extra options with fer2013new.csv after a bare --ferplus."""
        out: list[str] = []
        for opt in self.extra:
            out.append(opt)
            if opt == "--ferplus":
                out.append(str(ferplus_csv))
        return out

    @classmethod
    def parse(cls, spec: str) -> "Job":
        try:
            name, rest = spec.split("=", 1)
            parts = rest.split(":", 2)
            model, epochs = parts[0], int(parts[1])
        except ValueError:
            sys.exit(f"train_side_by_side.py: --job {spec!r}: expected NAME=MODEL:EPOCHS[:EXTRA OPTIONS]")
        return cls(name, model, epochs, shlex.split(parts[2]) if len(parts) > 2 else [])


def run(cmd: list[str], log: Path, timeout: float) -> int:
    with open(log, "a") as f:
        f.write("$ " + shlex.join(cmd) + "\n")
        f.flush()
        try:
            return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=max(1.0, timeout)).returncode
        except subprocess.TimeoutExpired:
            f.write("killed: out of time\n")
            return 124


def setup(data_dir: Path, work: Path) -> tuple[Path, Path]:
    try:
        import fer_edge._native  # noqa: F401
    except ImportError:
        say("installing fer-edge")
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "."],
                           capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stdout[-3000:] + r.stderr[-3000:])
    csv, new = work / "fer2013.csv", work / "fer2013new.csv"
    if (data_dir / "fer2013.csv").is_file() and (data_dir / "fer2013new.csv").is_file():
        csv, new = data_dir / "fer2013.csv", data_dir / "fer2013new.csv"
    elif not (csv.is_file() and new.is_file()):
        if not (data_dir / "to_csv.py").is_file():
            sys.exit(f"train_side_by_side.py: {data_dir} holds neither fer2013.npz + to_csv.py nor the two CSVs")
        say(f"writing {csv} and {new} from {data_dir}/fer2013.npz")
        subprocess.run([sys.executable, str(data_dir / "to_csv.py"), str(csv), "--ferplus", str(new)], check=True)
    import torch

    say(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}"
        f"{', ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''}; {os.cpu_count()} CPUs")
    return csv, new


def post_process(job: Job, csv: Path, deadline: float, eval_threads: int, bring: bool,
                 ferplus_csv: Optional[Path] = None) -> None:
    """Export fp32 + int8, evaluate both on PublicTest (int8 with the robustness report): best.pt,
    then, for a job trained with --keep-epochs, the average of its kept epochs (averaged.pt,
    BatchNorm recomputed on the GPU; its files are prefixed ``avg-``), so the choice between the
    two is made on PublicTest here and neither needs the weights brought back."""
    for f in ("summary.json", "log.jsonl", "curves.png"):
        if (job.out / f).is_file():
            (job.res / f).write_bytes((job.out / f).read_bytes())
    best = job.out / "best.pt"
    if not best.is_file():
        job.notes.append("no best.pt")
        return
    left = lambda: deadline - time.monotonic()  # noqa: E731
    labels = ["--ferplus", str(ferplus_csv)] if job.ferplus and ferplus_csv else []
    export_and_eval(job, best, "", csv, left, eval_threads, bring, labels)
    kept = sorted(job.out.glob("epoch_*.pt"))
    if len(kept) >= 2:
        avg = job.out / "averaged.pt"
        code = run([sys.executable, str(Path(__file__).with_name("average_checkpoints.py")), "--data", str(csv),
                    *(["--ferplus", str(ferplus_csv)] if job.ferplus and ferplus_csv else []),
                    "--out", str(avg), *map(str, kept)], job.res / "post.log", left())
        if code:
            job.notes.append(f"averaging exit {code}")
        else:
            export_and_eval(job, avg, "avg-", csv, left, eval_threads, bring, labels)


def export_and_eval(job: Job, ckpt: Path, prefix: str, csv: Path, left: Callable[[], float], eval_threads: int,
                    bring: bool, labels: Optional[list[str]] = None) -> None:
    labels = labels or []
    if bring:
        import torch

        ck = torch.load(ckpt, map_location="cpu", weights_only=True)
        ck["model"] = {k: (v.half() if v.is_floating_point() else v) for k, v in ck["model"].items()}
        torch.save(ck, job.res / f"{ckpt.stem}.fp16.pt")
    onnx = job.out.parent.parent / "onnx" / f"{job.name}{'.' + prefix.rstrip('-') if prefix else ''}.onnx"
    onnx.parent.mkdir(parents=True, exist_ok=True)
    log = job.res / "post.log"
    with open(job.res / f"{prefix}export.json", "w") as f, open(log, "a") as err:
        code = subprocess.run([*FER_EDGE, "export", "--checkpoint", str(ckpt), "--out", str(onnx), "--data", str(csv),
                               "--int8", "--json", "--overwrite", *labels], stdout=f, stderr=err,
                              timeout=max(1.0, left())).returncode
    if code:
        job.notes.append(f"{prefix}export exit {code}")
        return
    int8 = onnx.with_suffix(".int8.onnx")
    if int8.stat().st_size < SMALL_ONNX:  # first: the model comes back even if an evaluation runs out of time
        (job.res / int8.name).write_bytes(int8.read_bytes())
    for path, tag, extra in ((int8, "int8", ["--robustness"]), (onnx, "fp32", [])):
        code = run([*FER_EDGE, "eval", "--model", str(path), "--data", str(csv), "--split", "PublicTest",
                    "--threads", str(eval_threads), "--out", str(job.res / f"{prefix}eval-{tag}"), "--overwrite",
                    "--json", *labels, *extra], log, left())
        if code:
            job.notes.append(f"{prefix}eval {tag} exit {code}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", action="append", required=True, help="NAME=MODEL:EPOCHS[:EXTRA train options]")
    p.add_argument("--budget", type=float, default=530, help="seconds for the whole call from start (default 530)")
    p.add_argument("--eval-reserve", type=float, default=110,
                   help="seconds kept after training for export and evaluation (default 110)")
    p.add_argument("--bring", action="append", default=[], help="job whose best.pt comes back in fp16")
    p.add_argument("--limit", type=int, help="train on this many faces (smoke tests)")
    p.add_argument("--data-dir", default=".data")
    p.add_argument("--eval-workers", type=int, default=4)
    args = p.parse_args()

    out_dir = Path(os.environ.get("OUT") or sys.exit("set OUT to the folder whose files come back"))
    work = Path(os.environ.get("WORK", "/tmp/fer-work"))  # the CSVs, written once, serve every later run
    # each run's trainings and results in a folder of their own: a second run on the same machine must not
    # meet the first one's (train refuses an --out that holds one) nor pack its results
    work.mkdir(parents=True, exist_ok=True)
    call = Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=work))
    res_root = call / "results"
    for d in (out_dir, res_root):
        d.mkdir(parents=True, exist_ok=True)
    jobs = [Job.parse(s) for s in args.job]
    csv, ferplus_csv = setup(Path(args.data_dir), work)
    deadline = T0 + args.budget
    train_budget = deadline - args.eval_reserve - time.monotonic()
    cpus = os.cpu_count() or 2
    threads = max(1, cpus // max(1, len(jobs)))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    for job in jobs:
        job.out, job.res = call / "runs" / job.name, res_root / job.name
        job.res.mkdir(parents=True, exist_ok=True)
        cmd = [*FER_EDGE, "train", "--data", str(csv), "--model", job.model, "--epochs", str(job.epochs),
               "--patience", str(job.epochs), "--out", str(job.out), "--quiet", "--threads", str(threads),
               "--time-budget", f"{train_budget - STARTUP_S:.0f}", *(["--limit", str(args.limit)] if args.limit else []),
               *job.train_options(ferplus_csv)]
        log = open(job.res / "train.log", "w")
        log.write("$ " + shlex.join(cmd) + "\n")
        log.flush()
        job.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    say(f"{len(jobs)} jobs training, {train_budget:.0f}s each at most, {threads} CPU threads each")

    pool = ThreadPoolExecutor(max_workers=args.eval_workers)
    eval_threads = max(1, cpus // args.eval_workers)
    pending = list(jobs)
    while pending:
        for job in list(pending):
            code = job.proc.poll()
            if code is None and time.monotonic() > deadline - args.eval_reserve + 20:
                os.killpg(job.proc.pid, signal.SIGTERM)  # past its budget: keep best.pt as it is
                job.notes.append("training stopped at the deadline")
                code = job.proc.wait()
            if code is not None:
                pending.remove(job)
                last = [ln for ln in (job.res / "train.log").read_text().splitlines() if ln.strip()][-1:]
                say(f"{job.name}: training exit {code}: {last[0] if last else ''}")
                if code:
                    job.notes.append(f"training exit {code}")
                job.post = pool.submit(post_process, job, csv, deadline, eval_threads, job.name in args.bring,
                                       ferplus_csv)
        time.sleep(2)
    for job in jobs:
        try:
            job.post.result(timeout=max(1.0, deadline - time.monotonic()))
        except Exception as exc:  # a timeout or a failed step: report it, keep the rest
            job.notes.append(f"post-processing: {type(exc).__name__}: {exc}")
        acc = ""
        for prefix in ("", "avg-"):
            rep = job.res / f"{prefix}eval-int8" / "report.json"
            if rep.is_file():
                acc += f"{prefix or 'best '}PublicTest int8 {json.loads(rep.read_text())['accuracy']:.4f} "
        say(f"{job.name}: {acc} {'; '.join(job.notes)}")
        (job.res / "notes.txt").write_text("\n".join(job.notes) + "\n")
    pool.shutdown(wait=False, cancel_futures=True)

    tar_path = call / "results.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(res_root, arcname="results")
    data = tar_path.read_bytes()
    if len(data) <= PART_BYTES:
        (out_dir / "results.tar.gz").write_bytes(data)
    else:
        for i in range(0, len(data), PART_BYTES):
            (out_dir / f"results.tar.gz.{i // PART_BYTES:02d}").write_bytes(data[i : i + PART_BYTES])
    say(f"done: {len(data) / 1e6:.1f} MB of results in {sorted(x.name for x in out_dir.iterdir())}")


if __name__ == "__main__":
    main()
