"""Data set layouts beyond TAU development sets: evaluation sets, metadata CSVs, a folder per class.

:func:`asctool.manifest.read_tau_setup` reads a TAU development layout. This
module reads the others ``asctool prepare`` knows (docs/prepare.md):

- ``eval``: a DCASE evaluation-set root with only
  ``evaluation_setup/{setup}_test.csv`` (or only an ``audio/`` folder): the
  clips, unlabelled (:func:`read_eval_set`);
- ``metadata``: a CSV with a file name, a label and (optionally) a fold column,
  as ESC-50 (``meta/esc50.csv``) and UrbanSound8K (``metadata/UrbanSound8K.csv``)
  ship them; ``fold=K`` gives the train/evaluate split of cross-validation fold
  K (:func:`read_metadata_csv`);
- ``folders``: a folder per class, the folder's name the label
  (:func:`read_class_folders`).

:func:`detect_layout` tells them apart. Device, city and location are optional
(columns of those names in a metadata CSV); without them scoring reports per
class and the validation split is stratified by class (:mod:`asctool.splits`).
Every clip keeps its path relative to the data set root in an extra
``filename`` column (the name a DCASE submission lists), and a metadata CSV's
other columns travel as extra manifest columns (``fold``, a source recording).
"""
from __future__ import annotations

import csv
import io
import logging
import os
import posixpath
from pathlib import Path, PurePosixPath
from typing import Sequence

from .errors import ManifestError
from .io import check_name, read_text
from .labels import infer_class_set
from .manifest import (Clip, CsvRecord, _counts, _describe, _make_clip, _missing_files, _read_split, _relative_root,
                       parse_stem)

__all__ = [
    "LAYOUTS",
    "AUDIO_SUFFIXES",
    "FILENAME_COLUMNS",
    "LABEL_COLUMNS",
    "detect_layout",
    "read_table",
    "read_eval_set",
    "read_metadata_csv",
    "read_class_folders",
]

log = logging.getLogger(__name__)

#: The layouts ``asctool prepare --layout`` names (``auto`` detects one).
LAYOUTS = ("auto", "tau", "eval", "metadata", "folders")
#: File suffixes taken for audio when a folder is listed (any case).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
#: Column names tried, in order, for the file name and the label of a metadata CSV.
FILENAME_COLUMNS = ("filename", "slice_file_name", "file_name", "fname", "file")
LABEL_COLUMNS = ("label", "category", "class", "scene_label", "class_name")
_OPTIONAL = ("device", "city", "location")
_RESERVED = ("id", "path", "scene", "source_id", "augmentation", "filename")


def _is_audio(name: str) -> bool:
    return name.lower().endswith(AUDIO_SUFFIXES) and not name.startswith(".")


