"""Benchmark the memory of ``asctool train --model mlp``: peak resident set size (RSS) of the training process.

Writes a synthetic embeddings file (``--clips`` clips of ``--frames`` frames of
``--dim`` values, float32, learnable: class k adds 1.5 to dimension k), then runs
``asctool train --model mlp --epochs E`` on it in a child process and reports
the child's peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss``), its CPU time,
wall time and the run's best validation accuracy. The frames alone take
``clips x frames x dim x 4`` bytes; TensorFlow's own footprint (about 0.5 to
1 GB) is the floor. Compare two trees with ``--pythonpath``:

    nice -n 15 python benchmarks/mlp_memory.py --pythonpath OLD_TREE --json before.json
    nice -n 15 python benchmarks/mlp_memory.py --json after.json

(TAU 2020 fold 1 with OpenL3 512-d every 0.1 s: 13,965 training clips x 100
frames x 512 x 4 bytes = 2.7 GiB of frames; the default here is 2,000 clips, 391 MiB.)
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("airport", "bus", "metro", "park", "street_traffic")   # DCASE scene names


def write_embeddings(path: Path, clips: int, frames: int, dim: int, seed: int = 0) -> None:
    """A learnable embeddings file in the layout ``asctool embed`` writes, built block by block."""
    import h5py

    from asctool import artifacts

    rng = np.random.default_rng(seed)
    scenes = [CLASSES[i % len(CLASSES)] for i in range(clips)]
    with h5py.File(path, "w") as handle:
        for key, value in artifacts.provenance_attrs(artifacts.KIND_EMBEDDINGS).items():
            handle.attrs[key] = value
        handle.attrs["extractor"] = json.dumps({"name": "synthetic", "dim": dim})
        data = handle.create_dataset("embeddings", (clips, frames, dim), dtype="float32", chunks=(1, frames, dim))
        for start in range(0, clips, 256):
            stop = min(start + 256, clips)
            block = rng.normal(0.0, 1.0, (stop - start, frames, dim)).astype(np.float32)
            for i in range(start, stop):
                block[i - start, :, CLASSES.index(scenes[i])] += 1.5
            data[start:stop] = block
        handle.create_dataset("window_times", data=np.arange(frames) * 0.1)
        string = h5py.string_dtype("utf-8")
        for name, column in (("id", [f"{s}-city{i % 7}-{i}-a" for i, s in enumerate(scenes)]), ("scene", scenes),
                             ("device", ["a"] * clips), ("location", [f"{s}-city{i % 7}" for i, s in enumerate(scenes)])):
            handle.create_dataset(name, data=np.array(column, dtype=object), dtype=string)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pythonpath", default=str(REPO), help="the tree whose asctool is measured")
    parser.add_argument("--json", default=None, help="write the figures here too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlp_memory_") as work:
        work = Path(work)
        emb = work / "emb.h5"
        write_embeddings(emb, args.clips, args.frames, args.dim)
        code = ("import sys, asctool; print(asctool.__file__, file=sys.stderr); from asctool.cli import main; "
                "sys.argv[0] = 'asctool'; main()")
        cmd = [sys.executable, "-c", code, "-q", "train", "--train", str(emb), "--model", "mlp", "--out-dir",
               str(work / "run"), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--seed", "0"]
        env = {**os.environ, "PYTHONPATH": args.pythonpath, "TF_CPP_MIN_LOG_LEVEL": "2"}
        started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        # cwd: `python -c` puts the working directory before PYTHONPATH on sys.path
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=work)
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode:
            sys.stderr.write(done.stderr[-3000:])
            return done.returncode
        state = json.loads((work / "run" / "state.json").read_text())
        result = {
            "tree": args.pythonpath, "asctool": done.stderr.splitlines()[0], "clips": args.clips, "frames": args.frames, "dim": args.dim,
            "epochs": args.epochs, "frames_bytes": args.clips * args.frames * args.dim * 4,
            "peak_rss_bytes": usage.ru_maxrss * 1024,   # Linux: kilobytes
            "cpu_s": round((usage.ru_utime - before.ru_utime) + (usage.ru_stime - before.ru_stime), 1),
            "wall_s": round(wall, 1), "load_average": os.getloadavg()[0],
            "best_val_accuracy": state["best_val_accuracy"],
        }
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
