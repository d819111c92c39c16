"""Which clips an augmentation run takes: source rows, the leakage guard, source devices.

A manifest row becomes a :class:`SourceRow` (device, location and segment
resolved from its columns or, where they are empty, its TAU id). The leakage
guard drops rows recorded at the locations (or in the segments) of an
evaluation manifest: an augmented copy of such a clip would carry the
evaluation recording into training (DCASE 2020 Task 1 rules; the reference
system's code did not guard against it). What a method's ``setup`` receives
is a :class:`SetupRequest`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import ManifestError
from ..manifest import Clip, Manifest, parse_stem, read_csv_rows

__all__ = ["SourceRow", "SetupRequest", "resolve_rows", "read_exclusions", "drop_excluded", "parse_devices"]


@dataclass
class SourceRow:
    """A manifest row with its device, location and segment resolved."""

    clip: Clip
    audio_path: Path
    device: str
    location: str
    segment: str

    @property
    def id(self) -> str:
        return self.clip.id

    @property
    def scene(self) -> str:
        return self.clip.scene


@dataclass
class SetupRequest:
    """What a method's ``setup`` receives.

    ``rows`` are all rows left after the leakage guard (for estimates such as
    the device response), ``sources`` the rows to augment (also filtered by
    device).
    """

    method: str
    manifest_path: Path
    rows: list[SourceRow]
    sources: list[SourceRow]
    source_devices: tuple[str, ...] | None
    params: dict[str, Any]
    per_device: bool = False
    rir_dir: Path | None = None
    simulate_rooms: int | None = None
    nj: int = 1
    seed: int = 0


def _resolve(manifest: Manifest, clip: Clip) -> SourceRow:
    parsed: dict[str, str] = {}
    for key in (clip.id, clip.source_id):
        if key:
            try:
                parsed = parse_stem(key)
                break
            except ManifestError:
                continue
    device = clip.device or parsed.get("device", "")
    return SourceRow(clip=clip, audio_path=manifest.audio_path(clip), device=device,
                     location=clip.location or parsed.get("location", ""), segment=parsed.get("segment", ""))


def resolve_rows(manifest: Manifest) -> list[SourceRow]:
    """Every row of ``manifest`` with device, location and segment filled from its
    columns, or from its TAU id (or ``source_id``) where a column is empty."""
    return [_resolve(manifest, clip) for clip in manifest]


def read_exclusions(path: str | os.PathLike) -> tuple[set[str], set[str]]:
    """Recording locations and segments listed in an evaluation manifest.

    Accepts an asctool manifest (``id`` and optionally ``location`` columns)
    or a TAU split file (``filename`` column). Locations come from the
    ``location`` column or the TAU file stem.
    """
    path = Path(path)
    header, records = read_csv_rows(path)
    key = "id" if "id" in header else "filename" if "filename" in header else None
    if key is None:
        raise ManifestError(f"{path}: an evaluation manifest needs an 'id' or 'filename' column")
    locations: set[str] = set()
    segments: set[str] = set()
    for rec in records:
        stem = Path(rec[key]).stem if key == "filename" else rec[key]
        try:
            parsed = parse_stem(stem)
        except ManifestError:
            parsed = {}
        location = rec.get("location") or parsed.get("location", "")
        if location:
            locations.add(location)
        if parsed.get("segment"):
            segments.add(parsed["segment"])
    if not locations and not segments:
        raise ManifestError(f"{path}: no recording locations found (no location column and no TAU file names)")
    return locations, segments


def drop_excluded(rows: Sequence[SourceRow], locations: set[str], segments: set[str]
                  ) -> tuple[list[SourceRow], int, int]:
    """The leakage guard: drop rows recorded at ``locations`` or in ``segments``.

    Returns
    -------
    kept : the other rows, in order
    excluded : number of rows dropped
    unchecked : number of kept rows with neither location nor segment (not checkable)
    """
    kept, excluded, unchecked = [], 0, 0
    for row in rows:
        if (row.location and row.location in locations) or (row.segment and row.segment in segments):
            excluded += 1
        else:
            unchecked += not (row.location or row.segment)
            kept.append(row)
    return kept, excluded, unchecked


def parse_devices(devices: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``--devices``: a comma-separated string or a sequence of device names; None or empty: no choice."""
    if isinstance(devices, str):
        return tuple(d.strip() for d in devices.split(",") if d.strip()) or None
    return tuple(devices) if devices else None
