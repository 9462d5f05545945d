#!/usr/bin/env python3
"""Turn ``pytest benchmarks --benchmark-json RESULTS.json`` into the README's performance section.

    pytest benchmarks --benchmark-json bench.json
    python benchmarks/report.py bench.json                      # print the Markdown
    python benchmarks/report.py bench.json --readme README.md   # rewrite the section in place

With ``--readme`` only the text between ``<!-- bench:start -->`` and ``<!-- bench:end -->``
is replaced; a README without both markers is left alone (exit 2). Several result files
(e.g. a CPU laptop and a GPU box) give one subsection each, every one naming its machine.
Results of a smoke run (``FER_BENCH_SMOKE=1``) are refused unless ``--allow-smoke``: their
sizes are too small for the numbers to mean anything.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_machine import describe_load, describe_machine  # noqa: E402
from bench_ratios import (  # noqa: E402
    Comparison,
    baseline_phrase,
    compare,
    fmt_rate,
    fmt_ratio,
    fmt_time,
    model_pivot,
    short,
    skipped_from_records,
    speed_text,
)

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
EXIT_USAGE, EXIT_INPUT = 2, 3
FAMILY_TITLES = {
    "parse": "Loading FER2013",
    "preprocess": "Face preprocessing",
    "detect": "Face detection",
    "model": "Model latency",
    "stream": "End to end",
    "serving": "Serving: threads sharing one Predictor",
}


class ReportError(Exception):
    def __init__(self, message: str, code: int = EXIT_INPUT):
        super().__init__(message)
        self.code = code


def load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file (run `pytest benchmarks --benchmark-json {path}` first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not a pytest-benchmark JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ReportError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    if "fer_edge" not in data:
        raise ReportError(f"{path}: written without benchmarks/conftest.py (no 'fer_edge' section); "
                          "run `pytest benchmarks` from the repository root")
    return data


# ---------------------------------------------------------------------------- Markdown
def _md_table(header: list[str], rows: list[list[str]], align: Optional[list[str]] = None) -> list[str]:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---" if a == "l" else "--:" for a in align]
    esc = lambda cell: cell.replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(map(esc, header)) + " |", "| " + " | ".join(sep) + " |",
            *("| " + " | ".join(map(esc, r)) + " |" for r in rows)]


def _title(group: str) -> str:
    """'1 parse: FER2013 CSV -> ...' -> 'FER2013 CSV -> ...'."""
    head, sep, rest = group.partition(": ")
    return rest if sep and head[:1].isdigit() else group


def _case_cell(c, comp: Comparison) -> str:
    tag = " (baseline)" if c is comp.baseline else " (floor)" if c is comp.floor else ""
    note = f" — {c.note}" if c.note else ""
    return f"{c.label}{tag}{note}"


def list_table(comps: list[Comparison]) -> list[str]:
    """One table for a group's comparisons (several subgroups become a first column)."""
    with_sub = any(c.subgroup for c in comps)
    first = next((c for c in comps if c.cases), None)
    if first is None:
        return []
    item = first.cases[0].item
    base, floor = first.baseline, first.floor
    has_target = any(case.target_rate for c in comps for case in c.cases)
    header = (["", "case"] if with_sub else ["case"]) + ["per call", f"per {item}", f"{item}s/s"]
    if base is not None:
        header.append(f"vs {short(base.label)}")
    if floor is not None:
        header.append(f"vs {short(floor.label)}")
    if has_target:
        header.append(f">= {first.cases[0].target_rate or 0:g} {item}s/s")
    rows = []
    for comp in comps:
        for c in comp.cases:
            row = ([comp.subgroup] if with_sub else []) + [_case_cell(c, comp), fmt_time(c.seconds), fmt_time(c.per_item), fmt_rate(c.rate)]
            if base is not None:
                row.append("1x" if c is comp.baseline else speed_text(comp.speedup(c)))
            if floor is not None:
                v = comp.vs_floor(c)
                row.append("1x" if c is comp.floor else f"{fmt_ratio(v)} the floor" if v is not None else "-")
            if has_target:
                row.append(("yes" if c.rate >= c.target_rate else "**no**") if c.target_rate else "")
            rows.append(row)
    align = (["l", "l"] if with_sub else ["l"]) + ["r"] * (len(header) - (2 if with_sub else 1))
    return _md_table(header, rows, align)


