"""Manifests: one TSV row per clip, and the TAU file-naming conventions.

A manifest is a tab-separated file with a header and the columns
``id path scene device city location`` plus, for augmented rows,
``source_id augmentation``. ``id`` is the file stem and is unique; ``path``
is absolute or relative to the manifest's folder; unlabelled sets leave
``scene`` empty.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .artifacts import atomic_path
from .errors import ManifestError

__all__ = [
    "SCENES",
    "COARSE_CLASSES",
    "BASE_COLUMNS",
    "AUG_COLUMNS",
    "Clip",
    "Manifest",
    "read_manifest",
    "write_manifest",
    "parse_stem",
    "location_of",
    "segment_of",
    "device_of",
    "read_label_map",
    "packaged_hierarchy",
    "read_csv_rows",
]

#: The 10 scenes of TAU 2020 Mobile, in the alphabetical class order.
SCENES = (
    "airport", "bus", "metro", "metro_station", "park", "public_square",
    "shopping_mall", "street_pedestrian", "street_traffic", "tram",
)
#: The 3 coarse classes of DCASE 2020 Task 1b, alphabetical.
COARSE_CLASSES = ("indoor", "outdoor", "transportation")

BASE_COLUMNS = ("id", "path", "scene", "device", "city", "location")
AUG_COLUMNS = ("source_id", "augmentation")


@dataclass
class Clip:
    """One manifest row. Unknown values are empty strings."""

    id: str
    path: str
    scene: str = ""
    device: str = ""
    city: str = ""
    location: str = ""
    source_id: str = ""
    augmentation: str = ""


@dataclass
class Manifest:
    """Rows of a manifest and the folder relative paths are resolved against."""

    clips: list[Clip]
    root: Path
    source: Path | None = None

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self) -> Iterator[Clip]:
        return iter(self.clips)

    def audio_path(self, clip: Clip) -> Path:
        """Absolute path of a clip's audio file."""
        path = Path(clip.path)
        return path if path.is_absolute() else self.root / path

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.clips]

    @property
    def is_augmented(self) -> bool:
        return any(c.source_id or c.augmentation for c in self.clips)


def parse_stem(stem: str) -> dict[str, str]:
    """Split a TAU file stem ``scene-city-locationid-segmentid-device``.

    Returns ``scene, city, location, segment, device`` (location =
    ``scene-city-locationid``, segment = ``scene-city-locationid-segmentid``),
    or raises :class:`ManifestError` when the stem does not follow the pattern.
    """
    parts = stem.split("-")
    if len(parts) != 5 or not all(parts):
        raise ManifestError(
            f"file name {stem!r} does not follow the TAU pattern scene-city-location-segment-device"
        )
    scene, city, loc, seg, device = parts
    return {
        "scene": scene,
        "city": city,
        "location": f"{scene}-{city}-{loc}",
        "segment": f"{scene}-{city}-{loc}-{seg}",
        "device": device,
    }


def location_of(stem: str) -> str:
    """Recording location ``scene-city-locationid`` of a TAU file stem."""
    return parse_stem(stem)["location"]


def segment_of(stem: str) -> str:
    """Segment key ``scene-city-locationid-segmentid`` (same for parallel recordings)."""
    return parse_stem(stem)["segment"]


def device_of(stem: str) -> str:
    """Device id (last field) of a TAU file stem."""
    return parse_stem(stem)["device"]


def read_csv_rows(path: str | os.PathLike, *, required: Sequence[str] = ()) -> tuple[list[str], list[dict[str, str]]]:
    """Read a tab-separated file with a header; tolerant of CRLF, BOM and no final newline.

    Raises :class:`ManifestError` naming the file when it is missing, empty
    or lacks a ``required`` column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ManifestError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read ({exc})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    rows = [[cell.strip() for cell in row] for row in reader if row and any(c.strip() for c in row)]
    if not rows:
        raise ManifestError(f"{path}: empty file (no header)")
    header, body = rows[0], rows[1:]
    missing = [c for c in required if c not in header]
    if missing:
        raise ManifestError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(header)}"
        )
    records = []
    for lineno, row in enumerate(body, start=2):
        if len(row) > len(header):
            raise ManifestError(f"{path}: line {lineno} has {len(row)} fields, header has {len(header)}")
        row = row + [""] * (len(header) - len(row))
        records.append(dict(zip(header, row)))
    return header, records


def read_manifest(path: str | os.PathLike, *, allow_empty: bool = False) -> Manifest:
    """Read a manifest TSV; check columns, unique ids and non-emptiness."""
    path = Path(path)
    header, records = read_csv_rows(path, required=("id", "path"))
    known = {f.name for f in fields(Clip)}
    unknown = [c for c in header if c not in known]
    if unknown:
        raise ManifestError(
            f"{path}: unexpected column(s) {', '.join(unknown)}; a manifest has {', '.join(BASE_COLUMNS + AUG_COLUMNS)}"
        )
    if not records and not allow_empty:
        raise ManifestError(f"{path}: manifest lists no clips")
    clips = [Clip(**rec) for rec in records]
    seen: set[str] = set()
    for lineno, clip in enumerate(clips, start=2):
        if not clip.id:
            raise ManifestError(f"{path}: line {lineno} has an empty id")
        if clip.id in seen:
            raise ManifestError(f"{path}: duplicate id {clip.id!r} (line {lineno})")
        seen.add(clip.id)
    return Manifest(clips, path.resolve().parent, path)


def write_manifest(path: str | os.PathLike, clips: Iterable[Clip]) -> Path:
    """Write a manifest TSV atomically. Augmentation columns only when used."""
    path = Path(path)
    clips = list(clips)
    columns = list(BASE_COLUMNS)
    if any(c.source_id or c.augmentation for c in clips):
        columns += list(AUG_COLUMNS)
    seen: set[str] = set()
    for clip in clips:
        if clip.id in seen:
            raise ManifestError(f"{path}: duplicate id {clip.id!r}")
        seen.add(clip.id)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write("\t".join(columns) + "\n")
            for clip in clips:
                row = asdict(clip)
                handle.write("\t".join(str(row[c]) for c in columns) + "\n")
    return path


def read_label_map(path: str | os.PathLike) -> dict[str, str]:
    """Read a two-column TSV ``fine<TAB>coarse`` (a header line is optional).

    Raises when a fine class is mapped twice (to one or two parents).
    """
    path = Path(path)
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise ManifestError(f"{path}: file not found") from None
    mapping: dict[str, str] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) != 2 or not all(parts):
            raise ManifestError(f"{path}: line {lineno} must be 'fine<TAB>coarse', got {line!r}")
        fine, coarse = parts
        if lineno == 1 and (fine, coarse) in {("scene", "label"), ("fine", "coarse"), ("scene", "coarse")}:
            continue
        if fine in mapping:
            raise ManifestError(
                f"{path}: class {fine!r} is mapped twice (to {mapping[fine]!r} and {coarse!r})"
            )
        mapping[fine] = coarse
    if not mapping:
        raise ManifestError(f"{path}: label map is empty")
    return mapping


def packaged_hierarchy() -> dict[str, str]:
    """The DCASE 2020 3-class map shipped with asctool (scene -> coarse class)."""
    ref = resources.files("asctool") / "conf" / "hierarchy_dcase2020.tsv"
    with resources.as_file(ref) as path:
        return read_label_map(path)


def prepare(*args, **kwargs):
    from .errors import NotImplementedYet

    raise NotImplementedYet("asctool prepare is not implemented yet")
