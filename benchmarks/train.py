"""Benchmark the training input pipeline and trainer, and training to convergence on a CPU.

Three speed measurements (``--only pipeline,fit,memory``, the default), each on a
temporary features file of synthetic clips (default 128 x 423 x 3, float16, like
the task 1a preset):

a. the input pipeline alone (HDF5 reads, SpecAugment, crop, mixup; channel
   swap too for 6-channel input): training samples per second;
b. one epoch of a model through the pipeline against the same model fitted
   with plain ``model.fit`` on in-memory arrays of the cropped size, in the
   same process, after a warm-up epoch each: the throughput ratio;
c. peak resident memory (``ru_maxrss``) of ``asctool train`` on N and on 4N
   clips, each in its own subprocess: the growth.

and one measurement of what training buys (``--only convergence``): on the demo
data (``asctool synth`` + ``asctool prepare`` + ``asctool split`` + ``asctool
featurize``, in ``--work-dir`` or a scratch folder), per seed one validation split
by location, and on it ``asctool train`` with ``--profile cpu`` (early stopping),
``--profile demo``, the demo recipe's settings and the linear probe
(``--model logreg``: logistic regression on each clip's log-mel mean and std),
each followed by ``asctool predict`` and ``asctool score`` on the evaluation set,
plus the log-mel-only probe in process: wall and CPU time of training (to the
epoch early stopping stopped at), the epoch restored, and accuracy overall
(micro) and per device group, as mean ± std over the seeds (see
:func:`run_convergence`). ``--extra NAME=OPTIONS`` adds a CNN row (an ablation
of the cpu profile); ``--quick``: a tiny version for the smoke test. The measured
table and its command: docs/performance.md, "Training on a CPU"::

    nice -n 15 python benchmarks/train.py --only convergence --work-dir WORK \
        --systems cpu,demo,recipe-demo,logreg,logmel-probe --extra "cpu-62=--profile cpu --max-epochs 62"

Run ``python benchmarks/train.py --help``; ``main()`` is importable. Prints a
table and, with ``--write-doc``, replaces the "Training" section of
docs/performance.md (the speed table; the convergence table is written to
``WORK/convergence.md`` and ``.json``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "performance.md"
if str(REPO / "benchmarks") not in sys.path:  # the shared helpers (_common.py) when imported, not run
    sys.path.insert(0, str(REPO / "benchmarks"))

from _common import GROUPS, asctool_command, logmel_probe, mean_std, timed  # noqa: E402


def write_features(path: Path, n: int, shape: tuple[int, int, int], *, seed: int = 0,
                   classes: int = 10) -> Path:
    """A features file of ``n`` random clips with a class-dependent band (float16)."""
    from asctool.artifacts import FeaturesWriter

    rng = np.random.default_rng(seed)
    scenes = [f"scene{i % classes}" for i in range(n)]
    ids = [f"{s}-city-{i % 7}-{i}-a" for i, s in enumerate(scenes)]
    locs = [f"{s}-city-{i % 7}" for i, s in enumerate(scenes)]
    band = max(1, shape[0] // classes)
    with FeaturesWriter(path, n=n, feature_shape=shape, config={"benchmark": True}, ids=ids, scenes=scenes,
                        devices=["a"] * n, locations=locs, dtype="float16") as writer:
        base = rng.random(shape, dtype=np.float32)
        for i in range(n):
            x = np.roll(base, i, axis=1)
            k = i % classes
            x[k * band:(k + 1) * band] += 0.5
            writer.write(i, x)
    return path


def _clip_set(path: Path):
    from asctool.training.data import make_clip_set, read_sources

    clips, classes = make_clip_set(read_sources([path], "training"), None, None, labels_name="scene")
    return clips, classes


def bench_pipeline(path: Path, *, batch_size: int, epochs: int = 6) -> dict:
    """(a) samples/s of the input pipeline with every applicable augmentation."""
    from asctool.training.batch_augment import AugmentConfig
    from asctool.training.pipeline import steps_per_epoch, train_dataset

    clips, classes = _clip_set(path)
    _, time_len, channels = clips.feature_shape
    augment = AugmentConfig(specaugment=True, crop=400 if time_len > 400 else None, mixup=True,
                            channel_swap=channels % 2 == 0)
    spe = steps_per_epoch(len(clips), batch_size)
    data = train_dataset(clips, batch_size=batch_size, seed=0, first_epoch=0, epochs=epochs,
                         augment=augment, num_classes=len(classes))
    iterator = iter(data)
    next(iterator)  # warm-up: graph construction, first reads
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    batches = 0
    for x, _ in iterator:
        batches += 1
    elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    samples = batches * batch_size
    return {"samples": samples, "seconds": elapsed, "samples_per_s": samples / elapsed,
            "cpu_ms_per_sample": 1000 * cpu / samples, "steps_per_epoch": spe, "augment": augment.to_dict()}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_fit(path: Path, *, model: str, width: float, batch_size: int, repeats: int = 2) -> dict:
    """(b) one epoch through the pipeline vs plain model.fit on in-memory arrays.

    Each variant runs a warm-up epoch (tracing) and ``repeats`` timed epochs;
    the fastest timed epoch counts (the least disturbed by other load).
    """
    import keras

    from asctool.models import build
    from asctool.training.batch_augment import AugmentConfig
    from asctool.training.pipeline import BatchReader, steps_per_epoch, train_dataset

    clips, classes = _clip_set(path)
    freq, time_len, channels = clips.feature_shape
    crop = 400 if time_len > 400 else None
    augment = AugmentConfig(specaugment=True, crop=crop, mixup=True, channel_swap=channels % 2 == 0)
    spe = steps_per_epoch(len(clips), batch_size)

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    def compiled():
        keras.utils.set_random_seed(0)
        net = build(model, len(classes), (freq, None, channels), width=width)
        net.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy",
                    metrics=["accuracy"])
        return net

    # in-memory arrays of what the model sees (cropped), float32, no augmentation
    with BatchReader(clips) as reader:
        x = reader.read(clips.file_index, clips.row).astype(np.float32)
    if crop:
        x = np.ascontiguousarray(x[:, :, :crop])
    y = keras.utils.to_categorical(clips.labels, len(classes)).astype(np.float32)
    timer = Timer()
    compiled().fit(x, y, batch_size=batch_size, epochs=1 + repeats, steps_per_epoch=spe, shuffle=True,
                   verbose=0, callbacks=[timer])
    memory_epoch = min(timer.times[1:])
    del x

    timer = Timer()
    data = train_dataset(clips, batch_size=batch_size, seed=0, first_epoch=0, epochs=1 + repeats,
                         augment=augment, num_classes=len(classes))
    compiled().fit(data, epochs=1 + repeats, steps_per_epoch=spe, verbose=0, callbacks=[timer])
    pipeline_epoch = min(timer.times[1:])
    return {"steps": spe, "memory_epoch_s": memory_epoch, "pipeline_epoch_s": pipeline_epoch,
            "ratio": memory_epoch / pipeline_epoch}


def _child_train(path: str, out_dir: str, model: str, width: float, batch_size: int) -> None:
    """Subprocess body of (c): train one epoch, print the peak RSS in KiB."""
    from asctool.stages.train import run as train

    train([path], model, out_dir, epochs=1, batch_size=batch_size, width=width, profile="demo", force=True)
    print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def bench_memory(tmp: Path, *, n: int, shape, model: str, width: float, batch_size: int) -> dict:
    """(c) peak RSS of training on n and on 4n clips."""
    results = {}
    for count in (n, 4 * n):
        path = write_features(tmp / f"mem{count}.h5", count, shape, seed=1)
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
        done = subprocess.run(
            [sys.executable, __file__, "--child-train", str(path), "--child-out", str(tmp / f"run{count}"),
             "--model", model, "--width", str(width), "--batch-size", str(batch_size)],
            capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"training subprocess failed:\n{done.stderr[-2000:]}")
        rss = int(done.stdout.split("MAXRSS", 1)[1].split()[0])
        results[count] = rss / 1024.0  # MiB
        path.unlink()
    small, large = results[n], results[4 * n]
    return {"n": n, "rss_n_mib": small, "rss_4n_mib": large, "growth": (large - small) / small}


# ---------------------------------------------------------------------------
# convergence: what the cpu profile learns on the demo data, and how long it takes

#: Systems of the convergence table: name -> (``asctool train`` options without the data, a description).
#: ``MODEL`` stands for ``--model``; "recipe-demo" takes its settings from the demo recipe's conf
#: (:func:`recipe_demo_options`).
CONVERGENCE_SYSTEMS: dict[str, tuple[list[str], str]] = {
    "cpu": (["--model", "MODEL", "--profile", "cpu"], "`--profile cpu`: early stopping at cycle ends"),
    "demo": (["--model", "MODEL", "--profile", "demo"], "`--profile demo`: 6 epochs"),
    "recipe-demo": (["--model", "MODEL", "--profile", "demo"], "the demo recipe's training settings"),
    "logreg": (["--model", "logreg"], "linear probe: `--model logreg` on clip log-mel mean/std"),
    "logmel-probe": ([], "the issue's linear probe: log-mel (channel 0) mean/std only, scikit-learn in process"),
}
#: Options the systems get in ``--quick`` mode (appended: the last value of an option wins; 2 s clips
#: have 79 frames, less than the recipe's crop).
QUICK_OPTIONS = {"cpu": ["--max-epochs", "2"], "demo": ["--epochs", "1"],
                 "recipe-demo": ["--epochs", "1", "--crop", "64"]}
#: ``asctool synth`` options of the data: the demo's (``clips_per_class`` of the recipe's demo section)
#: or, with ``--quick``, 2 s clips of 4 devices.
QUICK_SYNTH = ["--clips-per-class", "4", "--duration", "2", "--devices", "a,b,s1,s4"]
RECIPE_CONF = REPO / "recipes" / "conf" / "dcase2020_1a.yaml"
_EPOCH_LINE = re.compile(r"epoch (\d+)/\d+ lr .*\((\d+(?:\.\d+)?) s\)")


def recipe_demo_options(conf: Path = RECIPE_CONF) -> tuple[list[str], int]:
    """``asctool train`` options of the demo recipe's ``demo`` section, and its clips per class.

    Reads ``batch_size``, ``crop``, ``epochs``, ``width`` and ``clips_per_class``
    of the ``demo:`` section of the 1a recipe's conf (those present), so the row
    follows the recipe as it changes.
    """
    import yaml

    section = (yaml.safe_load(conf.read_text(encoding="utf-8")) or {}).get("demo") or {}
    options = []
    for key in ("batch_size", "crop", "epochs", "width"):
        if key in section:
            options += [f"--{key.replace('_', '-')}", str(section[key])]
    return options, int(section.get("clips_per_class", 8))


def _git_commit() -> str | None:
    """The last commit that changed ``asctool/`` or ``recipes/`` (the synth, the stages, the recipe's conf),
    with ``+changes`` when the working tree differs there; None outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        commit = git("log", "-1", "--format=%h", "--", "asctool", "recipes")
        dirty = git("status", "--porcelain", "--", "asctool", "recipes")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if dirty else "")


