"""How well the training loop keeps an accelerator busy: FCNN training and prediction throughput.

For each batch size (default 32, 64, 128) and each of four settings (float32 or
``mixed_float16``; with or without XLA, ``jit_compile``), the FCNN of the paper
profile (width 1.0, SGD with momentum) trains on a temporary features file of
synthetic clips (128 x 423 x 3, float16, as the task 1a preset) through asctool's
own input pipeline (:func:`asctool.training.pipeline.train_dataset`: HDF5 reads,
crop to 400 frames, SpecAugment and mixup, prefetch 2). It reports:

- training samples/s over the timed steps (after warm-up steps that compile);
- the input wait: the share of each step's wall time spent waiting in
  ``next(iterator)`` for the pipeline to hand over the next batch, the rest being
  the training step itself (``model.train_on_batch``, which returns only when the
  device has finished). The goal on a GPU is under 5 % at batch 32;
- prediction clips/s of the trained model on full-length clips (423 frames),
  batches of 64, after a warm-up batch.

Without a GPU it runs a reduced version and says so in its output and JSON
(``"reduced": true``): width 0.25, batch sizes 8 and 16, 3 timed steps after 2
warm-up steps, 64 clips. The reduced figures describe this CPU, not an accelerator.

    python benchmarks/gpu.py                      # full on a GPU, reduced on a CPU
    python benchmarks/gpu.py --json out.json      # also the figures as JSON
    python benchmarks/gpu.py --reduced            # the reduced version anywhere
    python benchmarks/gpu.py --require-gpu --json gpu.json   # the GPU run: exit 1 if
                                                  # TensorFlow sees no GPU (no silent CPU run)

On a GPU machine the whole measurement is one command (docs/performance.md), e.g.
``python -m pip install -e . "tensorflow[and-cuda]" && python benchmarks/gpu.py
--require-gpu --json gpu.json``.

Each setting runs in its own subprocess (the mixed-precision policy is global to
a process), stopped after ``--setting-timeout`` seconds (default 900 for the full
version, 3600 for the reduced one, whose float16 steps are slow on a CPU): a setting
that hangs fails the benchmark with its name instead of holding the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

FULL = {"width": 1.0, "batches": [32, 64, 128], "warmup": 3, "steps": 20, "clips": 512}
REDUCED = {"width": 0.25, "batches": [8, 16], "warmup": 2, "steps": 3, "clips": 64}
SETTINGS = [("float32", False), ("float32", True), ("mixed_float16", False), ("mixed_float16", True)]
SHAPE = (128, 423, 3)


def measure(features: Path, *, batch: int, precision: str, xla: bool, width: float, warmup: int,
            steps: int) -> dict:
    """Train and predict in this process with one setting; the figures as a dict."""
    import keras
    import tensorflow as tf

    from asctool.models import build
    from asctool.training.batch_augment import parse_augment
    from asctool.training.data import make_clip_set, read_sources
    from asctool.training.pipeline import train_dataset

    keras.mixed_precision.set_global_policy(precision)
    sources = read_sources([features], "training")
    scenes = sorted({str(s) for source in sources for s in source.scenes})   # the synthetic file's classes
    clips, classes = make_clip_set(sources, None, None, labels_name="scene", known=scenes)
    aug = parse_augment("auto", None, clips.feature_shape)   # crop 400, SpecAugment, mixup: the paper's
    keras.utils.set_random_seed(0)
    model = build("fcnn", len(classes), (SHAPE[0], None, SHAPE[2]), width=width)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="categorical_crossentropy",
                  jit_compile=xla)
    total = warmup + steps
    epochs = -(-total * batch // len(clips))
    data = train_dataset(clips, batch_size=batch, seed=0, first_epoch=0, epochs=epochs, augment=aug,
                         num_classes=len(classes))
    iterator = iter(data)
    wait = work = 0.0
    for step in range(total):
        start = time.perf_counter()
        x, y = next(iterator)
        got = time.perf_counter()
        model.train_on_batch(x, y)   # returns the loss as a NumPy value: the step has finished
        done = time.perf_counter()
        if step >= warmup:
            wait += got - start
            work += done - got
    # prediction: full-length clips, batches of 64
    rng = np.random.default_rng(0)
    clips_x = rng.random((64, *SHAPE), dtype=np.float32)
    model.predict_on_batch(clips_x)
    start = time.perf_counter()
    repeats = 3
    for _ in range(repeats):
        model.predict_on_batch(clips_x)
    predict_s = time.perf_counter() - start
    return {
        "batch": batch, "precision": precision, "xla": xla,
        "device": "GPU" if tf.config.list_logical_devices("GPU") else "CPU",
        "samples_per_s": round(steps * batch / (wait + work), 2),
        "step_ms": round(1000 * (wait + work) / steps, 1),
        "input_wait_pct": round(100 * wait / (wait + work), 2),
        "predict_clips_per_s": round(repeats * 64 / predict_s, 2),
    }


def _child(args) -> None:
    result = measure(Path(args.features), batch=args.batch, precision=args.precision, xla=args.xla,
                     width=args.width, warmup=args.warmup, steps=args.steps)
    print(json.dumps(result))


def _has_gpu() -> bool:
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return out.returncode == 0 and out.stdout.strip().splitlines()[-1:] != ["0"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reduced", action="store_true", help="the reduced version even on a GPU")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--require-gpu", action="store_true",
                        help="exit 1 when TensorFlow sees no GPU instead of running the reduced CPU version")
    parser.add_argument("--setting-timeout", type=float, default=None,
                        help="seconds one setting (one subprocess) may take (default 900; reduced: 3600)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--features", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--xla", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--width", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return {}

    from train import write_features   # benchmarks/train.py

    gpu = _has_gpu()
    if args.require_gpu and not gpu:
        raise SystemExit("benchmarks/gpu.py: --require-gpu: TensorFlow sees no GPU (is the CUDA build installed? "
                         "pip install \"tensorflow[and-cuda]\"; see docs/performance.md)")
    reduced = args.reduced or not gpu
    plan = REDUCED if reduced else FULL
    setting_timeout = args.setting_timeout or (3600.0 if reduced else 900.0)
    if reduced:
        print(f"REDUCED version ({'no GPU found' if not gpu else '--reduced'}): FCNN width {plan['width']}, "
              f"batches {plan['batches']}, {plan['steps']} timed steps; figures of this machine's CPU, "
              "not of an accelerator", file=sys.stderr)
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        features = write_features(Path(tmp) / "train.h5", plan["clips"], SHAPE)
        for batch in plan["batches"]:
            for precision, xla in SETTINGS:
                cmd = [sys.executable, __file__, "--child", "--features", str(features), "--batch", str(batch),
                       "--precision", precision, "--width", str(plan["width"]), "--warmup", str(plan["warmup"]),
                       "--steps", str(plan["steps"])] + (["--xla"] if xla else [])
                try:
                    out = subprocess.run(cmd, capture_output=True, text=True, timeout=setting_timeout,
                                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)})
                except subprocess.TimeoutExpired:
                    raise SystemExit(f"benchmarks/gpu.py: batch {batch} {precision} xla={xla} took over "
                                     f"{setting_timeout:g} s (--setting-timeout)") from None
                if out.returncode != 0:
                    raise SystemExit(f"benchmarks/gpu.py: batch {batch} {precision} xla={xla} failed:\n"
                                     + out.stderr[-2000:])
                row = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(f"batch {batch:4d} {precision:14s} xla {str(xla):5s} {row['device']}: "
                      f"{row['samples_per_s']:8.1f} samples/s, step {row['step_ms']:8.1f} ms, input wait "
                      f"{row['input_wait_pct']:5.1f} %, predict {row['predict_clips_per_s']:7.1f} clips/s",
                      flush=True)
    total_s = round(time.perf_counter() - started, 1)
    print(f"{len(rows)} settings in {total_s} s ({'reduced, CPU' if reduced else 'full'})", file=sys.stderr)
    result = {"reduced": reduced, "gpu": gpu, "plan": plan, "shape": list(SHAPE), "rows": rows, "total_s": total_s}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
