"""Benchmark the training input pipeline and trainer.

Three measurements, each on a temporary features file of synthetic clips
(default 128 x 423 x 3, float16, like the task 1a preset):

a. the input pipeline alone (HDF5 reads, SpecAugment, crop, mixup; channel
   swap too for 6-channel input): training samples per second;
b. one epoch of a model through the pipeline against the same model fitted
   with plain ``model.fit`` on in-memory arrays of the cropped size, in the
   same process, after a warm-up epoch each: the throughput ratio;
c. peak resident memory (``ru_maxrss``) of ``asctool train`` on N and on 4N
   clips, each in its own subprocess: the growth.

Run ``python benchmarks/train.py --help``; ``main()`` is importable. Prints a
table and, with ``--write-doc``, replaces the "Training" section of
docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "performance.md"


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
    parser.add_argument("--model", default="fcnn")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--memory-clips", type=int, default=64, help="N of (c)")
    parser.add_argument("--only", default="pipeline,fit,memory", help="comma-separated subset")
    parser.add_argument("--write-doc", action="store_true", help="update docs/performance.md")
    parser.add_argument("--note", default="", help="a sentence on the machine, for the doc")
    parser.add_argument("--child-train", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmarks; returns the results and prints a table."""
    args = parse_args(argv)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.child_train:
        _child_train(args.child_train, args.child_out, args.model, args.width, args.batch_size)
        return {}
    wanted = set(args.only.split(","))
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
    table = render(results, args)
    print(table)
    print(json.dumps(results, indent=1, default=str), file=sys.stderr)
    if args.write_doc:
        command = "python benchmarks/train.py " + " ".join(a for a in (argv if argv is not None else sys.argv[1:])
                                                          if not a.startswith("--write-doc") and a != args.note
                                                          and a != "--note")
        write_doc(table, command.strip(), args.note)
    return results


if __name__ == "__main__":
    main()
