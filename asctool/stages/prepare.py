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
from ..io import atomic_path, check_name, claim_outputs
from ..labels import read_classes
from ..manifest import SPLITS, read_tau_setup, write_manifest

__all__ = ["run"]


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
    clips, info = read_tau_setup(dataset_root, setup=setup, check_audio=check_audio, relative_to=out_dir,
                                 classes=known)
    if known is not None:
        info["known_classes"] = known
    outputs = {name: out_dir / f"{setup}_{name}.tsv" for name in SPLITS}
    if "meta" in clips:
        outputs["meta"] = out_dir / "meta.tsv"
    info_path = out_dir / f"{setup}_info.json"
    claim_outputs([*outputs.values(), info_path], force=force, error=ManifestError)
    for name, path in outputs.items():
        write_manifest(path, clips[name])
    with atomic_path(info_path) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return {**info, "manifests": {name: str(path) for name, path in outputs.items()}, "info": str(info_path)}