def _audio_under(folder: Path) -> list[Path]:
    """Audio files below ``folder`` (any depth; hidden files and folders skipped), sorted."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(parent) / f for f in files if _is_audio(f))
    return sorted(found)


def _metadata_candidates(root: Path) -> list[Path]:
    return sorted(p for folder in (root, root / "meta", root / "metadata") if folder.is_dir()
                  for p in folder.iterdir() if p.suffix.lower() in (".csv", ".tsv") and p.is_file())


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and p.name != "evaluation_setup" and any(True for _ in _audio_under(p)))


def detect_layout(root: str | os.PathLike, *, setup: str = "fold1", metadata: str | os.PathLike | None = None) -> str:
    """Which layout ``root`` has: ``tau``, ``eval``, ``metadata`` or ``folders``.

    In order: an ``evaluation_setup/`` folder is ``tau`` when it has
    ``{setup}_train.csv`` or lacks ``{setup}_test.csv``, else ``eval``; a
    ``metadata`` file given, or a single ``*.csv`` (or ``*.tsv``) in the root, ``meta/`` or
    ``metadata/``, is ``metadata``; an ``audio/`` folder is ``eval`` (audio
    only); two or more folders holding audio are ``folders``.

    Raises
    ------
    ManifestError
        The root is missing or not a folder; several CSVs could be the metadata
        (name one with ``--metadata``); nothing matches.
    """
    root = Path(root)
    if not root.exists():
        raise ManifestError(f"{root}: dataset root not found")
    if not root.is_dir():
        raise ManifestError(f"{root}: dataset root is not a folder")
    setup_dir = root / "evaluation_setup"
    if setup_dir.is_dir():
        has_train, has_test = (setup_dir / f"{setup}_train.csv").is_file(), (setup_dir / f"{setup}_test.csv").is_file()
        return "tau" if has_train or not has_test else "eval"
    if metadata is not None:
        return "metadata"
    candidates = _metadata_candidates(root)
    if len(candidates) > 1:
        raise ManifestError(f"{root}: {len(candidates)} CSV/TSV files could be the metadata "
                            f"({', '.join(p.relative_to(root).as_posix() for p in candidates)}); "
                            "name one with --metadata FILE")
    if candidates:
        return "metadata"
    if (root / "audio").is_dir() and _audio_under(root / "audio"):
        return "eval"
    if len(_class_folders(root)) >= 2:
        return "folders"
    raise ManifestError(
        f"{root}: no data set layout found: no evaluation_setup/{setup}_train.csv or _test.csv (TAU), "
        "no metadata CSV (name it with --metadata FILE), no audio/ folder, no two class folders with audio"
    )


def read_table(path: str | os.PathLike) -> tuple[list[str], list[CsvRecord]]:
    """A metadata table: comma- or tab-separated (the header line decides), with a header.

    Comma-separated files follow RFC 4180 quoting; a byte-order mark, CRLF line
    ends and a missing final newline are accepted; blank lines are skipped.
    Cells are stripped of surrounding white space.

    Returns
    -------
    header, records : the column names and one :class:`asctool.manifest.CsvRecord` per row
        (``lineno`` is the row's line in the file).

    Raises
    ------
    ManifestError
        Missing or empty file, a column named twice, a row with more fields
        than the header (naming ``FILE:LINE``).
    """
    path = Path(path)
    text = read_text(path, error=ManifestError, encoding="utf-8-sig")
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = "\t" if "\t" in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                rows.append((reader.line_num, [c.strip() for c in row]))
    except csv.Error as exc:
        raise ManifestError(f"{path}:{reader.line_num}: {exc}") from None
    if not rows:
        raise ManifestError(f"{path}: empty file (no header)")
    (_, header), body = rows[0], rows[1:]
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise ManifestError(f"{path}: column(s) {', '.join(twice)} named twice in the header")
    records = []
    for lineno, row in body:
        if len(row) > len(header):
            raise ManifestError(f"{path}:{lineno}: {len(row)} fields, the header has {len(header)}")
        record = CsvRecord(zip(header, row + [""] * (len(header) - len(row))))
        record.lineno = lineno
        records.append(record)
    return header, records


def _pick_column(path: Path, header: Sequence[str], given: str | None, names: Sequence[str], what: str,
                 option: str) -> str:
    if given is not None:
        if given not in header:
            raise ManifestError(f"{path}: no column {given!r} ({option}); found {', '.join(header)}")
        return given
    found = next((n for n in names if n in header), None)
    if found is None:
        raise ManifestError(f"{path}: no {what} column (looked for {', '.join(names)}; found {', '.join(header)}); "
                            f"name it with {option}")
    return found


def _check_classes(labels: Sequence[tuple[str, str]], classes: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    """The label set of ``(where, label)`` pairs: ``classes`` (``--classes``) or the inferred one; every label in it."""
    if classes is not None:
        label_set, known = "classes", tuple(classes)
    else:
        label_set, known = infer_class_set([label for _, label in labels])
    allowed = set(known)
    for where, label in labels:
        if label not in allowed:
            listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            hint = ("" if classes is not None else
                    "; other classes are listed, one per line, in a file given with --classes FILE")
            raise ManifestError(f"{where}: unknown label {label!r} (expected one of {listed}{hint})")
    return label_set, known


def _clip_id(path: Path, name: str, where: str) -> str:
    return check_name(PurePosixPath(name).stem, what="clip id (file name)", where=where, error=ManifestError)


def _audio_clip(stem: str, rel_root: str, filename: str, label: str = "", **extra: str) -> Clip:
    """A clip of a file ``filename`` (relative to the data set root): TAU stems give device, city, location."""
    path = posixpath.normpath(posixpath.join(rel_root, filename))
    try:
        parts = parse_stem(stem)
    except ManifestError:
        parts = {"device": "", "city": "", "location": ""}
    return Clip(stem, path, label, parts["device"], parts["city"], parts["location"], extra={"filename": filename,
                                                                                            **extra})


def _check_missing(root: Path, filenames: Sequence[str], check_audio: bool) -> int:
    missing = _missing_files(root, filenames)
    if missing:
        message = f"{root}: {_describe(missing, 'listed audio files are missing', len(filenames))}"
        if check_audio:
            raise ManifestError(message + " (use --no-check-audio to write the manifests anyway)")
        log.warning("%s", message)
    return len(missing)


def _info(layout: str, root: Path, clips: dict[str, list[Clip]], *, setup: str, label_set: str | None = None,
          known: Sequence[str] | None = None, missing: int = 0, check_audio: bool = True, **more) -> dict:
    labelled = [c for name in ("train", "evaluate") for c in clips.get(name, [])]
    info = {
        "setup": setup,
        "layout": layout,
        "dataset": "unknown",
        "version": "unknown",
        "label_set": label_set,
        "classes": sorted({c.scene for c in labelled if c.scene}),
        **({"known_classes": list(known)} if label_set in ("classes", "data") and known else {}),
        "counts": {name: len(rows) for name, rows in clips.items()},
        "devices": {name: _counts(c.device for c in rows) for name, rows in clips.items()},
        **more,
        "missing_audio": missing,
        "audio_checked": bool(check_audio),
        "dataset_root": str(root),
    }
    log.info("%s: %s layout; %s", root, layout, ", ".join(f"{n} {k}" for k, n in info["counts"].items()))
    return info


# --------------------------------------------------------------------------
# the layouts
# --------------------------------------------------------------------------
def read_eval_set(dataset_root: str | os.PathLike, *, setup: str = "fold1", check_audio: bool = True,
                  relative_to: str | os.PathLike) -> tuple[dict[str, list[Clip]], dict]:
    """The clips of a DCASE evaluation set: ``{"test": [...]}``, unlabelled.

    Reads ``evaluation_setup/{setup}_test.csv`` (column ``filename``) when it
    exists, else lists the audio files under ``audio/``. Ids are the file
    stems; TAU stems give device, city and location.

    Raises
    ------
    ManifestError
        A bad or duplicate file name, a missing audio file (with ``check_audio``),
        no audio at all.
    """
    root, out_dir = Path(dataset_root), Path(relative_to)
    rel_root = _relative_root(root, out_dir)
    split = root / "evaluation_setup" / f"{setup}_test.csv"
    if split.is_file():
        rows = _read_split(split, ("filename",))
        clips = [_make_clip(r, rel_root=rel_root, meta_row=None, label_set="scene", hierarchy={}, source=split,
                            keep_label=False) for r in rows]
        source = f"evaluation_setup/{setup}_test.csv"
    else:
        files = _audio_under(root / "audio")
        if not files:
            raise ManifestError(f"{root}: no evaluation_setup/{setup}_test.csv and no audio files under audio/")
        clips, seen = [], {}
        for file in files:
            name = file.relative_to(root).as_posix()
            stem = _clip_id(root, name, str(file))
            if stem in seen:
                raise ManifestError(f"{root}: two audio files make the clip id {stem!r}: {seen[stem]} and {name}")
            seen[stem] = name
            clips.append(_audio_clip(stem, rel_root, name))
        source = "audio/"
    missing = _check_missing(root, [c.extra["filename"] for c in clips], check_audio)
    return {"test": clips}, _info("eval", root, {"test": clips}, setup=setup, missing=missing,
                                  check_audio=check_audio, source=source)


def _resolve_prefix(root: Path, records: Sequence[CsvRecord], name_col: str, fold_col: str | None) -> str:
    """Where the metadata's file names live: the root, ``audio/`` or ``audio/fold{fold}/`` (the most files found)."""
    patterns = ["", "audio/"] + (["audio/fold{fold}/"] if fold_col else [])
    best, best_found = "", -1
    for pattern in patterns:
        names = [pattern.format(fold=r.get(fold_col, "") if fold_col else "") + r[name_col] for r in records]
        found = len(names) - len(_missing_files(root, names))
        if found > best_found:
            best, best_found = pattern, found
    return best


def read_metadata_csv(
    dataset_root: str | os.PathLike,
    metadata: str | os.PathLike | None = None,
    *,
    fold: str | int | None = None,
    label_column: str | None = None,
    fold_column: str | None = None,
    filename_column: str | None = None,
    check_audio: bool = True,
    relative_to: str | os.PathLike,
    classes: Sequence[str] | None = None,
) -> tuple[dict[str, list[Clip]], dict]:
    """The clips of a metadata CSV (ESC-50 / UrbanSound8K style), split by fold.

    Parameters
    ----------
    dataset_root : path
        The data set's root; the file names are found under it, ``audio/`` or
        ``audio/fold{fold}/`` (whichever holds the most of them).
    metadata : path, optional
        The CSV (comma- or tab-separated, header first); default the single
        ``*.csv`` or ``*.tsv`` of the root, ``meta/`` or ``metadata/``.
    fold : str or int, optional
        Cross-validation fold held out: ``evaluate`` is its clips (labelled),
        ``test`` the same clips unlabelled, ``train`` every other clip; the two
        are disjoint and together every clip. None: ``train`` is every clip.
    label_column, fold_column, filename_column : str, optional
        Column names; defaults: the first of :data:`LABEL_COLUMNS`, ``fold``
        (when present), the first of :data:`FILENAME_COLUMNS`.
    check_audio : bool
        Whether a missing audio file is an error (else a warning).
    relative_to : path
        The manifests' folder: clip paths are relative to it.
    classes : sequence of str, optional
        The declared class set (``--classes``); None: from the data
        (:func:`asctool.labels.infer_class_set`).

    Returns
    -------
    clips : dict ``train`` (and ``evaluate``, ``test`` with ``fold``) -> list of Clip
        Columns ``device``, ``city``, ``location`` of the CSV fill those fields;
        every other column is an extra manifest column, and ``filename`` the
        path relative to the root.
    info : dict
        Layout, label set, classes, counts, clips per fold, columns used.

    Raises
    ------
    ManifestError
        No metadata, a missing column, an empty file name or label (naming
        ``FILE:LINE``), a duplicate clip, an unknown label, ``fold`` not among
        the folds (or no fold column), missing audio (with ``check_audio``).
    """
    root, out_dir = Path(dataset_root), Path(relative_to)
    if metadata is None:
        candidates = _metadata_candidates(root)
        if len(candidates) != 1:
            raise ManifestError(f"{root}: {'no' if not candidates else len(candidates)} metadata CSV files "
                                "in the root, meta/ or metadata/; name one with --metadata FILE")
        metadata = candidates[0]
    path = Path(metadata)
    header, records = read_table(path)
    name_col = _pick_column(path, header, filename_column, FILENAME_COLUMNS, "file name", "--filename-column")
    label_col = _pick_column(path, header, label_column, LABEL_COLUMNS, "label", "--label-column")
    if fold_column is not None:
        fold_col = _pick_column(path, header, fold_column, (), "fold", "--fold-column")
    else:
        fold_col = "fold" if "fold" in header else None
    if fold is not None and fold_col is None:
        raise ManifestError(f"{path}: --fold {fold}: no fold column (found {', '.join(header)}); "
                            "name it with --fold-column")
    if not records:
        raise ManifestError(f"{path}: lists no clips")
    for rec in records:
        for column, what in ((name_col, "file name"), (label_col, "label")) + (((fold_col, "fold"),) if fold_col else ()):
            if not rec[column]:
                raise ManifestError(f"{path}:{rec.lineno}: empty {what} (column {column!r})")
        rec[name_col] = rec[name_col].replace("\\", "/")
    label_set, known = _check_classes([(f"{path}:{r.lineno}", r[label_col]) for r in records], classes)
    folds = _counts((r[fold_col] for r in records), key=lambda v: (len(v), v)) if fold_col else {}
    if fold is not None and str(fold) not in folds:
        raise ManifestError(f"{path}: --fold {fold}: no such fold in column {fold_col!r} "
                            f"(folds: {', '.join(folds)})")
    prefix = _resolve_prefix(root, records, name_col, fold_col)
    rel_root = _relative_root(root, out_dir)
    carried = [c for c in header if c not in (name_col, label_col, *_OPTIONAL, *_RESERVED)]
    clips, seen, fold_of = [], {}, {}
    for rec in records:
        filename = prefix.format(fold=rec.get(fold_col, "") if fold_col else "") + rec[name_col]
        stem = _clip_id(path, filename, f"{path}:{rec.lineno}")
        if stem in seen:
            raise ManifestError(f"{path}: duplicate clip {stem!r} on lines {seen[stem]} and {rec.lineno}")
        seen[stem] = rec.lineno
        clip = Clip(stem, posixpath.normpath(posixpath.join(rel_root, filename)), rec[label_col],
                    *(rec.get(c, "") for c in _OPTIONAL), extra={c: rec[c] for c in carried})
        clip.extra["filename"] = filename
        clips.append(clip)
        fold_of[stem] = rec[fold_col] if fold_col else ""
    missing = _check_missing(root, [c.extra["filename"] for c in clips], check_audio)
    if fold is None:
        split = {"train": clips}
    else:
        held = [c for c in clips if fold_of[c.id] == str(fold)]
        split = {"train": [c for c in clips if fold_of[c.id] != str(fold)], "evaluate": held,
                 "test": [Clip(c.id, c.path, "", c.device, c.city, c.location, extra=dict(c.extra)) for c in held]}
    columns = {"filename": name_col, "label": label_col, "fold": fold_col}
    info = _info("metadata", root, split, setup="", label_set=label_set, known=known, missing=missing,
                 check_audio=check_audio, metadata=str(path), columns=columns, folds=folds,
                 fold=None if fold is None else str(fold), audio_prefix=prefix)
    return split, info


def read_class_folders(dataset_root: str | os.PathLike, *, relative_to: str | os.PathLike,
                       classes: Sequence[str] | None = None) -> tuple[dict[str, list[Clip]], dict]:
    """The clips of a folder-per-class layout: ``{"train": [...]}``, each labelled with its folder's name.

    Every folder of the root that holds audio (at any depth) is a class.
    Ids are the file stems; when two files share a stem, every id becomes
    ``{class}-{stem}`` (said once).

    Raises
    ------
    ManifestError
        Fewer than two class folders, a folder not among ``classes``
        (``--classes``), two files that still make one id.
    """
    root, out_dir = Path(dataset_root), Path(relative_to)
    folders = _class_folders(root)
    if len(folders) < 2:
        raise ManifestError(f"{root}: {len(folders)} folder(s) with audio; a folder-per-class layout needs two")
    label_set, known = _check_classes([(str(f), f.name) for f in folders], classes)
    files = [(f.name, a.relative_to(root).as_posix()) for f in folders for a in _audio_under(f)]
    stems = [PurePosixPath(name).stem for _, name in files]
    prefixed = len(set(stems)) != len(stems)
    if prefixed:
        log.warning("%s: file names repeat across class folders; clip ids are CLASS-STEM", root)
    rel_root = _relative_root(root, out_dir)
    clips, seen = [], {}
    for (label, name), stem in zip(files, stems):
        clip_id = check_name(f"{label}-{stem}" if prefixed else stem, what="clip id (file name)",
                             where=str(root / name), error=ManifestError)
        if clip_id in seen:
            raise ManifestError(f"{root}: two audio files make the clip id {clip_id!r}: {seen[clip_id]} and {name}")
        seen[clip_id] = name
        clip = _audio_clip(stem, rel_root, name, label)
        clip.id = clip_id
        clips.append(clip)
    return {"train": clips}, _info("folders", root, {"train": clips}, setup="", label_set=label_set, known=known,
                                   check_audio=False, folders=len(folders))
