"""Build a recipe's RESULTS.md from ``asctool score --json`` reports.

Usage (standard library only, any python3)::

    python3 recipes/utils/results_table.py --out exp/RESULTS.md [--title TEXT]
        [--fusion-summary exp/two_stage/fuse.json] [--sizes NAME=size.json ...]
        NAME=exp/NAME/report_evaluate.json ...

One row per report, in the order given: device-group accuracies (A, B&C, s1-s3,
s4-s6, where present), overall micro and macro accuracy and the normalised log
loss, in percent except the log loss. Systems with 3 classes are marked. With
``--fusion-summary`` (the JSON that ``asctool fuse`` prints) the oracle-gating line
is added; with ``--sizes`` a column of model sizes in KB. The published figures of
REFERENCE.md section 6 follow for comparison.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

GROUPS = ("A", "B&C", "s1-s3", "s4-s6")
PUBLISHED_1A = [
    ("DCASE 2020 baseline (OpenL3 + MLP)", "70.6", "61.6", "53.3", "44.3", "54.1"),
    ("Resnet", "83.0", "76.1", "73.6", "71.0", "74.6"),
    ("FCNN", "87.3", "79.5", "75.7", "73.0", "76.9"),
    ("fsFCNN", "83.9", "78.6", "75.4", "72.8", "76.2"),
    ("ensemble of the three", "87.0", "81.5", "78.0", "76.9", "79.4"),
    ("3-class ensemble (3 classes)", "", "", "", "", "93.2"),
    ("two-stage ensemble, as published (row-order artifact, see docs/results.md)",
     "87.9", "84.1", "80.4", "79.9", "81.9"),
]


def _pct(value) -> str:
    return "" if value is None else f"{100.0 * float(value):.1f}"


def _find(obj, word: str):
    """Depth-first search of a JSON object for keys containing ``word``."""
    found = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            if word in str(key).lower():
                found[key] = value
            elif isinstance(value, (dict, list)):
                for sub_key, sub_value in _find(value, word).items():
                    found[f"{key}.{sub_key}"] = sub_value
    return found


def _oracle_line(summary: dict) -> str:
    """A readable line from the oracle-gating figures of a fuse summary."""
    acc = summary.get("accuracy")
    if isinstance(acc, dict) and "oracle_gating" in acc:
        parts = [f"{name} {_fmt(acc[name])}" for name in ("fine", "coarse", "fused") if name in acc]
        return ("Two-stage fusion (micro accuracy): " + ", ".join(parts)
                + "; oracle gating (the true coarse class given, the ceiling of a perfect 3-class stage) "
                + f"{_fmt(acc['oracle_gating'])}.")
    oracle = _find(summary, "oracle")
    if not oracle:
        return "Oracle gating: not reported by asctool fuse."
    parts = []
    for key, value in oracle.items():
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                parts.append(f"{key}.{sub_key} {_fmt(sub_value)}")
        else:
            parts.append(f"{key} {_fmt(value)}")
    return "Oracle gating (true coarse class given to the fusion): " + ", ".join(parts) + "."


def _fmt(value) -> str:
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return f"{100.0 * value:.1f} %"
    return str(value)


def build(rows: list[tuple[str, Path]], *, title: str, fusion_summary: Path | None,
          sizes: dict[str, Path], task: str, budget_kb: float | None = None,
          size_rule: str = "dcase") -> str:
    """The Markdown text of RESULTS.md."""
    lines = [f"# {title}", ""]
    head = ["system", "classes", *GROUPS, "all (micro)", "all (macro)", "log loss", "n"]
    if sizes:
        head += ["file (KB)", "params x bits (KB)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for name, path in rows:
        report = json.loads(path.read_text())
        groups = report.get("groups", {})
        overall = report.get("overall", {})
        cells = [name, str(len(report.get("classes", [])))]
        cells += [_pct(groups.get(g, {}).get("accuracy")) for g in GROUPS]
        cells += [_pct(overall.get("accuracy")), _pct(overall.get("macro_accuracy"))]
        log_loss = overall.get("log_loss")
        cells += ["" if log_loss is None else f"{float(log_loss):.3f}", str(report.get("n", ""))]
        if sizes:
            size = json.loads(sizes[name].read_text()) if name in sizes else None
            cells.append(f"{size['bytes'] / 1024:.1f}" if size else "")
            cells.append(f"{size['parameter_bytes'] / 1024:.1f}" if size and "parameter_bytes" in size else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Accuracies in %: micro = fraction of clips right, macro = mean of the per-class "
              "accuracies (the DCASE ranking metric); log loss normalised (rows sum to 1). "
              "3-class systems are scored against the coarse labels."]
    if sizes:
        infos = [json.loads(p.read_text()) for p in sizes.values()]
        key = "parameter_bytes" if size_rule == "dcase" else "bytes"
        total = sum(int(i.get(key, 0)) for i in infos)
        files = sum(int(i["bytes"]) for i in infos)
        line = (f"Sizes in KB of 1024 bytes: the .tflite files, and parameters x the nominal bits of the "
                f"quantisation (the DCASE 2020 rule). All quantised models together: files {files} bytes "
                f"({files / 1024:.1f} KB)")
        if size_rule == "dcase":
            line += f", parameters x bits {total} bytes ({total / 1024:.1f} KB)"
        if budget_kb is not None:
            verdict = "within" if total <= budget_kb * 1024 else "OVER"
            line += f"; {verdict} the budget of {budget_kb:g} KB (rule {size_rule})"
        lines += ["", line + "."]
    if fusion_summary is not None:
        lines += ["", _oracle_line(json.loads(fusion_summary.read_text()))]
    if task == "1a":
        lines += ["", "Published figures (REFERENCE.md section 6; fold 1, micro accuracy, %):", "",
                  "| system | A | B&C | s1-s3 | s4-s6 | all |", "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in PUBLISHED_1A]
    else:
        lines += ["", "Published (REFERENCE.md section 6): Mobnet 95.2 % -> 94.8 % quantised; "
                  "small-FCNN 96.4 % -> 96.3 %; fused pair 96.7 % under 500 KB."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", metavar="NAME=REPORT.json")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--title", default="Results")
    parser.add_argument("--task", choices=("1a", "1b"), default="1a")
    parser.add_argument("--fusion-summary", type=Path, default=None)
    parser.add_argument("--sizes", nargs="*", default=[], metavar="NAME=size.json")
    parser.add_argument("--budget-kb", type=float, default=None)
    parser.add_argument("--size-rule", choices=("dcase", "file"), default="dcase")
    args = parser.parse_args(argv)

    def pairs(items):
        out = []
        for item in items:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                parser.error(f"expected NAME=FILE, got {item!r}")
            if not Path(path).is_file():
                print(f"results_table.py: {path}: file not found", file=sys.stderr)
                raise SystemExit(1)
            out.append((name, Path(path)))
        return out

    rows = pairs(args.reports)
    sizes = dict(pairs(args.sizes))
    summary = args.fusion_summary if args.fusion_summary and args.fusion_summary.is_file() else None
    text = build(rows, title=args.title, fusion_summary=summary, sizes=sizes, task=args.task,
                 budget_kb=args.budget_kb, size_rule=args.size_rule)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