def _prepare_data(work: Path, settings: dict) -> dict:
    """Synthesize, prepare and featurize the evaluation set once (kept in ``work`` and reused)."""
    setup = work / "setup.json"
    if setup.is_file():
        before = json.loads(setup.read_text())
        if before["settings"]["data"] != settings["data"]:
            raise SystemExit(f"{work}: made with other data settings ({before['settings']['data']}); "
                             "use another --work-dir")
        return before["timings"]
    timings = {}
    data = settings["data"]
    timings["synth"] = timed(asctool_command("-q", "synth", "--out-dir", str(work / "dataset"), *data["synth"],
                                             "--seed", str(data["synth_seed"]), "--nj", "2", "--force"))
    timings["prepare"] = timed(asctool_command("-q", "prepare", "--dataset-root", str(work / "dataset"),
                                               "--out-dir", str(work / "data"), "--force"))
    timings["featurize_evaluate"] = _featurize(work / "data" / "fold1_evaluate.tsv", work / "feats" / "evaluate.h5",
                                               data)
    for t in timings.values():
        t.pop("stdout", None)
    setup.write_text(json.dumps({"settings": settings, "timings": timings}, indent=1))
    return timings


def _featurize(manifest: Path, out: Path, data: dict) -> dict:
    extra = ["--duration", "auto"] if data["quick"] else []
    return timed(asctool_command("-q", "featurize", "--manifest", str(manifest), "--out", str(out),
                                 "--preset", "1a", "--nj", "2", *extra, "--force"))


