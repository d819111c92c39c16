"""The ``asctool prepare`` stage: manifests of one evaluation setup of a data set.

Detects the layout (:func:`asctool.layouts.detect_layout`) and reads it: a TAU
development set with :func:`asctool.manifest.read_tau_setup`, a DCASE
evaluation set, a metadata CSV (ESC-50 / UrbanSound8K style, ``fold`` for
cross-validation) or a folder per class with :mod:`asctool.layouts`. Writes,
atomically, the manifests ``{setup}_train.tsv``, ``{setup}_evaluate.tsv``,
``{setup}_test.tsv`` the layout has (and ``meta.tsv`` for a TAU meta.csv),
``{setup}_info.json`` and, when the class set comes from the data,
``{setup}_classes.txt`` (a ``--classes FILE`` for the later stages).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..errors import ConfigError, ManifestError
from ..io import atomic_path, check_name, claim_outputs, locked_outputs
from ..labels import classes_text, read_classes
from ..layouts import LAYOUTS, detect_layout, read_class_folders, read_eval_set, read_metadata_csv
from ..manifest import SPLITS, read_tau_setup, write_manifest

__all__ = ["run"]

log = logging.getLogger(__name__)

#: The manifests each layout writes (a TAU ``meta.csv`` adds ``meta``).
_WRITES = {"tau": SPLITS, "eval": ("test",), "metadata": ("train",), "folders": ("train",)}


@locked_outputs("out_dir")  # one writer per output (docs/reliability.md)
def run(
    dataset_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    setup: str | None = None,
    check_audio: bool = True,
    force: bool = False,
    classes_path: str | os.PathLike | None = None,
    layout: str = "auto",
    metadata: str | os.PathLike | None = None,
    fold: str | int | None = None,
    label_column: str | None = None,
    fold_column: str | None = None,
    filename_column: str | None = None,
) -> dict:
    """Read a data set layout and write the manifests of one evaluation setup.

    Paths in the manifests are relative to ``out_dir``; every clip also keeps
    the file name the data set lists (extra column ``filename``). See
    :func:`asctool.manifest.read_tau_setup` and :mod:`asctool.layouts` for
    what is read and checked.

    Parameters
    ----------
    dataset_root, out_dir : path
    setup : str, optional
        Prefix of the outputs (and, for TAU layouts, of the split files).
        Default ``fold1``; ``fold{K}`` with ``fold``; ``all`` for a metadata
        CSV without ``fold`` or a folder per class.
    check_audio : bool
        Whether a listed audio file that does not exist is an error.
    force : bool
        Overwrite existing outputs.
    classes_path : path, optional
        The declared class set, one per line (``--classes FILE``); every label
        must be one of them. None: the class set comes from the data (the DCASE
        scenes or coarse classes when most labels are theirs, else the labels
        found, written to ``{setup}_classes.txt``).
    layout : ``auto``, ``tau``, ``eval``, ``metadata`` or ``folders``
    metadata : path, optional
        The metadata CSV (layout ``metadata``; default: found in the root).
    fold : str or int, optional
        The cross-validation fold to evaluate on (layout ``metadata``):
        ``train`` is every other fold, ``evaluate`` (and, unlabelled, ``test``) this one.
    label_column, fold_column, filename_column : str, optional
        Column names of the metadata CSV, when not the usual ones.

    Returns
    -------
    dict : the summary also written to ``{setup}_info.json``: layout, dataset
        name and version (TAU split sizes), label set, classes, counts per
        split and device, missing audio count, manifest paths.

    Raises
    ------
    ManifestError
        Anything the readers raise; existing outputs without ``force``
        (nothing is written then).
    ConfigError
        A layout name that is not known; metadata options with another layout.
    """
    out_dir = Path(out_dir)
    if layout not in LAYOUTS:
        raise ConfigError(f"--layout {layout}: not one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = detect_layout(dataset_root, setup=setup or "fold1", metadata=metadata)
    csv_options = {"--metadata": metadata, "--fold": fold, "--label-column": label_column,
                   "--fold-column": fold_column, "--filename-column": filename_column}
    given = [name for name, value in csv_options.items() if value is not None]
    if given and layout != "metadata":
        verb = "applies" if len(given) == 1 else "apply"
        hint = {"folders": " (no folds: hold out an evaluation set with asctool split --valid-split FRACTION, "
                           "docs/own-data.md)",
                "tau": " (its folds are evaluation_setup/foldK_*.csv: --setup foldK)"}.get(layout, "")
        raise ConfigError(f"{dataset_root}: {', '.join(given)} {verb} to a metadata CSV; this is a {layout} "
                          f"layout{hint}")
    if setup is None:
        setup = (f"fold{fold}" if fold is not None else "all") if layout in ("metadata", "folders") else "fold1"
    check_name(setup, what="--setup", error=ManifestError)  # it names the split files and the manifests
    known = read_classes(classes_path)
    splits = _WRITES[layout] if layout != "metadata" or fold is None else SPLITS
    outputs = {name: out_dir / f"{setup}_{name}.tsv" for name in splits}
    if layout == "tau" and (Path(dataset_root) / "meta.csv").is_file():  # read_tau_setup reads it when it is there
        outputs["meta"] = out_dir / "meta.tsv"
    info_path = out_dir / f"{setup}_info.json"
    classes_out = out_dir / f"{setup}_classes.txt"
    # before the (long, logging) read of the layout: an output in the way is the only line said
    claim_outputs([*outputs.values(), info_path, classes_out], force=force, error=ManifestError)
    if layout == "tau":
        clips, info = read_tau_setup(dataset_root, setup=setup, check_audio=check_audio, relative_to=out_dir,
                                     classes=known)
        info["layout"] = "tau"
    elif layout == "eval":
        clips, info = read_eval_set(dataset_root, setup=setup, check_audio=check_audio, relative_to=out_dir)
    elif layout == "metadata":
        clips, info = read_metadata_csv(dataset_root, metadata, fold=fold, label_column=label_column,
                                        fold_column=fold_column, filename_column=filename_column,
                                        check_audio=check_audio, relative_to=out_dir, classes=known)
    else:
        clips, info = read_class_folders(dataset_root, relative_to=out_dir, classes=known)
    info["setup"] = setup
    written = {name: str(path) for name, path in outputs.items()}
    for name, path in outputs.items():
        write_manifest(path, clips[name])
    if info.get("label_set") == "data":
        with atomic_path(classes_out) as tmp:
            tmp.write_text(classes_text(info["known_classes"]), encoding="utf-8")
        info["classes_file"] = str(classes_out)
        log.info("%s: %d classes taken from the data, written to %s: give it as --classes to augment, featurize, "
                 "split and train", dataset_root, len(info["known_classes"]), classes_out)
    with atomic_path(info_path) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return {**info, "manifests": written, "info": str(info_path)}
