"""The ``asctool prepare`` stage: manifests of one evaluation setup of a TAU dataset.

Reads the layout with :func:`asctool.manifest.read_tau_setup` and writes,
atomically, ``{setup}_train.tsv``, ``{setup}_evaluate.tsv``,
``{setup}_test.tsv``, ``meta.tsv`` (when meta.csv exists) and
``{setup}_info.json`` to the output folder.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ManifestError
from ..io import atomic_path, check_name, claim_outputs, locked_outputs
from ..labels import read_classes
from ..manifest import SPLITS, read_tau_setup, write_manifest

__all__ = ["run"]


@locked_outputs("out_dir")  # one writer per output (docs/reliability.md)
def run(
    dataset_root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    setup: str = "fold1",
    check_audio: bool = True,
    force: bool = False,
    classes_path: str | os.PathLike | None = None,
) -> dict:
    """Read a TAU dataset layout and write manifests for one evaluation setup.

    Paths in the manifests are relative to ``out_dir``; see
    :func:`asctool.manifest.read_tau_setup` for what is read and checked.
    Every label must be a DCASE scene or coarse class, or one of the classes
    listed in ``classes_path`` (one per line; ``--classes FILE``).

    Returns
    -------
    dict : the summary also written to ``{setup}_info.json``: dataset name and
        version matched by the split sizes, label set, classes, counts per
        split and device, location counts, missing audio count, manifest paths.

    Raises
    ------
    ManifestError
        Anything :func:`~asctool.manifest.read_tau_setup` raises; existing
        outputs without ``force`` (nothing is written then).
    """
    out_dir = Path(out_dir)
    check_name(setup, what="--setup", error=ManifestError)  # it names the split files and the manifests
    known = read_classes(classes_path)
    outputs = {name: out_dir / f"{setup}_{name}.tsv" for name in SPLITS}
    if (Path(dataset_root) / "meta.csv").is_file():  # read_tau_setup reads it when it is there
        outputs["meta"] = out_dir / "meta.tsv"
    info_path = out_dir / f"{setup}_info.json"
    # before the (long, logging) read of the layout: an output in the way is the only line said
    claim_outputs([*outputs.values(), info_path], force=force, error=ManifestError)
    clips, info = read_tau_setup(dataset_root, setup=setup, check_audio=check_audio, relative_to=out_dir,
                                 classes=known)
    if known is not None:
        info["known_classes"] = known
    for name, path in outputs.items():
        write_manifest(path, clips[name])
    with atomic_path(info_path) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return {**info, "manifests": {name: str(path) for name, path in outputs.items()}, "info": str(info_path)}