def _split(work: Path, seed: int, data: dict) -> Path:
    """Per seed: hold out whole locations (``asctool split``), featurize both sides; the seed's folder."""
    folder = work / f"seed{seed}"
    if (folder / "valid.h5").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    timed(asctool_command("-q", "split", "--manifest", str(work / "data" / "fold1_train.tsv"),
                          "--out-train", str(folder / "train.tsv"), "--out-valid", str(folder / "valid.tsv"),
                          "--valid-split", str(data["valid_split"]), "--seed", str(seed), "--force"))
    _featurize(folder / "train.tsv", folder / "train.h5", data)
    _featurize(folder / "valid.tsv", folder / "valid.h5", data)
    return folder


def _epoch_seconds(log_path: Path) -> dict[int, float]:
    """Wall seconds of each epoch, from the run's ``train.log`` (the last line of an epoch wins)."""
    seconds = {}
    if log_path.is_file():
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            match = _EPOCH_LINE.search(line)
            if match:
                seconds[int(match.group(1))] = float(match.group(2))
    return seconds


def train_and_score(system: str, seed: int, folder: Path, evaluate: Path, settings: dict) -> dict:
    """One run: ``asctool train`` (timed), ``asctool predict`` and ``asctool score`` on ``evaluate``.

    Returns the row of ``convergence.jsonl``: train/predict wall and CPU
    seconds, accuracy (``all`` and per device group, in [0, 1]), and for
    Keras models the epochs run, the epoch early stopping stopped at, the
    epoch ``model.keras`` holds and the wall seconds of the epochs up to it.
    """
    options = [settings["model"] if o == "MODEL" else o for o in settings["systems"][system]]
    if system == "logmel-probe":
        usage, start, load = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), os.getloadavg()[0]
        accuracy = logmel_probe(folder / "train.h5", evaluate)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
        return {"system": system, "seed": seed, "options": options, "accuracy": accuracy,
                "train": {"wall_s": round(time.perf_counter() - start, 2), "cpu_s": round(cpu, 2),
                          "load_start": round(load, 2), "load_end": round(os.getloadavg()[0], 2)},
                "predict": {"wall_s": None, "cpu_s": None}}
    run = folder / system
    valid = [] if system == "logreg" else ["--valid", str(folder / "valid.h5")]
    train = timed(asctool_command("-q", "train", "--train", str(folder / "train.h5"), *valid, *options,
                                  "--seed", str(seed), "--out-dir", str(run), "--force"))
    model = run / ("model.json" if system == "logreg" else "model.keras")
    predict = timed(asctool_command("-q", "predict", "--model", str(model), "--features", str(evaluate),
                                    "--out", str(run / "scores_evaluate.h5"), "--force"))
    timed(asctool_command("-q", "score", str(run / "scores_evaluate.h5"), "--json", str(run / "report.json"),
                          "--force"))
    report = json.loads((run / "report.json").read_text())
    accuracy = {"all": report["overall"]["accuracy"],
                **{name: g["accuracy"] for name, g in report.get("groups", {}).items()}}
    row = {"system": system, "seed": seed, "options": options, "accuracy": accuracy,
           "train": {k: v for k, v in train.items() if k != "stdout"},
           "predict": {k: v for k, v in predict.items() if k != "stdout"}}
    state_path = run / "state.json"
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        config = json.loads((run / "config.json").read_text())
        seconds = _epoch_seconds(run / "train.log")
        restored = state.get("model_epoch")
        row.update(max_epochs=config.get("epochs"), epochs_run=int(state["epoch"]),
                   stopped_epoch=state.get("stopped_epoch"), model_epoch=restored,
                   epochs_wall_s=round(sum(seconds.values()), 1),
                   wall_to_model_epoch_s=(round(sum(s for e, s in seconds.items() if e <= restored), 1)
                                          if restored and seconds else None),
                   n_train=config.get("n_train"), n_valid=config.get("n_valid"))
    return row


