"""Ratios between benchmark cases, for the terminal summary and for the README.

pytest-benchmark prints absolute times per group; what a reader wants is what each choice
buys: "C++ parse: 140x seed-style, 1.3x raw read". Each benchmark describes itself in
``extra_info`` (see ``conftest.describe``):

``label``     human name of the case
``role``      ``"baseline"`` (what the others are compared with), ``"floor"`` (a lower bound
              such as reading the file's bytes) or ``""``
``subgroup``  cases are compared only within one (group, subgroup), e.g. ``"batch 32"``
``items``     rows / faces / frames handled by one call; ratios use the time per item, so a
              baseline measured on fewer items is still compared fairly
``item``      what an item is (``"row"``, ``"face"``, ``"frame"``)
``family``    ``parse`` / ``preprocess`` / ``model`` / ``stream``: the README layout
``row``       for the model family, the model's name (one README row per model and batch)
``note``      anything a reader must know about the measurement (e.g. "1 round")
``target_rate``  items per second the case should reach (the stream's 60 frames/s)

This module works on the JSON form of the results (``pytest --benchmark-json``), which is
also what the terminal summary builds from the live session, so the two always agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

# The fastest round: the least disturbed by whatever else the machine is doing (pytest-benchmark's
# own default sort). The JSON keeps median, mean and stddev as well.
STAT = "min"


@dataclass
class Case:
    group: str
    subgroup: str
    label: str
    role: str
    family: str
    row: str
    item: str
    items: int
    seconds: float  # STAT (fastest round) of the per-call times
    rounds: int
    note: str = ""
    target_rate: Optional[float] = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_item(self) -> float:
        return self.seconds / max(1, self.items)

    @property
    def rate(self) -> float:
        return 1.0 / self.per_item if self.per_item > 0 else float("inf")


@dataclass
class Skipped:
    group: str
    subgroup: str
    label: str
    reason: str
    family: str = ""
    row: str = ""


@dataclass
class Comparison:
    """One (group, subgroup): its cases and how each compares with the baseline and the floor."""

    group: str
    subgroup: str
    family: str
    cases: list[Case]
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def baseline(self) -> Optional[Case]:
        """The baseline case; when several are marked (one engine in several configurations),
        the fastest of them, so that a speed-up is never claimed over a badly configured rival."""
        candidates = [c for c in self.cases if c.role == "baseline"]
        return min(candidates, key=lambda c: c.per_item) if candidates else None

    @property
    def floor(self) -> Optional[Case]:
        return next((c for c in self.cases if c.role == "floor"), None)

    def speedup(self, case: Case) -> Optional[float]:
        """Baseline time per item / this case's (>1: faster than the baseline)."""
        b = self.baseline
        if b is None or case.per_item <= 0:
            return None
        return b.per_item / case.per_item

    def vs_floor(self, case: Case) -> Optional[float]:
        """This case's time per item / the floor's (1.3: 30% above the lower bound)."""
        f = self.floor
        if f is None or f.per_item <= 0:
            return None
        return case.per_item / f.per_item

    def headline(self) -> list[str]:
        """One clause per compared case, e.g. ``C++: 140x faster than seed-style, 1.3x the raw read (floor)``."""
        b, f = self.baseline, self.floor
        parts = []
        for c in self.cases:
            if c is b or c is f:
                continue
            bits = []
            targets = c.extra.get("targets") or {}
            s = self.speedup(c)
            if s is not None and b is not None:
                t = targets.get("speedup")
                rel = "as" if speed_text(s).startswith("same") else "than"
                bits.append(f"{speed_text(s)} {rel} {short(b.label)}" + (f" (target >= {t:g}x faster)" if t else ""))
            v = self.vs_floor(c)
            if v is not None and f is not None:
                t = targets.get("vs_floor")
                bits.append(f"{fmt_ratio(v)} the {short(f.label)} (floor)" + (f" (target <= {t:g}x)" if t else ""))
            if c.target_rate:
                bits.append(f"{c.rate:.1f} {c.item}s/s ({'meets' if c.rate >= c.target_rate else 'below'} the {c.target_rate:g}/s target)")
            if bits:
                parts.append(f"{short(c.label)}: " + ", ".join(bits))
        return parts


