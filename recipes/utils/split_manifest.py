"""Split a manifest into training and validation parts by recording location.

Usage (standard library only, any python3)::

    python3 recipes/utils/split_manifest.py IN.tsv --train OUT_TRAIN.tsv --valid OUT_VALID.tsv
        [--fraction 0.1] [--seed 0]

For each scene, ``round(fraction * n)`` of its ``n`` recording locations (at
least one when it has two or more, never all of them) go to the validation
part, so no location is on both sides (REFERENCE.md 7.3: validation comes from
the training side, split by location). Rows keep every column; a relative
``path`` is rewritten relative to the output's folder so the audio is found.
The same seed gives the same split.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import sys
from collections import defaultdict
from pathlib import Path


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        rows = list(reader)
        header = list(reader.fieldnames or [])
    for needed in ("id", "path", "scene", "location"):
        if needed not in header:
            raise SystemExit(f"split_manifest.py: {path}: no '{needed}' column")
    return header, rows


def split(rows: list[dict[str, str]], fraction: float, seed: int) -> set[str]:
    """The held-out locations."""
    by_scene: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        by_scene[row["scene"]].add(row["location"])
    rng = random.Random(seed)
    held: set[str] = set()
    for scene in sorted(by_scene):
        locations = sorted(by_scene[scene])
        if len(locations) < 2:
            continue
        k = min(max(1, round(fraction * len(locations))), len(locations) - 1)
        held.update(rng.sample(locations, k))
    return held


def _write(path: Path, header: list[str], rows: list[dict[str, str]], source_dir: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            row = dict(row)
            if row["path"] and not os.path.isabs(row["path"]):
                row["path"] = os.path.relpath(source_dir / row["path"], path.parent.resolve())
            writer.writerow(row)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--train", required=True, type=Path)
    parser.add_argument("--valid", required=True, type=Path)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 0.0 < args.fraction < 1.0:
        parser.error(f"--fraction must be in (0, 1), not {args.fraction}")
    if not args.manifest.is_file():
        print(f"split_manifest.py: {args.manifest}: file not found", file=sys.stderr)
        return 1
    header, rows = _read(args.manifest)
    held = split(rows, args.fraction, args.seed)
    if not held:
        print(f"split_manifest.py: {args.manifest}: no scene has two locations to split", file=sys.stderr)
        return 1
    source_dir = args.manifest.parent.resolve()
    _write(args.train, header, [r for r in rows if r["location"] not in held], source_dir)
    _write(args.valid, header, [r for r in rows if r["location"] in held], source_dir)
    n_valid = sum(r["location"] in held for r in rows)
    print(f"{args.valid}: {n_valid} clips from {len(held)} locations; {args.train}: {len(rows) - n_valid} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