def convergence_settings(args: argparse.Namespace) -> dict:
    """The settings of a convergence run (data, systems, seeds) from the command line."""
    recipe_options, clips_per_class = recipe_demo_options()
    systems = {name: list(options) for name, (options, _) in CONVERGENCE_SYSTEMS.items()}
    systems["recipe-demo"] += recipe_options
    if args.quick:
        for name, extra in QUICK_OPTIONS.items():
            systems[name] += extra
    for spec in args.extra or ():
        name, sep, options = spec.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or name in systems:
            raise SystemExit(f"--extra {spec!r}: give NAME=OPTIONS with a new NAME of letters, digits, '.', '_', '-'")
        systems[name] = ["--model", "MODEL", *shlex.split(options)]
        if len(systems[name]) % 2:
            raise SystemExit(f"--extra {spec!r}: OPTIONS must be --option value pairs")
    chosen = [s.strip() for s in args.systems.split(",") if s.strip()] + [e.partition("=")[0] for e in args.extra or ()]
    unknown = [s for s in chosen if s not in systems]
    if unknown:
        raise SystemExit(f"--systems: unknown {', '.join(unknown)}; known: {', '.join(systems)}")
    synth = list(QUICK_SYNTH) if args.quick else ["--clips-per-class", str(args.clips_per_class or clips_per_class)]
    return {"data": {"synth": synth, "synth_seed": args.synth_seed, "valid_split": args.valid_split,
                     "quick": bool(args.quick)},
            "model": args.model, "seeds": [int(s) for s in args.seeds.split(",")],
            "systems": {name: systems[name] for name in chosen}}


