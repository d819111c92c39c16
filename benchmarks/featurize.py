"""Benchmark ``asctool featurize`` against a reference-style per-file librosa loop.

Generates N seeded 10 s, 44.1 kHz, 24-bit mono WAV clips in a temporary
folder, then measures in the same run:

- the reference loop, the way the DCASE 2020 reference code computes its
  features: ``librosa.load`` + ``librosa.feature.melspectrogram`` + log +
  min-max + numpy deltas, one file after the other;
- ``featurize`` (read WAV + features + write float16 HDF5, end to end,
  including starting the worker processes) at each ``--nj``;

and checks that the numbers agree (float16 storage: within one float16 step;
the float32 path: within 1e-5 of the reference).

Usage::

    python benchmarks/featurize.py                 # quick: 200 clips, --nj 1 and 2
    python benchmarks/featurize.py --clips 1000 --nj 1 2 4 --repeat 3
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main", "make_clips", "reference_features"]

log = logging.getLogger("benchmarks.featurize")

SR = 44100
DURATION = 10.0


def make_clips(folder: Path, n: int, *, seed: int = 0, duration: float = DURATION) -> Path:
    """Write ``n`` seeded 24-bit mono WAV clips and a manifest; return the manifest path."""
    import numpy as np

    from asctool.audio import write_audio
    from asctool.manifest import Clip, write_manifest

    rng = np.random.default_rng(seed)
    length = int(round(duration * SR))
    t = (np.arange(length) / SR).astype(np.float32)
    clips = []
    folder.mkdir(parents=True, exist_ok=True)
    from scipy.signal import lfilter

    for i in range(n):
        # brown-ish noise + white noise + two tones under a slow envelope: a spectrum with structure
        white = rng.standard_normal(length).astype(np.float32)
        brown = lfilter([0.05], [1.0, -0.99], white).astype(np.float32)
        tones = sum(rng.uniform(0.02, 0.1) * np.sin(2 * np.pi * rng.uniform(80, 8000) * t, dtype=np.float32)
                    for _ in range(2))
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * t, dtype=np.float32)
        y = (0.02 * white + brown + tones) * envelope
        y = (0.5 * y / max(1e-9, float(np.abs(y).max()))).astype(np.float32)
        stem = f"bench-city-{i // 10}-{i}-a"
        write_audio(folder / f"{stem}.wav", y[None], SR, subtype="PCM_24")
        clips.append(Clip(id=stem, path=f"{stem}.wav", scene="bench", device="a", city="city",
                          location=f"bench-city-{i // 10}"))
    return write_manifest(folder / "manifest.tsv", clips)


def reference_features(path: str | os.PathLike):
    """Features of one file computed the reference code's way (librosa + numpy deltas)."""
    import librosa
    import numpy as np

    y, sr = librosa.load(path, sr=None, mono=True)
    mel = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=2048, hop_length=1024, win_length=2048, window="hann", center=True,
        pad_mode="reflect", power=2.0, n_mels=128, fmin=0.0, fmax=sr / 2, htk=True, norm=None,
    )
    logmel = np.log(mel + 1e-8)
    logmel = (logmel - logmel.min()) / (logmel.max() - logmel.min())
    delta = (logmel[:, 3:-1] - logmel[:, 1:-3]) / 10 + (logmel[:, 4:] - logmel[:, :-4]) / 5
    delta2 = (delta[:, 3:-1] - delta[:, 1:-3]) / 10 + (delta[:, 4:] - delta[:, :-4]) / 5
    return np.stack([logmel[:, 4:-4], delta[:, 2:-2], delta2], axis=-1)


