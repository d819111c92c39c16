"""Run the benchmarks (``make bench``) and print their tables.

Each benchmark is a script ``benchmarks/<name>.py`` with a quick default size
and a ``main()``; this runner starts each in its own Python process (so that
one benchmark's imports, threads and memory do not disturb the next),
streams what it prints, and ends with a summary. By default it runs the
stage benchmarks that exist, in this order: featurize, augment, train.

Usage::

    python benchmarks/run_all.py                 # featurize, augment, train
    python benchmarks/run_all.py featurize       # only these (any benchmarks/NAME.py)

Other scripts in benchmarks/ (figures, analyses) need arguments and are run
by hand.

Figures taken on a busy machine are disturbed; see docs/performance.md.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main", "DEFAULT_ORDER"]

HERE = Path(__file__).resolve().parent
#: The stage benchmarks ``make bench`` runs, in order (those that exist).
DEFAULT_ORDER = ("featurize", "augment", "train")


def _available() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem != "run_all" and not p.stem.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: {', '.join(DEFAULT_ORDER)})")
    args = parser.parse_args(argv)
    available = _available()
    if args.names:
        unknown = [n for n in args.names if n not in available]
        if unknown:
            parser.error(f"no benchmark {', '.join(unknown)} (available: {', '.join(available)})")
        names = list(args.names)
    else:
        names = [n for n in DEFAULT_ORDER if n in available]
    if not names:
        print("no benchmarks found", file=sys.stderr)
        return 1
    results = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        status = subprocess.call([sys.executable, str(HERE / f"{name}.py")], cwd=HERE.parent)
        results.append((name, status, time.perf_counter() - started))
    print("\n=== summary ===")
    for name, status, seconds in results:
        print(f"{name:20s} {'ok' if status == 0 else f'FAILED (exit {status})':16s} {seconds:8.1f} s")
    return 0 if all(status == 0 for _, status, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
