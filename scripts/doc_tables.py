"""Rewrite the tables the docs take from the code: the README's exit codes (from
``fer_edge/cli/exitcodes.py``). ``--check`` exits 1 when a table is stale (tests/test_doc_tables.py).

    python scripts/doc_tables.py            # rewrite README.md
    python scripts/doc_tables.py --check
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BEGIN = "<!-- exit-codes: generated from fer_edge/cli/exitcodes.py by scripts/doc_tables.py -->"
END = "<!-- /exit-codes -->"


def render(text: str) -> str:
    """``text`` with the block between BEGIN and END replaced by the current table."""
    from fer_edge.cli.exitcodes import markdown_table

    pattern = re.compile(re.escape(BEGIN) + r"\n.*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {BEGIN!r} ... {END!r} block")
    return pattern.sub(lambda _m: f"{BEGIN}\n{markdown_table()}{END}", text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 when README.md's table is stale, change nothing")
    args = p.parse_args(argv)
    readme = ROOT / "README.md"
    old = readme.read_text(encoding="utf-8")
    new = render(old)
    if args.check:
        if new != old:
            print("README.md: the exit-code table is stale; run python scripts/doc_tables.py", file=sys.stderr)
            return 1
        return 0
    if new != old:
        readme.write_text(new, encoding="utf-8")
        print("README.md: exit-code table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
