"""Benchmark ``asctool embed``: clips per second per extractor, and against the bare model loop.

Writes ``--clips`` synthetic clips of 10 s at 44.1 kHz (so every clip is
resampled to the extractors' 48 kHz), then for each extractor:

- runs the stage (``asctool.stages.embed.run``) with each ``--nj``: clips/s
  end to end (audio reading, soxr resampling, windowing, the model, the HDF5
  writes, and the model loading of each process);
- times the bare model over the same windows, cut beforehand, ``--batch-size``
  at a time (``model.predict_on_batch`` for OpenL3, ``set_tensor``/``invoke``/
  ``get_tensor`` for BirdNET) in this process, and its model loading;
- prints the ratio bare seconds / stage seconds at ``--nj 1`` (the target:
  >= 0.9, the stage no slower than calling the model itself), end to end and
  with the one model load the stage does taken out (TensorFlow is imported
  before any timing), and the same ratios of CPU
  seconds (the steadier figure on a shared machine; the stage's CPU includes
  reading, resampling, windowing, writing and the model load).

OpenL3 runs on a weight file in the official layout filled with random values
(its speed does not depend on them; no download). Usage::

    python benchmarks/embed.py [--clips 20] [--openl3-clips 3] [--openl3-hop 0.1] [--nj 1 2]
                               [--extractors birdnet,openl3] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SR, SECONDS = 44100, 10.0
log = logging.getLogger("benchmarks.embed")


def make_clips(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` clips of 10 s at 44.1 kHz (brown-ish noise and a wandering tone), and their manifest."""
    from scipy.signal import lfilter

    from asctool.audio import write_audio
    from asctool.manifest import Clip, write_manifest

    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * SECONDS)) / SR
    clips = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        y = lfilter([1.0], [1.0, -0.97], rng.standard_normal(t.size)) * 0.01
        y += 0.05 * np.sin(2 * np.pi * rng.uniform(200, 2000) * t + np.sin(2 * np.pi * 0.2 * t))
        write_audio(folder / f"c{i}.wav", y.astype(np.float32)[None], SR)
        clips.append(Clip(id=f"c{i}", path=f"c{i}.wav", scene="park", device="a", location=f"l{i}"))
    return write_manifest(folder / "m.tsv", clips)


def weight_file(path: Path) -> Path:
    """A random OpenL3 mel256 weight file in the official Keras 2 layout (see tests/test_embeddings_openl3.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_embeddings_openl3 import write_weight_file

    write_weight_file(path, seed=0)
    return path


def bare_loop(extractor, windows: np.ndarray, batch: int) -> tuple[float, float, float]:
    """(load seconds, load CPU seconds, model seconds, model CPU seconds) of the bare model over ``windows``."""
    started, cpu_started = time.perf_counter(), time.process_time()
    extractor.load()
    loaded, loaded_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if extractor.name == "openl3":
        model = extractor._model
        call = model.predict_on_batch
    else:  # the interpreter itself: resize once per batch shape, set, invoke, read the embedding tensor
        runner = extractor._model.runner
        interpreter, index = runner.interpreter, runner.indices[0]
        shape = [None]

        def call(x):
            if shape[0] != x.shape:
                interpreter.resize_tensor_input(runner.input["index"], list(x.shape))
                interpreter.allocate_tensors()
                shape[0] = x.shape
            interpreter.set_tensor(runner.input["index"], x)
            interpreter.invoke()
            return interpreter.get_tensor(index)
    # no untimed warm-up: the first call (graph tracing, the delegate's allocation) is
    # part of the loop, as it is part of the stage's run
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(0, len(windows), batch):
        call(windows[i:i + batch])
    return loaded, loaded_cpu, time.perf_counter() - started, time.process_time() - cpu_started


def windows_of(manifest: Path, extractor) -> np.ndarray:
    """Every window of every clip, as the stage cuts them (soxr to 48 kHz, mono)."""
    import soundfile as sf
    import soxr

    from asctool.embeddings.windows import cut_windows, window_starts
    from asctool.manifest import read_manifest

    m = read_manifest(manifest)
    out = []
    for clip in m.clips:
        y, sr = sf.read(m.audio_path(clip), dtype="float32")
        y = soxr.resample(y, sr, extractor.sample_rate, quality="HQ").astype(np.float32)
        starts = window_starts(len(y), sr=extractor.sample_rate, window=extractor.window, hop=extractor.hop,
                               center=extractor.center, min_tail=extractor.min_tail)
        out.append(cut_windows(y, starts, sr=extractor.sample_rate, window=extractor.window, center=extractor.center))
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--clips", type=int, default=20, help="10 s clips for birdnet")
    parser.add_argument("--openl3-clips", type=int, default=3, help="10 s clips for openl3 (96 windows each)")
    parser.add_argument("--openl3-hop", type=float, default=0.1, help="openl3 hop in seconds (0.1: 96 windows per clip)")
    parser.add_argument("--nj", type=int, nargs="+", default=[1, 2], help="worker counts to measure")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--extractors", default="birdnet,openl3")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("asctool").setLevel(logging.WARNING)

    import tensorflow  # noqa: F401  (imported once, before any timing: the bare loop finds it imported too)

    from asctool.embeddings import make_extractor
    from asctool.stages.embed import run as embed

    rows = []
    with tempfile.TemporaryDirectory(prefix="asctool-bench-embed-") as tmp:
        tmp = Path(tmp)
        for name in args.extractors.split(","):
            n = args.openl3_clips if name == "openl3" else args.clips
            manifest = make_clips(tmp / f"clips-{name}", n)
            options = {"weights": str(weight_file(tmp / "openl3_audio_mel256_music-v0_4_0.h5")),
                       "embedding_size": 512, "hop": args.openl3_hop} if name == "openl3" else {}
            stage = {}
            for nj in args.nj:
                summary = embed(manifest, tmp / f"{name}-{nj}.h5", extractor=name, options=options, nj=nj,
                                batch_size=args.batch_size)
                stage[nj] = summary
                log.info("%s --nj %d: %d clips x %d windows in %.2f s (%.2f clips/s)", name, nj, n,
                         summary["windows"], summary["seconds"], summary["clips_per_second"])
            ex = make_extractor(name, options)
            windows = windows_of(manifest, ex)
            load, load_cpu, bare, bare_cpu = bare_loop(ex, windows, args.batch_size)
            first = stage[min(args.nj)]["seconds"]
            first_cpu = stage[min(args.nj)]["cpu_seconds"]
            row = {"extractor": name, "clips": n, "windows_per_clip": stage[min(args.nj)]["windows"],
                   "bare_windows_per_s": round(len(windows) / bare, 2),
                   **{f"clips_per_s_nj{nj}": s["clips_per_second"] for nj, s in stage.items()},
                   **{f"seconds_nj{nj}": s["seconds"] for nj, s in stage.items()},
                   **{f"cpu_seconds_nj{nj}": s["cpu_seconds"] for nj, s in stage.items()},
                   "bare_cpu_seconds": round(bare_cpu, 3),
                   "bare_seconds": round(bare, 3), "load_seconds": round(load, 3),
                   "ratio": round(bare / first, 3), "ratio_without_load": round(bare / max(1e-9, first - load), 3),
                   "cpu_ratio": round(bare_cpu / max(1e-9, first_cpu), 3),
                   "cpu_ratio_without_load": round(bare_cpu / max(1e-9, first_cpu - load_cpu), 3)}
            log.info("%s: bare loop %.2f s (+ %.2f s load): ratio %.2f (%.2f without the load)", name, bare, load,
                     row["ratio"], row["ratio_without_load"])
            rows.append(row)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
