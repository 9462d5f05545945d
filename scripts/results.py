#!/usr/bin/env python3
"""Trained-model results: one summary file per model in docs/results/, and the README table made from them.

  results.py collect NAME --run RUN_DIR --eval-fp32 DIR --eval-int8 DIR [--onnx-int8 PATH] [--command CMD ...]
      merges the trainer's summary.json, the fp32 / int8 eval reports (report.json and the robustness.json
      of `fer-edge eval --robustness --out DIR`) and a measured ONNX Runtime CPU latency (one face, int8,
      2 threads) into docs/results/NAME_summary.json; copies the curves, the per-class report and the
      robustness table next to it.
  results.py table [--readme README.md]
      prints the table of every docs/results/*_summary.json, or rewrites it in the README between
      <!-- results:start --> and <!-- results:end -->.

Every number of the README's results table therefore comes from a file in docs/results, which
names the commands that produced it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"
# The table's order: the shipped model first, then the reference design, then the rest.
ROLES = ("default", "reference", "teacher", "candidate", "earlier")


def _eval(dir_: Optional[Path]) -> Optional[dict]:
    if dir_ is None or not (dir_ / "report.json").is_file():
        return None  # not evaluated (e.g. a timed run that ended before this pass)
    report = json.loads((dir_ / "report.json").read_text())
    out = {"accuracy": report["accuracy"], "macro_f1": report["macro"]["f1"], "faces": report["n"],
           "split": report["split"], "model_path": Path(report["model_path"]).name}
    rob = dir_ / "robustness.json"
    if rob.is_file():
        r = json.loads(rob.read_text())
        out["robustness"] = {"worst": r["worst"], "rows": [
            {"perturbation": x["perturbation"], "accuracy": x["accuracy"], "drop_points": x["drop_points"]}
            for x in r["rows"]]}
    return out


def latency_ms(onnx_path: Path, threads: int = 2, runs: int = 300) -> float:
    """Median ONNX Runtime CPU time (ms) to classify one face: the number a laptop user feels."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 1, 48, 48)).astype(np.float32)
    for _ in range(30):
        sess.run(None, {"input": x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {"input": x})
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def train_summary(run: Path, device_name: Optional[str]) -> dict:
    """The trainer's summary.json; when the run has none (its process was stopped after its last
    logged epoch, before writing it), the same fields rebuilt from log.jsonl and the export's contract."""
    if (run / "summary.json").is_file():
        train = json.loads((run / "summary.json").read_text())
        if device_name and not train.get("device_name"):
            train["device_name"] = device_name
        return train
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    contract = json.loads((run / "export.json").read_text())["contract"]
    best = max(rows, key=lambda r: r["val_acc"])
    return {
        "model": contract["model"], "best_epoch": best["epoch"], "best_val_accuracy": best["val_acc"],
        "epochs_run": len(rows), "stopped_early": False,
        "wall_time_s": round(sum(r["epoch_time_s"] for r in rows), 2),
        "images_per_s": round(sum(r["images_per_s"] for r in rows) / len(rows), 1),
        "params": contract["extra"]["params"], "macs": contract["extra"]["macs"],
        "device": "cuda:0" if device_name and "NVIDIA" in device_name else "cpu", "device_name": device_name,
        "val_source": contract["extra"].get("val_source"),
        "rebuilt_from_log": "the process was stopped after its last logged epoch, before it wrote summary.json",
    }


def collect(args: argparse.Namespace) -> None:
    run = Path(args.run)
    train = train_summary(run, args.device_name)
    summary = {
        "model": args.name,
        "architecture": train["model"],
        "role": args.role,
        "train": train,
        "fp32": _eval(Path(args.eval_fp32) if args.eval_fp32 else None),
        "int8": _eval(Path(args.eval_int8)),
        "commands": args.command or [],
    }
    if args.onnx_int8:
        summary["ort_cpu_ms_1face_int8"] = round(latency_ms(Path(args.onnx_int8)), 3)
        summary["ort_cpu_latency_note"] = args.latency_note or (
            "median of 300 runs, batch 1, 2 intra-op threads, this machine's CPU")
    if not (run / "curves.png").is_file() and (run / "log.jsonl").is_file():
        from fer_edge.training.plots import plot_curves

        rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
        plot_curves(rows, RESULTS / f"{args.name}_curves.png", title=args.name)
    if args.note:
        summary["note"] = args.note
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    copies = {run / "curves.png": f"{args.name}_curves.png", run / "log.jsonl": f"{args.name}_log.jsonl",
              Path(args.eval_int8) / "report.md": f"{args.name}_publictest.md",
              Path(args.eval_int8) / "confusion.png": f"{args.name}_confusion.png",
              Path(args.eval_int8) / "robustness.md": f"{args.name}_robustness.md"}
    for src, name in copies.items():
        if src.is_file():
            shutil.copyfile(src, RESULTS / name)
    print(f"wrote {RESULTS / (args.name + '_summary.json')}")


def _pct(x) -> str:
    return f"{100 * x:.1f} %" if x is not None else "-"


def table() -> str:
    rows = []
    summaries = [json.loads(p.read_text()) for p in RESULTS.glob("*_summary.json")]
    summaries = [s for s in summaries if "train" in s]  # older trainer-only summaries have no evals
    summaries.sort(key=lambda s: (ROLES.index(s.get("role", "earlier")) if s.get("role", "earlier") in ROLES
                                  else len(ROLES), s["model"]))
    for s in summaries:
        t, f, q = s["train"], s.get("fp32") or {}, s["int8"]
        rob = q.get("robustness", {}).get("worst")
        f1 = f"{f['macro_f1']:.3f}" if f else "-"
        rows.append(
            f"| `{s['model']}` | {s.get('role', '-')} | {t.get('device_name') or t['device']} | {t['epochs_run']} | "
            f"{t['wall_time_s'] / 60:.1f} min | {t['images_per_s']:.0f} | {_pct(f.get('accuracy'))} / {_pct(q['accuracy'])} | "
            f"{f1} / {q['macro_f1']:.3f} | {t['params'] / 1e6:.2f} M | {t['macs'] / 1e6:.0f} M | "
            f"{s.get('ort_cpu_ms_1face_int8', float('nan')):.2f} ms | "
            + (f"{rob['drop_points']:+.1f} ({rob['perturbation']})" if rob else "-") + " |"
        )
    head = ("| model | role | trained on | epochs | wall time | images/s | PublicTest acc. fp32 / int8 "
            "| macro-F1 fp32 / int8 | params | MACs / face | ORT CPU, 1 face, int8 "
            "| worst robustness drop (int8, points) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(rows) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)
    c = sub.add_parser("collect")
    c.add_argument("name")
    c.add_argument("--run", required=True)
    c.add_argument("--eval-fp32", help="fp32 eval --out dir (optional: a run may lack it)")
    c.add_argument("--role", default="candidate", choices=ROLES)
    c.add_argument("--device-name", help="the GPU/CPU it trained on, when the run's summary lacks it")
    c.add_argument("--latency-note", help="how the latency was measured, when not on this run's own int8 file")
    c.add_argument("--eval-int8", required=True)
    c.add_argument("--onnx-int8")
    c.add_argument("--command", action="append", help="a command that produced these results (repeatable)")
    c.add_argument("--note")
    t = sub.add_parser("table")
    t.add_argument("--readme")
    lat = sub.add_parser("latency", help="median ONNX Runtime CPU time of one face, per thread count")
    lat.add_argument("models", nargs="+", type=Path)
    lat.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    lat.add_argument("--runs", type=int, default=300)
    args = p.parse_args()
    if args.verb == "collect":
        collect(args)
        return
    if args.verb == "latency":
        for m in args.models:
            cells = ", ".join(f"{latency_ms(m, t, args.runs):.2f} ms on {t} thread{'s' if t > 1 else ''}"
                              for t in args.threads)
            print(f"{m}: one face {cells}")
        return
    text = table()
    if not args.readme:
        print(text, end="")
        return
    readme = Path(args.readme)
    doc = readme.read_text()
    if START not in doc or END not in doc:
        sys.exit(f"{readme}: no {START} ... {END} markers")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + "\n" + text + END + tail)
    print(f"rewrote the results table in {readme}")


if __name__ == "__main__":
    main()