def short(label: str) -> str:
    """A label without its parenthesised detail, for headlines."""
    return label.split(" (")[0]


def case_from_record(rec: dict[str, Any]) -> Optional[Case]:
    """A :class:`Case` from one entry of pytest-benchmark's JSON ``benchmarks`` list."""
    stats = rec.get("stats") or {}
    if STAT not in stats:
        return None  # --benchmark-disable: the test ran once, untimed
    extra = dict(rec.get("extra_info") or {})
    return Case(
        group=str(rec.get("group") or "ungrouped"),
        subgroup=str(extra.get("subgroup", "")),
        label=str(extra.get("label") or rec.get("name")),
        role=str(extra.get("role", "")),
        family=str(extra.get("family", "")),
        row=str(extra.get("row", "")),
        item=str(extra.get("item", "call")),
        items=int(extra.get("items", 1) or 1),
        seconds=float(stats[STAT]),
        rounds=int(stats.get("rounds", 0)),
        note=str(extra.get("note", "")),
        target_rate=float(extra["target_rate"]) if extra.get("target_rate") else None,
        extra=extra,
    )


def skipped_from_records(recs: Iterable[dict[str, Any]]) -> list[Skipped]:
    return [Skipped(**{k: str(r.get(k, "")) for k in ("group", "subgroup", "label", "reason", "family", "row")}) for r in recs]


def compare(records: Iterable[dict[str, Any]], skipped: Iterable[Skipped] = ()) -> list[Comparison]:
    """Comparisons in group order (the order pytest-benchmark prints its tables in)."""
    by_key: dict[tuple[str, str], Comparison] = {}
    for rec in records:
        case = case_from_record(rec)
        if case is None:
            continue
        key = (case.group, case.subgroup)
        if key not in by_key:
            by_key[key] = Comparison(case.group, case.subgroup, case.family, [])
        by_key[key].cases.append(case)
    for s in skipped:
        key = (s.group, s.subgroup)
        if key not in by_key:
            by_key[key] = Comparison(s.group, s.subgroup, s.family, [])
        by_key[key].skipped.append(s)
    out = sorted(by_key.values(), key=lambda c: (c.group, _subgroup_key(c.subgroup)))
    for c in out:
        c.cases.sort(key=lambda x: (x.role != "baseline", x.role == "floor", x.per_item))
    return out


def _subgroup_key(sub: str) -> tuple:
    """'batch 1' before 'batch 32': numbers compare as numbers."""
    num = "".join(ch for ch in sub if ch.isdigit())
    return (sub.rstrip("0123456789 ").strip(), int(num) if num else -1, sub)


# ---------------------------------------------------------------------------- formatting
def fmt_time(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3g} µs"
    return f"{seconds * 1e9:.3g} ns"


def fmt_ratio(r: float) -> str:
    if r >= 100:
        return f"{r:,.0f}x"
    if r >= 10:
        return f"{r:.0f}x"
    if r >= 0.1:
        return f"{r:.2g}x" if r < 1 else f"{r:.1f}x"
    return f"{r:.2g}x"


def fmt_rate(rate: float) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:.1f}M"
    if rate >= 1e4:
        return f"{rate / 1e3:.0f}k"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f}k"
    return f"{rate:.1f}" if rate < 100 else f"{rate:.0f}"


def speed_text(s: Optional[float]) -> str:
    """'12x faster', '1.3x slower', or 'same speed' within 5% either way."""
    if s is None:
        return "-"
    if 1 / 1.05 <= s <= 1.05:
        return "same speed (±5%)"
    return f"{fmt_ratio(s)} faster" if s >= 1 else f"{fmt_ratio(1 / s)} slower"


def _table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: indent + "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
    )
    return [line(header), indent + "  ".join("-" * w for w in widths), *map(line, rows)]


def _role_suffix(c: Case, comp: "Comparison") -> str:
    if c is comp.baseline:
        return " [baseline]"
    return " [floor]" if c.role == "floor" else ""


