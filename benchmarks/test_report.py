"""The ratio arithmetic and benchmarks/report.py, on results whose times are known.

Not benchmarks themselves: they run with the suite (and in CI's smoke run) so that the
README generator cannot rot unnoticed between full runs.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import report
from bench_ratios import compare, skipped_from_records, terminal_lines


def record(group: str, label: str, seconds: float, *, role: str = "", items: int = 1, item: str = "row",
           subgroup: str = "", family: str = "parse", **extra) -> dict:
    """One entry as pytest-benchmark writes it to --benchmark-json."""
    return {
        "group": group, "name": f"test[{label}]", "fullname": f"x.py::test[{label}]", "params": {}, "param": label,
        "extra_info": dict(label=label, role=role, items=items, item=item, subgroup=subgroup, family=family, **extra),
        "options": {}, "stats": {"min": seconds, "median": seconds * 1.1, "mean": seconds * 1.2, "rounds": 5},
    }


PARSE = [
    record("1 parse: CSV", "seed-style", 2.0, role="baseline", items=1_000),
    record("1 parse: CSV", "C++", 0.13, items=10_000),
    record("1 parse: CSV", "raw read", 0.1, role="floor", items=10_000),
]


def results(mode: str = "full") -> dict:
    models = [
        record("3 model: edgenet", "PyTorch eager CPU", 0.004, role="baseline", items=1, item="face",
               subgroup="batch 1", family="model", row="edgenet", order=0),
        record("3 model: edgenet", "ORT CPU fp32", 0.001, items=1, item="face", subgroup="batch 1", family="model",
               row="edgenet", order=1),
    ]
    skipped = [{"group": "3 model: edgenet", "subgroup": "batch 1", "label": "PyTorch CUDA",
                "reason": "torch.cuda.is_available() is False", "family": "model", "row": "edgenet"}]
    return {
        "machine_info": {"fer_edge": {"cpu_model": "Test CPU 3000", "cores": 2, "python": "3.11.7", "date": "2026-01-02",
                                      "versions": {"onnxruntime": "1.99"}}},
        "benchmarks": PARSE + models,
        "datetime": "2026-01-02T00:00:00",
        "fer_edge": {"mode": mode, "command": "pytest benchmarks --benchmark-json b.json", "skipped": skipped},
    }


def test_ratios_are_per_item_against_baseline_and_floor() -> None:
    (comp,) = compare(PARSE)
    cpp = next(c for c in comp.cases if c.label == "C++")
    # seed-style: 2 ms per row; C++: 13 us per row -> 153.8x; raw read 10 us per row -> 1.3x the floor
    assert comp.speedup(cpp) == pytest.approx(2.0 / 1_000 / (0.13 / 10_000))
    assert comp.vs_floor(cpp) == pytest.approx(1.3)
    assert comp.headline() == ["C++: 154x faster than seed-style, 1.3x the raw read (floor)"]
    text = "\n".join(terminal_lines([comp]))
    assert "seed-style [baseline]" in text and "raw read [floor]" in text and "154x faster" in text


def test_skipped_cases_are_listed_under_their_group() -> None:
    data = results()
    comps = compare(data["benchmarks"], skipped_from_records(data["fer_edge"]["skipped"]))
    text = "\n".join(terminal_lines(comps))
    assert "not measured: PyTorch CUDA: torch.cuda.is_available() is False" in text


def test_readme_section_is_replaced_between_markers_only(tmp_path: Path) -> None:
    res = tmp_path / "bench.json"
    res.write_text(json.dumps(results()))
    readme = tmp_path / "README.md"
    before, after = "# Title\n\n## Performance\n\n", "\n## Licence\n\nMIT\n"
    readme.write_text(before + report.START + "\nold numbers\n" + report.END + after)
    assert report.main([str(res), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith(before + report.START) and text.endswith(report.END + after)
    assert "old numbers" not in text
    section = text[text.index(report.START):text.index(report.END)]
    assert "Test CPU 3000" in section and "pytest benchmarks --benchmark-json b.json" in section
    assert "154x faster" in section and "1.3x the floor" in section
    assert "| edgenet | 1 | 4 ms | 1 ms (4.0x) | not measured |" in section
    assert "*PyTorch CUDA* not measured for any model: torch.cuda.is_available() is False." in section
    assert report.main([str(res), "--readme", str(readme)]) == 0
    assert readme.read_text() == text  # regenerating from the same results changes nothing


def test_readme_without_markers_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    res = tmp_path / "bench.json"
    res.write_text(json.dumps(results()))
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    assert report.main([str(res), "--readme", str(readme)]) == 2
    assert readme.read_text() == "# no markers here\n"
    assert "needs the markers" in capsys.readouterr().err


def test_smoke_results_need_allow_smoke(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    res = tmp_path / "bench.json"
    res.write_text(json.dumps(results(mode="smoke")))
    assert report.main([str(res)]) == 2
    assert "smoke run" in capsys.readouterr().err
    assert report.main([str(res), "--allow-smoke"]) == 0
    assert "not representative" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not a pytest-benchmark JSON file"),
    ('{"benchmarks": []}', "no 'fer_edge' section"),
])
def test_unusable_results_give_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, content, message) -> None:
    res = tmp_path / "bench.json"
    if content is not None:
        res.write_text(content)
    assert report.main([str(res)]) == 3
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
