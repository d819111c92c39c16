"""Ablation of the ``cpu`` training profile, each variant against a linear probe on the same split.

For every variant (the ``cpu`` profile with one choice changed: width, crop,
SpecAugment/mixup strength) and seed: ``asctool train --profile cpu`` on a
training features file (validation: the profile's split by location, drawn
with the seed), run to its maximum epochs without stopping; each time a new
best validation epoch is written to ``model.keras`` its accuracy on an
evaluation features file is measured too. Early stopping only ever stops a
run (decisions at cycle ends, from the validation history), and training is
deterministic on a CPU, so a run with patience P is a prefix of this run: the
table gives, for each patience, the epoch the run would stop at, the epoch it
would restore and that epoch's evaluation accuracy, all from the one run.

Beside it, the linear probe of ``benchmarks/synth_learnability.py`` on the
same clips: a multinomial logistic regression (scikit-learn, C = 0.1,
standardised inputs) on each clip's mean and standard deviation over time of
the 128-band log-mel (channel 0 of the 1a features), fitted on the run's
training clips (its validation clips left out).

Usage::

    asctool synth --out-dir ds && asctool prepare --dataset-root ds --out-dir data
    asctool featurize --manifest data/fold1_train.tsv --out feats/train.h5
    asctool featurize --manifest data/fold1_evaluate.tsv --out feats/evaluate.h5
    python benchmarks/cpu_profile.py --train feats/train.h5 --evaluate feats/evaluate.h5 \\
        --work-dir /tmp/cpu_ablation --seeds 0,1,2 [--variants base,width=0.125,...]

Every run appends one JSON line to ``WORK/results.jsonl`` (a rerun skips the
runs already there); the Markdown tables (mean ± std over seeds) are printed
at the end, and alone with ``--table``. scikit-learn is used here only.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

if str(Path(__file__).resolve().parent) not in sys.path:  # the shared helpers (_common.py) when imported
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import group_accuracies, logmel_probe, mean_std, read_all  # noqa: E402

__all__ = ["VARIANTS", "PATIENCES", "run_variant", "table", "main"]

#: Variant name -> changes to the cpu profile (train keyword arguments, or ``augment_params``).
VARIANTS: dict[str, dict] = {
    "base": {},
    "width=0.125": {"width": 0.125},
    "width=0.5": {"width": 0.5},
    "crop=128": {"crop": 128},
    "crop=400": {"crop": 400},
    "augment=reference": {"augment_params": {"freq_mask": 12, "time_mask": 39, "mixup_alpha": 0.4}},
    "augment=crop only": {"augment": "crop"},
    "augment=strong mixup": {"augment_params": {"mixup_alpha": 1.0}},
    "demo profile": {"profile": "demo"},
}


PATIENCES = (4, 8, 16, None)


def _stop_point(history: list[dict], patience: int | None, ends: list[int],
                cycle_ends_only: bool) -> tuple[int, int]:
    """(epochs run, restored epoch) of a run with early stopping at ``patience``, from its full history."""
    from asctool.training.trainer import _improves, should_stop

    state: dict = {"best_val_accuracy": None, "best_val_loss": None, "best_epoch": None}
    for row in history:
        if (not cycle_ends_only or row["epoch"] in ends) and _improves(row, state):
            state.update(best_val_accuracy=row["val_accuracy"], best_val_loss=row["val_loss"],
                         best_epoch=row["epoch"])
        if patience is not None and row["epoch"] < len(history) and should_stop(
                row["epoch"], state["best_epoch"], patience=patience, cycle_end_epochs=set(ends)):
            return row["epoch"], state["best_epoch"]
    return len(history), state["best_epoch"]


def run_variant(name: str, seed: int, train_path: Path, evaluate_path: Path, work: Path,
                max_epochs: int) -> dict:
    """Train the cpu profile with the variant's changes; evaluation accuracy of every candidate epoch.

    The run trains without early stopping and with every epoch a candidate
    for ``model.keras``; the evaluation accuracy is measured at every cycle
    end and at every epoch written to ``model.keras``, so both selection
    rules (any epoch, cycle ends only) and every patience can be replayed.
    """
    from asctool.artifacts import open_features
    from asctool.stages.train import run as train
    from asctool.training import trainer
    from asctool.training.schedule import Schedule, cycle_ends

    changes = dict(VARIANTS[name])
    params = changes.pop("augment_params", None)
    saved = dict(trainer.PROFILES["cpu"]), trainer.export_model, trainer._save_checkpoint
    profile = {**saved[0], "best_at_cycle_ends": False}
    if params is not None:
        profile["augment_params"] = {**saved[0]["augment_params"], **params}
    x = read_all(evaluate_path).astype(np.float32)
    with open_features(evaluate_path) as f:
        scenes, devices = np.asarray(f.scenes).astype(str), np.asarray(f.devices).astype(str)
    exported: list[dict] = []
    at_end: dict[int, dict] = {}
    classes: list[str] = []

    def measure(model) -> dict:
        predicted = np.asarray(classes)[model.predict(x, batch_size=32, verbose=0).argmax(axis=1)]
        return group_accuracies(predicted == scenes, devices)

    def export(model, path, metadata):
        saved[1](model, path, metadata)
        classes[:] = metadata["classes"]
        if Path(path).name == "model.keras":
            exported.append(measure(model))

    def checkpoint(model, path):
        saved[2](model, path)
        epoch = int(Path(path).stem.split("-")[1])
        if epoch in ends:
            at_end[epoch] = measure(model)

    folder = work / f"{name.replace(' ', '_').replace('=', '-')}" / f"seed{seed}"
    kwargs = {"profile": "cpu", "seed": seed, "force": True, "early_stopping": False, "epochs": max_epochs,
              **changes}
    if kwargs["profile"] == "demo":
        kwargs.update(valid_split=saved[0]["valid_split"], epochs=None)
    ends = cycle_ends(kwargs["epochs"] or 6, Schedule(end_epoch=kwargs["epochs"] or 6))
    trainer.PROFILES["cpu"], trainer.export_model, trainer._save_checkpoint = profile, export, checkpoint
    start = time.perf_counter()
    try:
        summary = train([train_path], "fcnn", folder, **kwargs)
    finally:
        trainer.PROFILES["cpu"], trainer.export_model, trainer._save_checkpoint = saved
    seconds = time.perf_counter() - start
    history = json.loads((folder / "state.json").read_text())["history"]
    improved = [e for e in range(1, len(history) + 1)
                if _stop_point(history[:e], None, ends, False)[1] == e]   # the epochs exported, in order
    assert len(improved) == len(exported), (improved, len(exported))
    by_epoch = {**dict(zip(improved, exported)), **at_end}
    selection = {}
    for rule, only_ends in (("cycle_ends", True), ("any_epoch", False)):
        selection[rule] = {}
        for p in PATIENCES if kwargs["profile"] == "cpu" else (None,):
            stop, best = _stop_point(history, p, ends, only_ends)
            selection[rule][str(p)] = {"epochs_run": stop, "model_epoch": best, "cnn": by_epoch[best],
                                       "seconds": round(seconds * stop / len(history), 1)}
    config = json.loads((folder / "config.json").read_text())
    with open_features(train_path) as f:
        ids, locations = np.asarray(f.ids).astype(str), np.asarray(f.locations).astype(str)
    valid_ids = set(ids[np.isin(locations, config.get("valid_locations") or [])].tolist())
    return {"variant": name, "seed": seed, "seconds": round(seconds, 1), "epochs": summary["epochs"],
            "n_train": summary["n_train"], "n_valid": summary["n_valid"], "selection": selection,
            "evaluate_by_epoch": {str(e): by_epoch[e] for e in sorted(by_epoch)},
            "val_accuracy": [row["val_accuracy"] for row in history],
            "probe": logmel_probe(train_path, evaluate_path, exclude_ids=valid_ids)}


def table(rows: list[dict], patience: int = 8, rule: str = "cycle_ends") -> str:
    """Markdown tables: per variant, CNN and probe accuracy (mean ± std over seeds), epochs, time;
    then the patience and selection rule of the base variant."""
    rows = [r for r in rows if "selection" in r]
    lines = [f"| variant (patience {patience}) | seeds | CNN evaluate % | probe % (same split) | CNN - probe "
             "| CNN s4-s6 % | epochs run (restored) | s per run |",
             "|---|---|---|---|---|---|---|---|"]

    def pick(r, rule, p):
        chosen = r["selection"][rule]
        return chosen.get(str(p)) or chosen["None"]

    for name in VARIANTS:
        got = [r for r in rows if r["variant"] == name]
        if not got:
            continue
        runs = [pick(r, "any_epoch" if name == "demo profile" else rule, patience) for r in got]
        cnn = [q["cnn"]["all"] for q in runs]
        probe = [r["probe"]["all"] for r in got]
        epochs = ", ".join(f"{q['epochs_run']} ({q['model_epoch']})" for q in runs)
        lines.append(f"| {name} | {len(got)} | {mean_std(cnn)} | {mean_std(probe)} | "
                     f"{mean_std(np.subtract(cnn, probe))} | "
                     f"{mean_std([q['cnn'].get('s4-s6', np.nan) for q in runs])} | "
                     f"{epochs} | {np.mean([q['seconds'] for q in runs]):.0f} |")
    base = [r for r in rows if r["variant"] == "base"]
    if base:
        lines += ["", "| base: patience | model.keras from | CNN evaluate % | epochs run (restored) | s per run |",
                  "|---|---|---|---|---|"]
        for p in PATIENCES:
            for rule_name, label in (("cycle_ends", "cycle ends"), ("any_epoch", "any epoch")):
                runs = [pick(r, rule_name, p) for r in base]
                shown = p if p is not None else f"none ({base[0]['epochs']} epochs)"
                lines.append(f"| {shown} | {label} | {mean_std([q['cnn']['all'] for q in runs])} | "
                             + ", ".join(f"{q['epochs_run']} ({q['model_epoch']})" for q in runs)
                             + f" | {np.mean([q['seconds'] for q in runs]):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--evaluate", type=Path, required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--table", action="store_true", help="only print the table of WORK/results.jsonl")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    results = args.work_dir / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.is_file() else []
    if not args.table:
        names = [n.strip() for n in args.variants.split(",") if n.strip()]
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
        for seed in (int(s) for s in args.seeds.split(",")):
            for name in names:
                if any(r["variant"] == name and r["seed"] == seed for r in rows):
                    continue
                row = run_variant(name, seed, args.train, args.evaluate, args.work_dir, args.max_epochs)
                rows.append(row)
                with results.open("a") as out:
                    out.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