def terminal_lines(comparisons: list[Comparison]) -> list[str]:
    """The ratio tables printed after pytest-benchmark's own."""
    lines: list[str] = []
    for comp in comparisons:
        title = comp.group + (f" / {comp.subgroup}" if comp.subgroup else "")
        lines.append("")
        lines.append(title)
        if comp.cases:
            item = comp.cases[0].item
            b, f = comp.baseline, comp.floor
            header = ["case", "per call", f"per {item}", f"{item}s/s"]
            if b is not None:
                header.append(f"vs {short(b.label)}")
            if f is not None:
                header.append(f"vs {short(f.label)}")
            has_target = any(c.target_rate for c in comp.cases)
            if has_target:
                header.append("target")
            header.append("rounds")
            rows = []
            for c in comp.cases:
                row = [c.label + _role_suffix(c, comp), fmt_time(c.seconds), fmt_time(c.per_item), fmt_rate(c.rate)]
                if b is not None:
                    row.append("baseline" if c is b else speed_text(comp.speedup(c)))
                if f is not None:
                    v = comp.vs_floor(c)
                    row.append("floor" if c is f else f"{fmt_ratio(v)} the floor" if v is not None else "-")
                if has_target:
                    row.append(("yes" if c.rate >= c.target_rate else "NO") + f" (>= {c.target_rate:g}/s)" if c.target_rate else "")
                row.append(str(c.rounds) + (f" ({c.note})" if c.note else ""))
                rows.append(row)
            lines.extend(_table(header, rows))
            for clause in comp.headline():
                lines.append(f"  => {clause}")
        for s in comp.skipped:
            lines.append(f"  not measured: {s.label}: {s.reason}")
    return lines


def model_pivot(comparisons: list[Comparison]) -> tuple[list[str], list[list[str]], list[Skipped]]:
    """Model family as one table: a row per (model, batch), a column per backend, per-face times.

    Returns (header, rows, skipped cases not shown as cells).
    """
    comps = [c for c in comparisons if c.family == "model"]
    order: dict[str, float] = {}  # column -> position: extra_info["order"], then skipped ones last
    for c in comps:
        for case in c.cases:
            pos = float(case.extra.get("order", -1 if case.role == "baseline" else 50))
            order[case.label] = min(order.get(case.label, pos), pos)
        for s in c.skipped:
            order.setdefault(s.label, 100.0 + len(order))
    columns = sorted(order, key=lambda k: order[k])
    rows: list[list[str]] = []
    skipped: list[Skipped] = []
    for c in comps:
        cells = {case.label: case for case in c.cases}
        skipped_here = {s.label: s for s in c.skipped}
        model = (c.cases[0].row if c.cases else c.skipped[0].row if c.skipped else "") or c.group
        row = [model, c.subgroup.replace("batch ", "")]
        for col in columns:
            case = cells.get(col)
            if case is None:
                row.append("not measured" if col in skipped_here else "-")
                continue
            s = c.speedup(case)
            cell = fmt_time(case.per_item)
            if s is not None and case is not c.baseline:
                cell += f" ({fmt_ratio(s)})" if s >= 1 else f" ({fmt_ratio(1 / s)} slower)"
            row.append(cell)
        rows.append(row)
        skipped.extend(skipped_here.values())
    return ["model", "batch", *columns], rows, skipped


def model_pivot_lines(comparisons: list[Comparison]) -> list[str]:
    header, rows, _ = model_pivot(comparisons)
    if not rows:
        return []
    return ["", f"model latency per face (speed-up vs {baseline_phrase(comparisons, 'model')})", *_table(header, rows)]


def baseline_phrase(comparisons: list[Comparison], family: str) -> str:
    """'PyTorch eager CPU', or 'the faster of PyTorch eager CPU and ..., 1 thread' for several."""
    labels: list[str] = []
    for c in comparisons:
        if c.family == family:
            for case in c.cases:
                if case.role == "baseline" and case.label not in labels:
                    labels.append(case.label)
    if not labels:
        return "the baseline"
    if len(labels) == 1:
        return labels[0]
    return "the faster of " + ", ".join(labels[:-1]) + " and " + labels[-1]
