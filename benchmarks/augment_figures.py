"""Regenerate the before/after spectrograms of docs/augment.md (docs/img/augment_*.png).

Usage (from the repository root, with the shared real data beside the checkout)::

    python benchmarks/augment_figures.py --recording ../shared/data/recordings/acoustic_scene.wav \\
        --partner ../shared/data/recordings/tut2018/park.wav \\
        --rir ../shared/data/rirs/mardy/ir_3_C_1.wav --out-dir docs/img

Each figure shows the log-mel spectrogram (first channel, 128 bands, dB) of the
recording before and after one method, with fixed parameters named in the
title. Images are 600x300 px, palette PNGs.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np


def logmel(y: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=1024, n_mels=96, htk=True)
    return 10 * np.log10(mel + 1e-10)


def save_figure(path: Path, sr: int, before: np.ndarray, after: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    a, b = logmel(before, sr), logmel(after, sr)
    vmax = max(a.max(), b.max())
    fig, axes = plt.subplots(1, 2, figsize=(6, 3), dpi=100, sharey=True)
    extent = (0, before.shape[-1] / sr, 0, a.shape[0])
    for ax, spec, name in zip(axes, (a, b), ("before", "after")):
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=vmax - 80, vmax=vmax, extent=extent,
                  interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("mel band", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    buffer.seek(0)
    Image.open(buffer).convert("RGB").quantize(colors=64).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recording", type=Path, required=True, help="the clip to augment (first channel used)")
    parser.add_argument("--partner", type=Path, required=True, help="a second recording for mix")
    parser.add_argument("--rir", type=Path, required=True, help="a measured impulse response for reverb")
    parser.add_argument("--out-dir", type=Path, default=Path("docs/img"))
    args = parser.parse_args(argv)

    from scipy.signal import butter, sosfilt

    from asctool.audio import read_audio, resample
    from asctool.augment.basic import add_noise, mix_clips, pitch_shift, time_stretch_to_length
    from asctool.augment.drc import CURVES, compress
    from asctool.augment.registry import clip_rng
    from asctool.augment.reverb import convolve_aligned, prepare_rir
    from asctool.augment.spectrum import apply_response, pair_ratio_sum

    y, sr = read_audio(args.recording)
    y = y[:1]
    partner, sr2 = read_audio(args.partner)
    partner = resample(partner[:1], sr2, sr)
    h, sr_h = read_audio(args.rir)
    rir = prepare_rir(h, sr_h, sr, source=str(args.rir))
    # a stand-in target device for spectrum correction: band-limited 300 Hz - 5 kHz
    device = sosfilt(butter(2, [300, 5000], btype="band", fs=sr, output="sos"), y[0])
    total, frames = pair_ratio_sum(y[0].astype(np.float64), device, n_fft=2048, hop_length=1024)
    wet = convolve_aligned(y, rir)
    figures = {
        "pitch": (pitch_shift(y, sr, 4.0), "pitch: n_steps = +4 semitones"),
        "speed": (time_stretch_to_length(y, 1.6), "speed: rate 1.6, repeated to 10 s"),
        "noise": (add_noise(y, clip_rng(0, "noise", "figure").normal(0, 0.01, y.shape)), "noise: std 0.01"),
        "mix": (mix_clips(y, partner, 0.75, 0.75), "mix: 0.75 y + 0.75 y2 (another recording)"),
        "spectrum-correction": (apply_response(y, total / frames, n_fft=2048, hop_length=1024),
                                "spectrum-correction: response of a band-limited stand-in device"),
        "reverb": (wet, f"reverb: measured IR {args.rir.name}"),
        "reverb-drc": (compress(wet, sr, points=CURVES["-60,-40"], makeup_db=3.0),
                       "reverb-drc: same IR, curve -60,-40, make-up 3 dB"),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, (after, title) in figures.items():
        peak = np.abs(after).max()
        after = after * (0.99 / peak) if peak > 1 else after
        path = args.out_dir / f"augment_{name.replace('-', '_')}.png"
        save_figure(path, sr, y[0], after[0], title)
        print(f"{path} {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
