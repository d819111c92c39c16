"""Manifests: one TSV row per clip, and the TAU file-naming conventions.

A manifest is a tab-separated file with a header and the columns
``id path scene device city location`` plus, for augmented rows,
``source_id augmentation``. ``id`` is the file stem and is unique; ``path``
is absolute or relative to the manifest's folder; unlabelled sets leave
``scene`` empty. Any further column (a data set's ``fold``, ``filename`` or
source recording) is kept in :attr:`Clip.extra` and written back after the
known ones, so it survives every stage that rewrites a manifest.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator, Mapping, Sequence

from .io import atomic_path, check_name, read_text
from .errors import ManifestError
from .labels import check_known_labels, infer_class_set, packaged_hierarchy

log = logging.getLogger(__name__)

__all__ = [
    "BASE_COLUMNS",
    "AUG_COLUMNS",
    "Clip",
    "Manifest",
    "read_manifest",
    "write_manifest",
    "column_values",
    "parse_stem",
    "location_of",
    "segment_of",
    "device_of",
    "read_csv_rows",
    "CsvRecord",
    "SPLITS",
    "KNOWN_SPLIT_SIZES",
    "SYNTH_MARKER",
    "identify_dataset",
    "read_tau_setup",
]

BASE_COLUMNS = ("id", "path", "scene", "device", "city", "location")
AUG_COLUMNS = ("source_id", "augmentation")
_KNOWN_COLUMNS = frozenset(BASE_COLUMNS + AUG_COLUMNS)


@dataclass
class Clip:
    """One manifest row. Unknown values are empty strings.

    ``extra`` holds the values of the columns beyond the known ones
    (column -> value, in the file's column order), e.g. ``{"fold": "3"}``.
    """

    id: str
    path: str
    scene: str = ""
    device: str = ""
    city: str = ""
    location: str = ""
    source_id: str = ""
    augmentation: str = ""
    extra: dict = field(default_factory=dict)

    def get(self, column: str) -> str:
        """The value of a known or extra column ("" when this row has none)."""
        if column in _KNOWN_COLUMNS:
            return str(getattr(self, column))
        return str(self.extra.get(column, ""))


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

    @property
    def columns(self) -> list[str]:
        """Every column a row of this manifest has a value for: the known ones, then the extra ones."""
        return list(BASE_COLUMNS + AUG_COLUMNS) + _extra_columns(self.clips)


def _extra_columns(clips: Iterable[Clip]) -> list[str]:
    """The extra columns of ``clips``, in first-seen order."""
    seen: dict[str, None] = {}
    for clip in clips:
        seen.update(dict.fromkeys(clip.extra))
    return list(seen)


def column_values(manifest: Manifest, column: str) -> list[str]:
    """The values of one column (known or extra) for every clip, in row order.

    Raises
    ------
    ManifestError
        When no row of the manifest has that column (the message lists the columns it has).
    """
    if column not in _KNOWN_COLUMNS and not any(column in c.extra for c in manifest.clips):
        raise ManifestError(
            f"{manifest.source or 'manifest'}: no column {column!r}; it has {', '.join(manifest.columns)}"
        )
    return [clip.get(column) for clip in manifest.clips]


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


class CsvRecord(dict):
    """One row of :func:`read_csv_rows`: column -> value, and ``lineno``, its line in the file."""

    lineno: int = 0


def read_csv_rows(path: str | os.PathLike, *, required: Sequence[str] = ()) -> tuple[list[str], list[dict[str, str]]]:
    """Read a tab-separated file with a header; tolerant of CRLF, BOM and no final newline.

    Fields are not quoted (one line is one row, as in the TAU files): a double
    quote in a field is an error naming the file and line. Each record is a
    :class:`CsvRecord` (a dict) that knows its line number (``lineno``).

    Raises :class:`ManifestError` naming the file when it is missing, empty
    or lacks a ``required`` column, and the file and line of a row with too
    many fields or a quote.
    """
    path = Path(path)
    text = read_text(path, error=ManifestError, encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    rows: list[tuple[int, list[str]]] = []
    for row in reader:
        if row and any(c.strip() for c in row):
            rows.append((reader.line_num, [cell.strip() for cell in row]))
    if not rows:
        raise ManifestError(f"{path}: empty file (no header)")
    (_, header), body = rows[0], rows[1:]
    missing = [c for c in required if c not in header]
    if missing:
        raise ManifestError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(header)}"
        )
    records = []
    for lineno, row in body:
        if len(row) > len(header):
            raise ManifestError(f"{path}:{lineno}: {len(row)} fields, the header has {len(header)}")
        row = row + [""] * (len(header) - len(row))
        quoted = next((i for i, cell in enumerate(row) if '"' in cell), None)
        if quoted is not None:
            raise ManifestError(
                f"{path}:{lineno}: stray quote in column {header[quoted]!r} ({row[quoted]!r}); "
                "fields are tab-separated and never quoted"
            )
        record = CsvRecord(zip(header, row))
        record.lineno = lineno
        records.append(record)
    return header, records


def read_manifest(path: str | os.PathLike, *, allow_empty: bool = False, check_labels: bool = False,
                  classes: Sequence[str] | None = None) -> Manifest:
    """Read a manifest TSV; check columns, ids (unique, usable as file names), paths and non-emptiness.

    With ``check_labels``, every non-empty ``scene`` must also be a known class:
    one of ``classes`` (a user's ``--classes FILE``) or, when None, the DCASE
    scenes or coarse classes (:func:`asctool.labels.check_known_labels`).

    Columns other than :data:`BASE_COLUMNS` and :data:`AUG_COLUMNS` (a
    ``fold``, a ``filename``, a source recording) are kept, per row, in
    :attr:`Clip.extra`.

    Raises
    ------
    ManifestError
        Naming the file, and ``MANIFEST:LINE`` for a bad row: an empty ``path``,
        an id that is empty, repeated or not usable in a file name (see
        :func:`asctool.io.check_name`), a stray quote, an unknown label; a
        column named twice in the header.
    """
    path = Path(path)
    header, records = read_csv_rows(path, required=("id", "path"))
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise ManifestError(f"{path}: column(s) {', '.join(twice)} named twice in the header")
    if not records and not allow_empty:
        raise ManifestError(f"{path}: manifest lists no clips")
    clips = [Clip(**{k: v for k, v in rec.items() if k in _KNOWN_COLUMNS},
                  extra={k: v for k, v in rec.items() if k not in _KNOWN_COLUMNS}) for rec in records]
    seen: dict[str, int] = {}
    for rec, clip in zip(records, clips):
        lineno = getattr(rec, "lineno", 0)
        if not clip.id:
            raise ManifestError(f"{path}:{lineno}: empty id")
        check_name(clip.id, what="clip id", where=f"{path}:{lineno}", error=ManifestError)
        if clip.id in seen:
            raise ManifestError(f"{path}:{lineno}: duplicate id {clip.id!r} (first on line {seen[clip.id]})")
        seen[clip.id] = lineno
        if not clip.path:
            raise ManifestError(f"{path}:{lineno}: clip {clip.id!r} has an empty path")
    if check_labels:
        lines = [getattr(rec, "lineno", 0) for rec in records]
        check_known_labels([c.scene for c in clips], classes, lambda i: f"{path}:{lines[i]}")
    return Manifest(clips, path.resolve().parent, path)


def write_manifest(path: str | os.PathLike, clips: Iterable[Clip]) -> Path:
    """Write a manifest TSV atomically.

    Columns: :data:`BASE_COLUMNS`, the augmentation columns when a row uses
    them, then every extra column of the rows (first-seen order; a row
    without one writes it empty).

    Raises
    ------
    ManifestError
        An id unusable as a file name or repeated; an extra column named
        like a known one, or holding a tab or a line break in its name or a value.
    """
    path = Path(path)
    clips = list(clips)
    columns = list(BASE_COLUMNS)
    if any(c.source_id or c.augmentation for c in clips):
        columns += list(AUG_COLUMNS)
    extra = _extra_columns(clips)
    for name in extra:
        if not name or name in _KNOWN_COLUMNS or any(ch in name for ch in "\t\r\n"):
            raise ManifestError(f"{path}: cannot write an extra column named {name!r}")
    for clip in clips:
        bad = next((k for k, v in clip.extra.items() if any(ch in str(v) for ch in "\t\r\n")), None)
        if bad is not None:
            raise ManifestError(f"{path}: clip {clip.id!r}: column {bad!r} holds a tab or a line break")
    columns += extra
    seen: set[str] = set()
    for clip in clips:
        check_name(clip.id, what="clip id", where=path, error=ManifestError)
        if clip.id in seen:
            raise ManifestError(f"{path}: duplicate id {clip.id!r}")
        seen.add(clip.id)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write("\t".join(columns) + "\n")
            for clip in clips:
                handle.write("\t".join(clip.get(c) for c in columns) + "\n")
    return path


# --------------------------------------------------------------------------
# prepare: TAU dataset layout -> manifests
# --------------------------------------------------------------------------
#: The split files of an evaluation setup, in the order they are written.
SPLITS = ("train", "evaluate", "test")

_SPLIT_COLUMNS = {
    "train": ("filename", "scene_label"),
    "evaluate": ("filename", "scene_label"),
    "test": ("filename",),
}
_META_COLUMNS = ("filename", "scene_label", "identifier", "source_label")
_SHOW = 5  # how many offending files an error message names

#: Known fold-1 split sizes ``(train, evaluate, test)``. 9,185/4,185 is shared
#: by TAU 2019 development and TAU 2020 3Class; the labels tell them apart.
KNOWN_SPLIT_SIZES: dict[tuple[int, int, int], tuple[str, str]] = {
    (13965, 2970, 2970): ("TAU Urban Acoustic Scenes 2020 Mobile, development", "1.0"),
    (13962, 2968, 2968): ("TAU Urban Acoustic Scenes 2020 Mobile, development", "2.0"),
    (9185, 4185, 4185): ("TAU Urban Acoustic Scenes 2019 or 2020 3Class, development", "fold1"),
}
#: Marker file that ``asctool synth`` writes into the root of its datasets.
SYNTH_MARKER = "asctool_synth.json"


def _device_key(device: str) -> tuple:
    """Sort devices a, b, c, d, s1, s2, ..., s11 (numbers numerically)."""
    head, tail = device[:1], device[1:]
    return (head, int(tail) if tail.isdigit() else -1, device)


def identify_dataset(
    counts: Mapping[str, int], *, label_set: str = "scene", root: str | os.PathLike | None = None
) -> dict[str, str]:
    """Name the dataset and version whose fold-1 split sizes ``counts`` match.

    Parameters
    ----------
    counts : rows per split, keys ``train``, ``evaluate``, ``test``
    label_set : ``"scene"`` (10 scenes) or ``"coarse"`` (3 classes)
    root : dataset root; a root written by ``asctool synth`` is recognised by
        its marker file

    Returns
    -------
    dict with ``dataset`` (a name or ``"unknown"``) and ``version``
    (``"1.0"``, ``"2.0"``, ``"fold1"`` or ``"unknown"``).
    """
    key = (int(counts.get("train", -1)), int(counts.get("evaluate", -1)), int(counts.get("test", -1)))
    if key in KNOWN_SPLIT_SIZES:
        name, version = KNOWN_SPLIT_SIZES[key]
        if version == "fold1":
            name = (
                "TAU Urban Acoustic Scenes 2020 3Class, development"
                if label_set == "coarse"
                else "TAU Urban Acoustic Scenes 2019, development"
            )
            version = "1.0"
        return {"dataset": name, "version": version}
    if root is not None and (Path(root) / SYNTH_MARKER).is_file():
        try:
            made_by = json.loads((Path(root) / SYNTH_MARKER).read_text(encoding="utf-8"))
            version = str(made_by.get("asctool_version", "unknown"))
        except (OSError, ValueError):
            version = "unknown"
        return {"dataset": "asctool synth (demo data)", "version": version}
    return {"dataset": "unknown", "version": "unknown"}


@dataclass
class _Row:
    filename: str
    label: str
    lineno: int


def _read_split(path: Path, columns: Sequence[str]) -> list[_Row]:
    """Rows of one split CSV; exactly the expected columns, no duplicate files."""
    header, records = read_csv_rows(path, required=columns)
    extra = [c for c in header if c not in columns]
    if extra:
        raise ManifestError(
            f"{path}: unexpected column(s) {', '.join(extra)}; expected {' '.join(columns)}"
        )
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    for rec in records:
        lineno = rec.lineno
        filename = rec["filename"].replace("\\", "/")
        if not filename:
            raise ManifestError(f"{path}: line {lineno} has an empty filename")
        stem = check_name(PurePosixPath(filename).stem, what="clip id (file name)", where=f"{path}:{lineno}",
                          error=ManifestError)
        if stem in seen:
            raise ManifestError(
                f"{path}: duplicate clip {stem!r} on lines {seen[stem]} and {lineno}"
            )
        seen[stem] = lineno
        rows.append(_Row(filename, rec.get("scene_label", ""), lineno))
    return rows


def _label_set(rows_by_file: Mapping[Path, list[_Row]], classes: Sequence[str] | None = None
               ) -> tuple[str, tuple[str, ...]]:
    """The label set and its classes: ``classes`` (the user's ``--classes``: ``"classes"``), else
    :func:`asctool.labels.infer_class_set` of the labels (``scene``, ``coarse``, or ``data``: the
    data's own labels); every label must be in that set."""
    labels = [r.label for rows in rows_by_file.values() for r in rows]
    if classes is None and not any(labels):
        return "scene", tuple(infer_class_set(())[1])
    if classes is not None:
        label_set, known = "classes", tuple(classes)
    else:
        label_set, known = infer_class_set(labels)
    for path, rows in rows_by_file.items():
        for row in rows:
            if row.label not in known:
                raise ManifestError(
                    f"{path}: line {row.lineno}: unknown scene label {row.label!r} "
                    f"(expected one of {', '.join(known)}"
                    + ("; other classes are listed, one per line, in a file given with --classes FILE)"
                       if classes is None else ")")
                )
    return label_set, known


def _describe(items: Sequence[str], what: str, total: int | None = None) -> str:
    """``"3 of 10 <what>: x, y, z"``, naming at most the first few items."""
    shown = ", ".join(items[:_SHOW]) + (", ..." if len(items) > _SHOW else "")
    return f"{len(items)}{'' if total is None else f' of {total}'} {what}: {shown}"


def _missing_files(root: Path, filenames: Iterable[str]) -> list[str]:
    """Listed files that do not exist; one directory listing per folder."""
    by_dir: dict[str, list[str]] = {}
    for name in filenames:
        parent, _, base = name.rpartition("/")
        by_dir.setdefault(parent, []).append(name)
    missing: list[str] = []
    for parent, names in by_dir.items():
        folder = root / parent if parent else root
        try:
            present = {entry.name for entry in os.scandir(folder) if not entry.is_dir()}
        except OSError:
            present = set()
        missing.extend(n for n in names if n.rpartition("/")[2] not in present)
    return missing


def _relative_root(root: Path, out_dir: Path) -> str:
    """The dataset root as seen from the manifest folder (absolute if no relative path exists)."""
    try:
        return Path(os.path.relpath(os.path.abspath(root), os.path.abspath(out_dir))).as_posix()
    except ValueError:  # different drives on Windows
        return Path(os.path.abspath(root)).as_posix()


def _make_clip(
    row: _Row, *, rel_root: str, meta_row: Mapping[str, str] | None, label_set: str,
    hierarchy: Mapping[str, str], source: Path, keep_label: bool,
) -> Clip:
    stem = PurePosixPath(row.filename).stem
    path = posixpath.normpath(posixpath.join(rel_root, row.filename))
    label = row.label if keep_label else ""
    extra = {"filename": row.filename}  # as the data set lists it: the name a submission gives
    try:
        parts = parse_stem(stem)
    except ManifestError:
        parts = None
    if parts is not None:
        if row.label:
            expected = parts["scene"] if label_set == "scene" else hierarchy.get(parts["scene"], "")
            if expected and row.label != expected:
                raise ManifestError(
                    f"{source}: line {row.lineno}: {row.filename} is labelled {row.label!r} "
                    f"but its file name says {expected!r}"
                )
        return Clip(stem, path, label, parts["device"], parts["city"], parts["location"], extra=extra)
    # stems off the TAU pattern (e.g. evaluation sets): take what meta.csv knows
    if meta_row is not None and meta_row.get("identifier"):
        identifier = meta_row["identifier"]
        scene = meta_row.get("scene_label", "")
        return Clip(
            stem, path, label, meta_row.get("source_label", ""), identifier.split("-")[0],
            f"{scene}-{identifier}" if scene else identifier, extra=extra,
        )
    return Clip(stem, path, label, extra=extra)


def _counts(values: Iterable[str], key=None) -> dict[str, int]:
    counter: dict[str, int] = {}
    for value in values:
        counter[value] = counter.get(value, 0) + 1
    return {k: counter[k] for k in sorted(counter, key=key)}


def read_tau_setup(
    dataset_root: str | os.PathLike,
    *,
    setup: str = "fold1",
    check_audio: bool = True,
    relative_to: str | os.PathLike,
    classes: Sequence[str] | None = None,
) -> tuple[dict[str, list[Clip]], dict]:
    """Read and cross-check one evaluation setup of a TAU dataset layout.

    Reads ``meta.csv`` (optional) and ``evaluation_setup/{setup}_train.csv``,
    ``_evaluate.csv``, ``_test.csv`` under ``dataset_root`` (TAU Urban
    Acoustic Scenes 2020 Mobile, 2020 3Class, 2019: tab-separated with a
    header, LF or CRLF, final newline optional). The evaluate clips keep their
    labels (it is the scored set); the test clips have an empty ``scene``.
    For the 3Class data set the 3-class label is the scene.

    Parameters
    ----------
    dataset_root : path
    setup : str
        Evaluation setup name (prefix of the split files).
    check_audio : bool
        Whether missing audio files are an error (else a warning).
    relative_to : path
        Folder the manifests will be written to: clip paths are relative to it.
    classes : sequence of str, optional
        The data set's own classes (``--classes FILE``) instead of the DCASE
        scenes or coarse classes; a file name's scene field, when it is one of
        them, must match the label. None: the class set comes from the data
        (:func:`asctool.labels.infer_class_set`): the DCASE scenes or coarse
        classes when most labels are theirs, else the labels found
        (``label_set`` ``data``, the classes recorded as ``known_classes``).

    Returns
    -------
    clips : dict
        ``train``, ``evaluate``, ``test`` (and ``meta`` when meta.csv exists):
        lists of :class:`Clip`.
    info : dict
        Dataset name and version matched by the split sizes, label set,
        classes, counts per split and device, location counts, missing audio.

    Raises
    ------
    ManifestError
        missing root or split file, unexpected columns, unknown scene labels,
        duplicate clips (within a split, or in both train and evaluate/test),
        labels contradicting the file name or meta.csv, split files not in
        meta.csv, missing audio (with ``check_audio``).
    """
    root = Path(dataset_root)
    out_dir = Path(relative_to)
    if not root.exists():
        raise ManifestError(f"{root}: dataset root not found")
    if not root.is_dir():
        raise ManifestError(f"{root}: dataset root is not a folder")
    split_paths = {name: root / "evaluation_setup" / f"{setup}_{name}.csv" for name in SPLITS}
    absent = [p for p in split_paths.values() if not p.is_file()]
    if absent:
        raise ManifestError(
            f"{root}: missing split file(s) "
            + ", ".join(p.relative_to(root).as_posix() for p in absent)
            + f" for setup {setup!r}"
        )
    meta_path = root / "meta.csv"
    meta_rows = _read_split_meta(meta_path) if meta_path.is_file() else None
    splits = {name: _read_split(path, _SPLIT_COLUMNS[name]) for name, path in split_paths.items()}

    labelled = {split_paths[n]: splits[n] for n in ("train", "evaluate")}
    if meta_rows is not None:
        labelled[meta_path] = list(meta_rows.values())
    label_set, known = _label_set(labelled, classes)
    hierarchy = packaged_hierarchy() if label_set in ("scene", "coarse") else {c: c for c in known}

    # cross-checks: meta.csv, overlaps
    if meta_rows is not None:
        for name, rows in splits.items():
            unknown = [r.filename for r in rows if r.filename not in meta_rows]
            if unknown:
                raise ManifestError(
                    f"{split_paths[name]}: {_describe(unknown, f'files are not listed in {meta_path.name}', len(rows))}"
                )
            for row in rows:
                if row.label and row.label != meta_rows[row.filename].label:
                    raise ManifestError(
                        f"{split_paths[name]}: line {row.lineno}: {row.filename} is labelled "
                        f"{row.label!r} but {meta_path.name} says {meta_rows[row.filename].label!r}"
                    )
    train_ids = {PurePosixPath(r.filename).stem for r in splits["train"]}
    for name in ("evaluate", "test"):
        both = [r.filename for r in splits[name] if PurePosixPath(r.filename).stem in train_ids]
        if both:
            raise ManifestError(
                f"{split_paths[name]}: " + _describe(both, f"clips are also in {split_paths['train'].name}")
            )

    listed = dict.fromkeys(r.filename for rows in splits.values() for r in rows)
    if meta_rows is not None:
        listed.update(dict.fromkeys(meta_rows))
    missing = _missing_files(root, listed)
    if missing:
        message = f"{root}: {_describe(missing, 'listed audio files are missing', len(listed))}"
        if check_audio:
            raise ManifestError(message + " (use --no-check-audio to write the manifests anyway)")
        log.warning("%s", message)

    rel_root = _relative_root(root, out_dir)
    meta_lookup = {k: {"scene_label": v.label, **v.extra} for k, v in (meta_rows or {}).items()}
    clips: dict[str, list[Clip]] = {}
    sources = dict(split_paths)
    rows_by_name = dict(splits)
    if meta_rows is not None:
        sources["meta"] = meta_path
        rows_by_name["meta"] = list(meta_rows.values())
    for name, rows in rows_by_name.items():
        clips[name] = [
            _make_clip(
                row, rel_root=rel_root, meta_row=meta_lookup.get(row.filename), label_set=label_set,
                hierarchy=hierarchy, source=sources[name], keep_label=name != "test",
            )
            for row in rows
        ]

    counts = {name: len(rows) for name, rows in clips.items()}
    identity = identify_dataset(counts, label_set=label_set, root=root)
    train_locs = {c.location for c in clips["train"] if c.location}
    eval_locs = {c.location for c in clips["evaluate"] if c.location}
    shared = sorted(train_locs & eval_locs)
    if shared:
        log.warning(
            "%s: %s", root, _describe(shared, "recording locations are in both train and evaluate")
        )
    info = {
        "setup": setup,
        **identity,
        "label_set": label_set,
        "classes": sorted({c.scene for c in clips["train"] + clips["evaluate"] if c.scene}),
        **({"known_classes": list(known)} if label_set in ("classes", "data") else {}),
        "counts": counts,
        "devices": {
            name: _counts((c.device for c in cl), key=_device_key) for name, cl in clips.items()
        },
        "locations": {"train": len(train_locs), "evaluate": len(eval_locs), "shared": len(shared)},
        "missing_audio": len(missing),
        "audio_checked": bool(check_audio),
        "dataset_root": str(root),
    }
    log.info(
        "%s: %s; %s", root,
        ", ".join(f"{counts[n]} {n}" for n in counts),
        "split sizes match " + f"{identity['dataset']} v{identity['version']}"
        if identity["dataset"] != "unknown" else "split sizes match no known dataset version",
    )
    return clips, info


@dataclass
class _MetaRow(_Row):
    extra: dict = None  # type: ignore[assignment]


def _read_split_meta(path: Path) -> dict[str, _MetaRow]:
    """``meta.csv`` rows by filename (columns filename scene_label identifier source_label)."""
    header, records = read_csv_rows(path, required=("filename", "scene_label"))
    extra = [c for c in header if c not in _META_COLUMNS]
    if extra:
        raise ManifestError(
            f"{path}: unexpected column(s) {', '.join(extra)}; expected {' '.join(_META_COLUMNS)}"
        )
    rows: dict[str, _MetaRow] = {}
    stems: dict[str, int] = {}
    for rec in records:
        lineno = rec.lineno
        filename = rec["filename"].replace("\\", "/")
        stem = check_name(PurePosixPath(filename).stem, what="clip id (file name)", where=f"{path}:{lineno}",
                          error=ManifestError)
        if stem in stems:
            raise ManifestError(f"{path}: duplicate clip {stem!r} on lines {stems[stem]} and {lineno}")
        stems[stem] = lineno
        rows[filename] = _MetaRow(
            filename, rec["scene_label"], lineno,
            {"identifier": rec.get("identifier", ""), "source_label": rec.get("source_label", "")},
        )
    return rows