def render(data: dict[str, Any], source: str) -> list[str]:
    fe = data["fer_edge"]
    machine = data.get("machine_info", {}).get("fer_edge", {})
    skipped = skipped_from_records(fe.get("skipped", []))
    comparisons = compare(data["benchmarks"], skipped)
    date = machine.get("date") or str(data.get("datetime", ""))[:10]
    out = [
        f"Measured {date} on **{machine.get('cpu_model', 'an unknown CPU')}**"
        + (f" with **{machine['gpu']}**" if machine.get("gpu") else " (no GPU)")
        + f", {fe.get('mode', '?')} mode, by `{fe.get('command', 'pytest benchmarks')}`.",
        "",
        f"Machine: {describe_machine(machine)}.",
        "",
        *([describe_load(fe.get("load"), machine.get("cores")), ""] if describe_load(fe.get("load"), machine.get("cores")) else []),
        "Times are each case's fastest round (the least disturbed by other load); ratios compare the time",
        "per row, face or frame with the group's baseline (\"12x faster\") or floor (\"1.3x the floor\": 30%",
        "above a lower bound that no implementation can beat).",
    ]
    if fe.get("mode") == "smoke":
        out += ["", "**Smoke run: tiny sizes, one round; these numbers are not representative.**"]
    by_family: dict[str, list[Comparison]] = {}
    for c in comparisons:
        by_family.setdefault(c.family or c.group, []).append(c)
    for family, comps in by_family.items():
        out += ["", f"#### {FAMILY_TITLES.get(family, family)}", ""]
        if family == "model":
            header, rows, missing = model_pivot(comps)
            out += [f"Time per face, and in brackets the speed-up over {baseline_phrase(comps, 'model')} "
                    "at the same batch size.", ""]
            out += _md_table(header, rows, ["l", "r"] + ["r"] * (len(header) - 2))
            notes: dict[str, list[str]] = {}
            for c in comps:
                for case in c.cases:
                    row_notes = notes.setdefault(case.row or c.group, [])
                    if case.note and case.note not in row_notes:
                        row_notes.append(case.note)
            random = [k for k, v in notes.items() if v == ["random weights"]]
            if random:
                out += ["", f"{', '.join(random)}: exported with random weights by the project's own export and "
                        "int8 quantization (latency does not depend on the weights)."]
            for k, v in notes.items():
                if k not in random and v:
                    out += ["", f"{k}: " + "; ".join(v) + "."]
            reasons: dict[tuple[str, str], list[str]] = {}
            all_rows = {r[0] for r in rows}
            for s in missing:
                models = reasons.setdefault((s.label, s.reason), [])
                if (s.row or s.group) not in models:
                    models.append(s.row or s.group)
            for (label, reason), models in reasons.items():
                which = "any model" if set(models) >= all_rows else ", ".join(models)
                out += ["", f"*{label}* not measured for {which}: {reason}."]
            continue
        groups: dict[str, list[Comparison]] = {}
        for c in comps:
            groups.setdefault(c.group, []).append(c)
        for group, gcomps in groups.items():
            title = _title(group)
            out += [f"{title[:1].upper()}{title[1:]}:", ""]
            out += list_table(gcomps)
            heads = [clause for c in gcomps for clause in ([f"{c.subgroup}: " + h for h in c.headline()] if c.subgroup else c.headline())]
            if heads:
                out += [""] + [f"- {h}" for h in heads]
            for c in gcomps:
                for s in c.skipped:
                    out += ["", f"*{s.label}: not measured*: {s.reason}."]
            out += [""]
        while out and out[-1] == "":
            out.pop()
    out += ["", f"<sub>Generated by `python benchmarks/report.py {source} --readme docs/BENCHMARKS.md` from the run above; "
            "docs/BENCHMARKS.md explains each case.</sub>"]
    return out


def render_all(paths: list[Path], allow_smoke: bool) -> str:
    sections = []
    for p in paths:
        data = load_results(p)
        if data["fer_edge"].get("mode") == "smoke" and not allow_smoke:
            raise ReportError(f"{p}: results of a smoke run (FER_BENCH_SMOKE=1); run the full suite, "
                              "or pass --allow-smoke to render them anyway", EXIT_USAGE)
        body = render(data, str(p))
        if len(paths) > 1:
            m = data.get("machine_info", {}).get("fer_edge", {})
            body = [f"### {m.get('gpu') or m.get('cpu_model', p.stem)}", ""] + body
        sections.append("\n".join(body))
    return "\n\n".join(sections)


def replace_section(readme: Path, body: str) -> None:
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{readme}: cannot read ({exc.strerror or exc})") from None
    i, j = text.find(START), text.find(END)
    if i < 0 or j < 0 or j < i:
        raise ReportError(f"{readme}: needs the markers {START} and {END} (in that order) around the "
                          "performance section; nothing was changed", EXIT_USAGE)
    new = text[: i + len(START)] + "\n" + body.rstrip() + "\n" + text[j:]
    tmp = readme.with_name(f".{readme.name}.{os.getpid()}.tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(readme)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path, help="JSON written by pytest --benchmark-json")
    ap.add_argument("--readme", type=Path, help="rewrite the section between the bench markers of this file")
    ap.add_argument("--allow-smoke", action="store_true", help="accept results of a FER_BENCH_SMOKE=1 run")
    args = ap.parse_args(argv)
    try:
        body = render_all(args.results, args.allow_smoke)
        if args.readme:
            replace_section(args.readme, body)
            print(f"report: {args.readme} performance section regenerated from {', '.join(map(str, args.results))}",
                  file=sys.stderr)
        else:
            print(body)
    except ReportError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
