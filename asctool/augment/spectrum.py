"""Spectrum correction: a device response estimated from parallel recordings.

For every segment recorded on the reference device (``a``) and on a target
device, the per-bin magnitude ratio ``|X_target| / |X_ref|`` is averaged over
all frames of all pairs of all target devices (docs/reference.md 5; the reference
code's counter reset kept only the last device, docs/reference.md 7.5). The gain is
applied to the STFT magnitude of reference-device clips, phase kept.
"""
from __future__ import annotations

import io
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io import atomic_path
from ..audio import read_audio
from ..errors import AudioError, ManifestError
from .registry import ClipContext, Plan, register

__all__ = [
    "magnitude",
    "pair_ratio_sum",
    "apply_response",
    "ResponseEstimate",
    "estimate_response",
    "write_response",
    "read_response",
    "spectrum_correction",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------
def magnitude(y: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """STFT magnitude of a mono signal.

    Parameters
    ----------
    y : np.ndarray [shape=(samples,)]
    n_fft, hop_length : in samples (periodic Hann window of n_fft, centred)

    Returns
    -------
    np.ndarray [shape=(1 + n_fft // 2, n_frames)]
    """
    import librosa

    return np.abs(librosa.stft(np.asarray(y, dtype=np.float64), n_fft=n_fft, hop_length=hop_length))


def pair_ratio_sum(ref: np.ndarray, target: np.ndarray, *, n_fft: int, hop_length: int,
                   eps: float = 1e-8) -> tuple[np.ndarray, int]:
    """Sum over frames of ``(|X_target| + eps) / (|X_ref| + eps)`` for one pair.

    Parameters
    ----------
    ref, target : np.ndarray [shape=(samples,)], mono, same sample rate; the
        longer one is cut to the shorter
    n_fft, hop_length : STFT sizes in samples
    eps : added to both magnitudes (full scale 1.0) so silent bins stay finite

    Returns
    -------
    ratio_sum : np.ndarray [shape=(1 + n_fft // 2,)], float64
    n_frames : number of frames summed
    """
    n = min(ref.shape[-1], target.shape[-1])
    a = magnitude(ref[:n], n_fft=n_fft, hop_length=hop_length)
    b = magnitude(target[:n], n_fft=n_fft, hop_length=hop_length)
    return ((b + eps) / (a + eps)).sum(axis=1), int(a.shape[1])


def apply_response(y: np.ndarray, response: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """Multiply the STFT magnitude of ``y`` by ``response`` (phase kept), iSTFT.

    Parameters
    ----------
    y : np.ndarray [shape=(channels, samples)]
    response : np.ndarray [shape=(1 + n_fft // 2,)], per-bin gain
    n_fft, hop_length : STFT sizes in samples (must match the estimate)

    Returns
    -------
    np.ndarray [shape=(channels, samples)], same dtype as ``y``
    """
    import librosa

    if response.shape != (1 + n_fft // 2,):
        raise ValueError(f"response has shape {response.shape}, expected ({1 + n_fft // 2},)")
    spec = librosa.stft(np.asarray(y, dtype=np.float64), n_fft=n_fft, hop_length=hop_length)
    spec *= response[:, None]
    out = librosa.istft(spec, hop_length=hop_length, n_fft=n_fft, length=y.shape[-1])
    return out.astype(y.dtype, copy=False)


# --------------------------------------------------------------------------
# estimation over a manifest
# --------------------------------------------------------------------------
@dataclass
class ResponseEstimate:
    """Per-bin device response estimated from parallel recordings.

    Attributes
    ----------
    sr, n_fft, hop_length : analysis settings
    reference : reference device (``a``)
    devices : target devices, in manifest order
    response : np.ndarray [shape=(n_bins,)], average over all pairs, frames, devices
    device_response : np.ndarray [shape=(n_devices, n_bins)], one average per device
    n_pairs, n_frames : np.ndarray [shape=(n_devices,)]
    """

    sr: int
    n_fft: int
    hop_length: int
    reference: str
    devices: list[str]
    response: np.ndarray
    device_response: np.ndarray
    n_pairs: np.ndarray
    n_frames: np.ndarray
    pairs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def freqs(self) -> np.ndarray:
        """Bin centre frequencies in Hz, shape (n_bins,)."""
        return np.arange(1 + self.n_fft // 2) * self.sr / self.n_fft

    def for_device(self, device: str) -> np.ndarray:
        """The response of one target device."""
        return self.device_response[self.devices.index(device)]


def _mono(path: str) -> tuple[np.ndarray, int]:
    y, sr = read_audio(Path(path), dtype="float64")
    return y.mean(axis=0), sr


def _pair_job(job: tuple[str, str, str, int, int, float]) -> tuple[np.ndarray, int, int, int]:
    ref_path, target_path, _device, n_fft, hop_length, eps = job
    a, sr_a = _mono(ref_path)
    b, sr_b = _mono(target_path)
    if sr_a != sr_b:
        raise AudioError(f"{target_path}: sample rate {sr_b} Hz differs from its parallel recording {ref_path} ({sr_a} Hz)")
    total, frames = pair_ratio_sum(a, b, n_fft=n_fft, hop_length=hop_length, eps=eps)
    return total, frames, sr_a, sr_b


def find_pairs(rows: Sequence, reference: str, targets: Sequence[str] | None = None
               ) -> list[tuple[object, object]]:
    """Parallel (reference row, target row) pairs: same segment, different device.

    ``rows`` need ``segment``, ``device`` and ``id`` attributes; rows without a
    segment or device are ignored. With several reference recordings of one
    segment, the first in manifest order is used.
    """
    by_segment: "OrderedDict[str, list]" = OrderedDict()
    for row in rows:
        if row.segment and row.device:
            by_segment.setdefault(row.segment, []).append(row)
    pairs = []
    for group in by_segment.values():
        refs = [r for r in group if r.device == reference]
        if not refs:
            continue
        for row in group:
            if row.device != reference and (targets is None or row.device in targets):
                pairs.append((refs[0], row))
    return pairs


def estimate_response(pairs: Sequence[tuple[object, object]], *, reference: str, n_fft: int,
                      hop_length: int, eps: float, nj: int = 1) -> ResponseEstimate:
    """Average ``|X_target| / |X_ref|`` over all pairs, frames and target devices.

    Pairs are processed in order (``nj`` worker processes, results summed in
    pair order, so the estimate does not depend on ``nj``); only two spectra
    are in memory per worker at a time.
    """
    from ..console import progress
    from ..parallel import WorkerPool

    devices: list[str] = []
    for _, target in pairs:
        if target.device not in devices:
            devices.append(target.device)
    n_bins = 1 + n_fft // 2
    sums = np.zeros((len(devices), n_bins))
    frames = np.zeros(len(devices), dtype=np.int64)
    counts = np.zeros(len(devices), dtype=np.int64)
    jobs = [(str(r.audio_path), str(t.audio_path), t.device, n_fft, hop_length, eps) for r, t in pairs]
    srs: set[int] = set()
    pool = WorkerPool(min(nj, max(1, len(jobs))), preload=[__name__], name="spectrum-correction")
    with pool, progress(len(jobs), "spectrum pairs") as advance:
        for (ref, target), (total, n_frames, sr, _) in zip(pairs, pool.imap(_pair_job, jobs)):
            k = devices.index(target.device)
            sums[k] += total
            frames[k] += n_frames
            counts[k] += 1
            srs.add(sr)
            advance()
    if len(srs) > 1:
        raise AudioError(f"parallel recordings come at several sample rates ({sorted(srs)}); resample them first")
    device_response = sums / np.maximum(frames, 1)[:, None]
    response = sums.sum(axis=0) / max(int(frames.sum()), 1)
    return ResponseEstimate(
        sr=srs.pop(), n_fft=n_fft, hop_length=hop_length, reference=reference, devices=devices,
        response=response, device_response=device_response, n_pairs=counts, n_frames=frames,
        pairs=[(r.id, t.id) for r, t in pairs],
    )


def write_response(path: str | Path, estimate: ResponseEstimate) -> Path:
    """Write the estimate as NPZ (atomically): freqs, response, device_response,
    devices, n_pairs, n_frames, reference, sr, n_fft, hop_length."""
    path = Path(path)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        freqs=estimate.freqs,
        response=estimate.response,
        device_response=estimate.device_response,
        devices=np.array(estimate.devices, dtype=str),
        n_pairs=estimate.n_pairs,
        n_frames=estimate.n_frames,
        reference=np.array(estimate.reference),
        sr=np.array(estimate.sr),
        n_fft=np.array(estimate.n_fft),
        hop_length=np.array(estimate.hop_length),
    )
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


def read_response(path: str | Path) -> ResponseEstimate:
    """Read an estimate written by :func:`write_response`."""
    with np.load(Path(path), allow_pickle=False) as data:
        return ResponseEstimate(
            sr=int(data["sr"]), n_fft=int(data["n_fft"]), hop_length=int(data["hop_length"]),
            reference=str(data["reference"]), devices=[str(d) for d in data["devices"]],
            response=data["response"], device_response=data["device_response"],
            n_pairs=data["n_pairs"], n_frames=data["n_frames"],
        )


# --------------------------------------------------------------------------
# registered method
# --------------------------------------------------------------------------
def _setup(request) -> Plan:
    reference = request.source_devices[0]
    with_info = [r for r in request.rows if r.segment and r.device]
    if not with_info:
        raise ManifestError(
            f"{request.manifest_path}: spectrum-correction needs device and segment information "
            "(TAU ids scene-city-location-segment-device or a device column with TAU ids)"
        )
    if len(with_info) < len(request.rows):
        log.warning("spectrum-correction: %d row(s) without device or segment ignored for the estimate",
                    len(request.rows) - len(with_info))
    pairs = find_pairs(with_info, reference)
    if not pairs:
        raise ManifestError(
            f"{request.manifest_path}: no parallel recordings found (no segment recorded on device "
            f"{reference!r} and on another device)"
        )
    p = request.params
    estimate = estimate_response(pairs, reference=reference, n_fft=int(p["n_fft"]),
                                 hop_length=int(p["hop_length"]), eps=float(p["eps"]), nj=request.nj)
    for device, n, f in zip(estimate.devices, estimate.n_pairs, estimate.n_frames):
        log.info("spectrum-correction: device %s: %d pair(s), %d frame(s)", device, n, f)
    if request.per_device:
        responses = {d: estimate.for_device(d) for d in estimate.devices}
        variants = {row.id: list(estimate.devices) for row in request.sources}
    else:
        responses = {"": estimate.response}
        variants = None
    return Plan(
        resources={"responses": responses, "sr": estimate.sr},
        variants=variants,
        artifacts={".response.npz": lambda path: write_response(path, estimate)},
        summary={
            "reference_device": reference,
            "target_devices": estimate.devices,
            "n_pairs": {d: int(n) for d, n in zip(estimate.devices, estimate.n_pairs)},
        },
    )


@register("spectrum-correction", params={"n_fft": 2048, "hop_length": 1024, "eps": 1e-8},
          positive=("n_fft", "hop_length", "eps"), source_devices=("a",), setup=_setup, tag="speccorr")
def spectrum_correction(y: np.ndarray, sr: int, *, rng: np.random.Generator, ctx: ClipContext,
                        n_fft: int, hop_length: int, eps: float) -> np.ndarray:
    """Apply the estimated response (of the variant's device with --per-device)."""
    if sr != ctx.resources["sr"]:
        raise AudioError(
            f"{ctx.clip_id}: sample rate {sr} Hz differs from the {ctx.resources['sr']} Hz of the response estimate"
        )
    return apply_response(y, ctx.resources["responses"][ctx.variant], n_fft=n_fft, hop_length=hop_length)