def run_convergence(args: argparse.Namespace) -> dict:
    """The convergence benchmark: data once, then every seed x system (resumable); writes JSON and Markdown.

    Every run appends a row to ``WORK/convergence.jsonl``; a rerun with the same
    work folder skips the (seed, system, options) already there. At the end
    ``WORK/convergence.json`` holds the settings, the commit, the data timings,
    every row and the summary, and ``WORK/convergence.md`` the table
    (:func:`render_convergence`).
    """
    settings = convergence_settings(args)
    commit = _git_commit()
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="asctool-converge-"))
    work.mkdir(parents=True, exist_ok=True)
    data_timings = _prepare_data(work, settings)
    rows_path = work / "convergence.jsonl"
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()] if rows_path.is_file() else []
    evaluate = work / "feats" / "evaluate.h5"
    for seed in settings["seeds"]:
        folder = _split(work, seed, settings["data"])
        for system in settings["systems"]:
            options = [settings["model"] if o == "MODEL" else o for o in settings["systems"][system]]
            if any(r["system"] == system and r["seed"] == seed and r["options"] == options for r in rows):
                continue
            row = train_and_score(system, seed, folder, evaluate, settings)
            rows.append(row)
            with rows_path.open("a") as out:
                out.write(json.dumps(row) + "\n")
            print(f"seed {seed} {system}: {100 * row['accuracy']['all']:.1f} % in {row['train']['wall_s']:.0f} s "
                  f"wall, {row['train']['cpu_s']:.0f} s CPU (load {row['train']['load_start']:.1f})",
                  file=sys.stderr, flush=True)
    wanted = {(s, tuple(settings["model"] if o == "MODEL" else o for o in opts))
              for s, opts in settings["systems"].items()}
    rows = [r for r in rows if (r["system"], tuple(r["options"])) in wanted and r["seed"] in settings["seeds"]]
    summary = summarise_convergence(rows)
    result = {"settings": settings, "code_commit": commit, "data_timings": data_timings,
              "work_dir": str(work), "runs": rows, "summary": summary}
    (work / "convergence.json").write_text(json.dumps(result, indent=1))
    table = render_convergence(summary, settings)
    (work / "convergence.md").write_text(table + "\n")
    result["table"] = table
    return result


def summarise_convergence(rows: list[dict]) -> dict:
    """Per system: accuracies per seed (lists, in [0, 1]), the paired difference to ``logreg``, times, epochs."""
    probe = {r["seed"]: r["accuracy"]["all"] for r in rows if r["system"] == "logreg"}
    summary: dict = {}
    for row in rows:
        entry = summary.setdefault(row["system"], {"seeds": [], "accuracy": {}, "minus_probe": [],
                                                   "train_wall_s": [], "train_cpu_s": [], "predict_wall_s": [],
                                                   "epochs": [], "wall_to_model_epoch_s": [], "load": []})
        entry["seeds"].append(row["seed"])
        for group, value in row["accuracy"].items():
            entry["accuracy"].setdefault(group, []).append(value)
        if row["system"] != "logreg" and row["seed"] in probe:
            entry["minus_probe"].append(row["accuracy"]["all"] - probe[row["seed"]])
        entry["train_wall_s"].append(row["train"]["wall_s"])
        entry["train_cpu_s"].append(row["train"]["cpu_s"])
        entry["predict_wall_s"].append(row["predict"]["wall_s"])
        entry["load"] += [row["train"]["load_start"], row["train"]["load_end"]]
        if "epochs_run" in row:
            entry["epochs"].append([row["epochs_run"], row["model_epoch"], row["max_epochs"]])
            entry["wall_to_model_epoch_s"].append(row["wall_to_model_epoch_s"])
    return summary


