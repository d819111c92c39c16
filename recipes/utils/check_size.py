"""Check that quantised models fit a size budget together.

Usage (standard library only, any python3)::

    python3 recipes/utils/check_size.py --budget-kb 500 [--rule dcase|file] RUN/size.json ...

Reads the ``size.json`` files written by ``asctool quantize`` and adds up, per
model, either

``dcase`` (default)
    ``parameter_bytes``: parameters x the nominal bits of the quantisation mode
    (8 for dynamic-range and int8, 16 for float16) / 8, the DCASE 2020 Task 1b
    rule under which Hu et al. report their pair under 500 KB;
``file``
    ``bytes``: the size of the ``.tflite`` files, which also hold the graph and
    keep small tensors (batch-norm statistics, biases) in float32.

KB are 1024 bytes. Prints one line per model and the total; exits 1 when the
total is over the budget.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

KEYS = {"dcase": "parameter_bytes", "file": "bytes"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="+", type=Path, metavar="size.json")
    parser.add_argument("--budget-kb", type=float, required=True)
    parser.add_argument("--rule", choices=sorted(KEYS), default="dcase")
    args = parser.parse_args(argv)
    key = KEYS[args.rule]
    total = 0
    for path in args.sizes:
        try:
            info = json.loads(path.read_text())
            value = int(info[key])
        except (OSError, ValueError, KeyError) as exc:
            print(f"check_size.py: {path}: no readable '{key}' ({exc})", file=sys.stderr)
            return 1
        total += value
        print(f"{path}: {value} bytes ({value / 1024:.1f} KB, rule {args.rule}; file {info.get('bytes')} bytes, "
              f"{info.get('parameters')} parameters, {info.get('mode')})")
    budget = args.budget_kb * 1024
    verdict = "within" if total <= budget else "OVER"
    print(f"total: {total} bytes ({total / 1024:.1f} KB), {verdict} the budget of {args.budget_kb:g} KB "
          f"(rule {args.rule})")
    return 0 if total <= budget else 1


if __name__ == "__main__":
    sys.exit(main())