def _best_of(repeat: int, run, before=None):
    """(wall seconds, CPU seconds of this process, result) of the fastest of ``repeat`` runs;
    ``before()`` runs untimed before each."""
    best = None
    for _ in range(repeat):
        if before is not None:
            before()
        started, cpu_started = time.perf_counter(), time.process_time()
        result = run()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        if best is None or seconds < best[0]:
            best = (seconds, cpu, result)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--clips", type=int, default=200, help="number of 10 s clips")
    parser.add_argument("--nj", type=int, nargs="+", default=[1, 2], help="worker counts to measure")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (best is shown)")
    parser.add_argument("--reference-clips", type=int, default=None,
                        help="clips for the reference loop (default: all)")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the clips (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("asctool").setLevel(logging.WARNING)

    import numpy as np

    from asctool.artifacts import open_features
    from asctool.stages.featurize import run as featurize

    with tempfile.TemporaryDirectory(prefix="asctool-bench-") as tmp:
        work = args.workdir or Path(tmp)
        started = time.perf_counter()
        manifest = work / "clips" / "manifest.tsv"
        if args.workdir is not None and manifest.exists() and len(list((work / "clips").glob("*.wav"))) == args.clips:
            log.info("reusing the %d clips in %s", args.clips, work / "clips")
        else:
            manifest = make_clips(work / "clips", args.clips, seed=args.seed)
            log.info("generated %d clips in %.1f s", args.clips, time.perf_counter() - started)
        paths = sorted((work / "clips").glob("*.wav"))
        by_id = {p.stem: p for p in paths}
        n_ref = min(args.clips, args.reference_clips or args.clips)

        ref_ids = [p.stem for p in paths[:n_ref]]

        def reference_loop():
            out = np.empty((n_ref, 128, 423, 3), dtype=np.float16)
            for i, clip_id in enumerate(ref_ids):
                out[i] = reference_features(by_id[clip_id])
            return out

        reference_features(paths[0])  # import librosa and warm its caches outside the timing
        ref_seconds, ref_cpu, reference = _best_of(args.repeat, reference_loop)
        rows = [("reference loop (librosa, serial)", 1, n_ref, ref_seconds, ref_cpu, None)]

        diffs = {}
        for nj in args.nj:
            out = work / f"feats_nj{nj}.h5"
            # the previous run's output is deleted untimed (unlinking 200+ MB takes a good 0.1 s)
            seconds, _, summary = _best_of(args.repeat, lambda: featurize(manifest, out, nj=nj),
                                           before=lambda: out.unlink(missing_ok=True))
            with open_features(out) as f:
                index = {str(i): k for k, i in enumerate(f.ids)}
                ours = np.stack([f.features[index[i]] for i in ref_ids])
            diffs[nj] = float(np.abs(ours.astype(np.float32) - reference.astype(np.float32)).max())
            rows.append(("asctool featurize, float16 out", nj, args.clips, seconds, summary["cpu_seconds"],
                         diffs[nj]))

        # the float32 path against the reference computed in float32 (first clips only)
        check = ref_ids[: min(10, n_ref)]
        out32 = work / "feats_f32.h5"
        featurize(manifest, out32, dtype="float32", nj=1, force=True)
        with open_features(out32) as f:
            index = {str(i): k for k, i in enumerate(f.ids)}
            diff32 = max(float(np.abs(f.features[index[i]] - reference_features(by_id[i])).max()) for i in check)

    header = (f"{'method':34s} {'nj':>3s} {'clips':>6s} {'seconds':>8s} {'clips/s':>8s} {'speed-up':>8s} "
              f"{'CPU ms/clip':>11s} {'max|diff|':>10s}")
    print(f"featurize: {args.clips} clips of {DURATION:g} s, 44.1 kHz 24-bit mono WAV, preset 1a -> (128, 423, 3); "
          f"{os.cpu_count()} CPUs")
    print(header)
    print("-" * len(header))
    for name, nj, clips, seconds, cpu, diff in rows:
        rate = clips / seconds
        speed = rate / (n_ref / ref_seconds)
        shown = "-" if diff is None else f"{diff:.1e}"
        print(f"{name:34s} {nj:3d} {clips:6d} {seconds:8.2f} {rate:8.1f} {speed:7.2f}x {1e3 * cpu / clips:11.2f} "
              f"{shown:>10s}")
    print(f"float32 path vs reference (first {len(check)} clips): max |diff| = {diff32:.1e}")
    print("seconds: wall time end to end (read WAV, features, write HDF5; worker start-up included). "
          "CPU ms/clip: this process + work in the workers (their start-up excluded); "
          "with a quiet machine, clips/s at --nj N approaches N * 1000 / (CPU ms/clip).")
    ok = diff32 <= 1e-5 and all(d <= 2e-3 for d in diffs.values())
    print("numbers agree" if ok else "NUMBERS DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
