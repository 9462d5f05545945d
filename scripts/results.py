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

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _eval(dir_: Path) -> dict:
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


def collect(args: argparse.Namespace) -> None:
    run = Path(args.run)
    train = json.loads((run / "summary.json").read_text())
    summary = {
        "model": args.name,
        "architecture": train["model"],
        "train": train,
        "fp32": _eval(Path(args.eval_fp32)),
        "int8": _eval(Path(args.eval_int8)),
        "commands": args.command or [],
    }
    if args.onnx_int8:
        summary["ort_cpu_ms_1face_int8"] = round(latency_ms(Path(args.onnx_int8)), 3)
        summary["ort_cpu_latency_note"] = "median of 300 runs, batch 1, 2 intra-op threads, this machine's CPU"
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
    for path in sorted(RESULTS.glob("*_summary.json")):
        s = json.loads(path.read_text())
        if "train" not in s:  # an older trainer-only summary
            continue
        t, f, q = s["train"], s["fp32"], s["int8"]
        rob = q.get("robustness", {}).get("worst")
        rows.append(
            f"| `{s['model']}` | {t.get('device_name') or t['device']} | {t['epochs_run']} | "
            f"{t['wall_time_s'] / 60:.1f} min | {t['images_per_s']:.0f} | {_pct(f['accuracy'])} / {_pct(q['accuracy'])} | "
            f"{f['macro_f1']:.3f} / {q['macro_f1']:.3f} | {t['params'] / 1e6:.2f} M | {t['macs'] / 1e6:.0f} M | "
            f"{s.get('ort_cpu_ms_1face_int8', float('nan')):.2f} ms | "
            + (f"{rob['drop_points']:+.1f} ({rob['perturbation']})" if rob else "-") + " |"
        )
    head = ("| model | trained on | epochs | wall time | images/s | PublicTest acc. fp32 / int8 | macro-F1 fp32 / int8 "
            "| params | MACs / face | ORT CPU, 1 face, int8 | worst robustness drop (int8, points) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    return head + "\n" + "\n".join(rows) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)
    c = sub.add_parser("collect")
    c.add_argument("name")
    c.add_argument("--run", required=True)
    c.add_argument("--eval-fp32", required=True)
    c.add_argument("--eval-int8", required=True)
    c.add_argument("--onnx-int8")
    c.add_argument("--command", action="append", help="a command that produced these results (repeatable)")
    c.add_argument("--note")
    t = sub.add_parser("table")
    t.add_argument("--readme")
    args = p.parse_args()
    if args.verb == "collect":
        collect(args)
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
