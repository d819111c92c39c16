"""Benchmark ``asctool augment``: clips per second for every method.

Writes a small synthetic TAU-named corpus (default 20 clips of 10 s at
44.1 kHz, device a, two scenes; plus parallel device b/s1 copies of a few
segments for spectrum-correction), runs each method with ``--nj`` workers and
prints a Markdown table: setup time (response estimate, IR loading or room
simulation), processing time, clips/s over the processing, and the
extrapolated time for the 10,215 device-a training clips of TAU 2020 Mobile
fold 1 (setup included: spectrum-correction scaled to 3,750 parallel pairs).

Usage::

    python benchmarks/augment.py [--clips 20] [--nj 2] [--rir-dir DIR] [--methods pitch,noise] [--json OUT]

Without ``--rir-dir`` the reverb methods use 4 simulated rooms.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

TAU_DEVICE_A_TRAIN = 10215
TAU_PAIRS = 3750  # fold-1 train: 750 clips each of b, c, s1, s2, s3 with a device-a parallel

log = logging.getLogger("benchmarks.augment")


def make_corpus(root: Path, n_clips: int, *, sr: int = 44100, duration: float = 10.0, n_parallel: int = 4,
                seed: int = 0) -> Path:
    """Write ``n_clips`` device-a clips (two scenes) and parallel b/s1 copies of ``n_parallel`` of them."""
    from scipy.signal import lfilter

    from asctool.audio import write_audio
    from asctool.manifest import Clip, write_manifest

    rng = np.random.default_rng(seed)
    n = int(sr * duration)
    clips = []
    (root / "audio").mkdir(parents=True, exist_ok=True)
    t = np.arange(n) / sr
    for k in range(n_clips):
        scene = ("park", "tram")[k % 2]
        stem = f"{scene}-bench-{k // 2}-{k}"
        y = lfilter([1.0], [1.0, -0.95], rng.standard_normal(n)) * 0.01
        y += 0.05 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t) * (1 + np.sin(2 * np.pi * 0.3 * t))
        versions = {"a": y}
        if k < n_parallel:
            versions["b"] = lfilter([0.5, 0.5], [1.0], y)
            versions["s1"] = 1.5 * lfilter([1.0, -0.7], [1.0], y)
        for device, audio in versions.items():
            write_audio(root / "audio" / f"{stem}-{device}.wav", audio.astype(np.float32)[None], sr)
            clips.append(Clip(id=f"{stem}-{device}", path=f"audio/{stem}-{device}.wav", scene=scene, device=device,
                              city="bench", location=f"{scene}-bench-{k // 2}"))
    return write_manifest(root / "train.tsv", clips)


def warm_up() -> None:
    """Import librosa and compile its numba kernels before timing (workers are forked
    from this process on Linux and inherit them): the figures are steady-state rates."""
    from asctool.augment.basic import pitch_shift, time_stretch_to_length
    from asctool.augment.spectrum import apply_response

    y = np.random.default_rng(0).standard_normal((1, 8192)).astype(np.float32) * 0.1
    pitch_shift(y, 16000, 1.0)
    time_stretch_to_length(y, 1.5)
    apply_response(y, np.ones(1025), n_fft=2048, hop_length=1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20, help="device-a clips to generate")
    parser.add_argument("--duration", type=float, default=10.0, help="clip duration in seconds")
    parser.add_argument("--sr", type=int, default=44100, help="sample rate in Hz")
    parser.add_argument("--nj", type=int, default=2, help="worker processes")
    parser.add_argument("--rir-dir", type=Path, default=None, help="measured IRs (default: 4 simulated rooms)")
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: all)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the corpus and outputs here")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    from asctool.augment import available
    from asctool.stages.augment import run

    methods = args.methods.split(",") if args.methods else available()
    warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        manifest = make_corpus(work / "corpus", args.clips, sr=args.sr, duration=args.duration)
        exclude = work / "none.tsv"
        exclude.write_text("id\tpath\tlocation\nnone\tnone.wav\tnowhere-none-0\n")
        results = []
        for method in methods:
            options = {}
            if method in ("reverb", "reverb-drc"):
                options = {"rir_dir": args.rir_dir} if args.rir_dir else {"simulate_rooms": 4}
            summary = run(method, manifest, out_dir=work / "out" / method, out_manifest=work / "out" / f"{method}.tsv",
                          devices="a", nj=args.nj, seed=0, exclude_locations=exclude, **options)
            rate = summary["written"] / max(summary["processing_s"], 1e-9)
            setup_note = ""
            tau_setup_s = 0.0
            if method == "spectrum-correction":
                pairs = sum(summary["n_pairs"].values())
                tau_setup_s = summary["setup_s"] / pairs * TAU_PAIRS
                setup_note = f"{pairs} pairs"
            elif method in ("reverb", "reverb-drc"):
                tau_setup_s = summary["setup_s"]
                setup_note = f"{summary['impulse_responses']} IRs" + ("" if args.rir_dir else " simulated")
            results.append({"method": method, "clips": summary["written"], "setup_s": summary["setup_s"],
                            "setup": setup_note, "processing_s": summary["processing_s"],
                            "clips_per_s": round(rate, 2),
                            "tau_device_a_hours": round((tau_setup_s + TAU_DEVICE_A_TRAIN / rate) / 3600, 2)})
    print(f"| method | clips | setup s | processing s | clips/s (nj={args.nj}) | 10,215 device-a clips |")
    print("|---|---|---|---|---|---|")
    for r in results:
        setup = f"{r['setup_s']} ({r['setup']})" if r["setup"] else f"{r['setup_s']}"
        print(f"| {r['method']} | {r['clips']} | {setup} | {r['processing_s']} | {r['clips_per_s']} "
              f"| {r['tau_device_a_hours']} h |")
    if args.json:
        args.json.write_text(json.dumps({"nj": args.nj, "sr": args.sr, "duration": args.duration,
                                         "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