def effective_options(options: Sequence[str]) -> list[str]:
    """``--key value`` pairs with a repeated option collapsed to its last value (as click reads them)."""
    chosen: dict[str, str] = {}
    for key, value in zip(options[::2], options[1::2]):
        chosen[key] = value
    return [token for pair in chosen.items() for token in pair]


def render_convergence(summary: dict, settings: dict) -> str:
    """The Markdown table of :func:`summarise_convergence` (accuracy in %, mean ± std over seeds)."""
    lines = ["| system | seeds | micro % | " + " | ".join(f"{g} %" for g in GROUPS)
             + " | minus `logreg` probe (points) | epochs run (restored) of max | train wall s | train CPU s "
             "| wall s to restored epoch |",
             "|---|---|---|" + "---|" * len(GROUPS) + "---|---|---|---|---|"]
    names = {"logreg": "linear probe (`--model logreg`)", "recipe-demo": "demo recipe settings",
             "logmel-probe": "linear probe, log-mel only"}
    for system, entry in summary.items():
        pairs = effective_options(settings["systems"][system])
        options = " ".join(f"{k} {v}" for k, v in zip(pairs[::2], pairs[1::2]) if k != "--model")
        label = f"{names.get(system, system)}: `{options}`" if options else names.get(system, system)
        epochs = ", ".join(f"{run} ({model}) of {most}" for run, model, most in entry["epochs"]) or "-"
        lines.append(f"| {label} | {len(entry['seeds'])} | {mean_std(entry['accuracy']['all'])} | "
                     + " | ".join(mean_std(entry["accuracy"].get(g, [])) for g in GROUPS)
                     + f" | {mean_std(entry['minus_probe'])} | {epochs} | "
                     f"{mean_std(entry['train_wall_s'], scale=1, digits=0)} | "
                     f"{mean_std(entry['train_cpu_s'], scale=1, digits=0)} | "
                     f"{mean_std(entry['wall_to_model_epoch_s'], scale=1, digits=0)} |")
    return "\n".join(lines)


def render(results: dict, args: argparse.Namespace) -> str:
    shape = "x".join(str(s) for s in args.shape)
    lines = ["| measurement | setting | result | target |", "|---|---|---|---|"]
    if "pipeline" in results:
        r = results["pipeline"]
        lines.append(f"| (a) input pipeline alone, all augmentations | {args.clips} clips {shape} float16, "
                     f"batch {args.batch_size} | {r['samples_per_s']:.0f} samples/s wall; "
                     f"{r['cpu_ms_per_sample']:.2f} ms CPU per sample (= {2000 / r['cpu_ms_per_sample']:.0f} "
                     f"samples/s on 2 free cores) | >= 2,000 |")
    if "fit" in results:
        r = results["fit"]
        lines.append(f"| (b) one epoch, pipeline vs in-memory `model.fit` | {args.model} width {args.width}, "
                     f"{r['steps']} steps of {args.batch_size} | {r['pipeline_epoch_s']:.1f} s vs "
                     f"{r['memory_epoch_s']:.1f} s: ratio {r['ratio']:.2f} | >= 0.95 |")
    if "memory" in results:
        r = results["memory"]
        lines.append(f"| (c) peak RSS of training, N vs 4N clips | N = {r['n']}, {args.model} width "
                     f"{args.width} | {r['rss_n_mib']:.0f} MiB vs {r['rss_4n_mib']:.0f} MiB: "
                     f"{100 * r['growth']:+.1f} % | < 20 % |")
    return "\n".join(lines)


def write_doc(table: str, command: str, note: str) -> None:
    """Replace (or add) the "## Training" section of docs/performance.md."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Performance\n\nMeasured speed of the stages. Each section belongs to the stage it describes.\n"
    section = (f"## Training\n\n`asctool train` input pipeline and trainer, measured with\n\n```\n{command}\n```\n\n"
               f"{note}\n\n{table}\n")
    start = text.find("## Training\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    DOC.write_text(text, encoding="utf-8")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=512, help="clips for (a) and (b)")
    parser.add_argument("--shape", type=lambda s: tuple(int(p) for p in s.split("x")), default=(128, 423, 3),
                        help="feature shape FREQxTIMExCHANNELS")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default="fcnn", help="the CNN of every part")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--memory-clips", type=int, default=64, help="N of (c)")
    parser.add_argument("--only", default="pipeline,fit,memory",
                        help="comma-separated subset of pipeline,fit,memory,convergence")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (the smoke test): 64 clips, N = 16, and for convergence 2 s clips of "
                             "4 devices, one seed, 1-2 epochs")
    conv = parser.add_argument_group("convergence (--only convergence)")
    conv.add_argument("--work-dir", help="folder for the data and the runs (reused; default: a new scratch "
                                         "folder); WORK/convergence.{json,md} hold the results")
    conv.add_argument("--seeds", default=None,
                      help="training seeds; each draws its own validation split (default 0,1,2; --quick: 0)")
    conv.add_argument("--systems", default=",".join(CONVERGENCE_SYSTEMS),
                      help=f"comma-separated subset of {', '.join(CONVERGENCE_SYSTEMS)}")
    conv.add_argument("--extra", action="append", metavar="NAME=OPTIONS",
                      help="one more CNN system (repeatable): NAME and its asctool train options, e.g. "
                           "'cpu-62=--profile cpu --max-epochs 62' (an ablation of the cpu profile)")
    conv.add_argument("--clips-per-class", type=int, default=None,
                      help="asctool synth --clips-per-class (default: the demo recipe's)")
    conv.add_argument("--synth-seed", type=int, default=0, help="asctool synth --seed of the data")
    conv.add_argument("--valid-split", type=float, default=0.2,
                      help="asctool split --valid-split (the cpu profile's default fraction)")
    parser.add_argument("--write-doc", action="store_true", help="update docs/performance.md")
    parser.add_argument("--note", default="", help="a sentence on the machine, for the doc")
    parser.add_argument("--child-train", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.clips, args.memory_clips = min(args.clips, 64), min(args.memory_clips, 16)
    args.seeds = args.seeds or ("0" if args.quick else "0,1,2")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmarks; returns the results and prints a table."""
    args = parse_args(argv)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.child_train:
        _child_train(args.child_train, args.child_out, args.model, args.width, args.batch_size)
        return {}
    wanted = set(args.only.split(","))
    unknown = wanted - {"pipeline", "fit", "memory", "convergence"}
    if unknown:
        raise SystemExit(f"--only: unknown {', '.join(sorted(unknown))}; choose from pipeline,fit,memory,convergence")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="asctool-bench-") as tmp:
        tmp = Path(tmp)
        if wanted & {"pipeline", "fit"}:
            start = time.perf_counter()
            path = write_features(tmp / "bench.h5", args.clips, args.shape)
            print(f"wrote {args.clips} clips in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        if "pipeline" in wanted:
            results["pipeline"] = bench_pipeline(path, batch_size=args.batch_size)
        if "fit" in wanted:
            results["fit"] = bench_fit(path, model=args.model, width=args.width, batch_size=args.batch_size)
        if "memory" in wanted:
            results["memory"] = bench_memory(tmp, n=args.memory_clips, shape=args.shape, model=args.model,
                                             width=args.width, batch_size=args.batch_size)
    if "convergence" in wanted:
        results["convergence"] = run_convergence(args)
    table = render(results, args)
    if results.keys() - {"convergence"}:
        print(table)
    if "convergence" in results:
        print("\n" + results["convergence"]["table"])
    if results.keys() - {"convergence"}:
        print(json.dumps({k: v for k, v in results.items() if k != "convergence"}, indent=1, default=str),
              file=sys.stderr)
    if args.write_doc:
        command = "python benchmarks/train.py " + " ".join(a for a in (argv if argv is not None else sys.argv[1:])
                                                          if not a.startswith("--write-doc") and a != args.note
                                                          and a != "--note")
        write_doc(table, command.strip(), args.note)
    return results


if __name__ == "__main__":
    main()
