"""``asctool fuse``: two-stage fusion of fine and coarse scores, joined by clip id.

Reads a fine-class and a coarse-class scores file of the same clips (and,
to choose the coarse weight, labelled validation scores of both stages),
combines them with a registered fusion method
(:func:`asctool.fusion.fusion_method`: ``two-stage``, the score product) and
writes one fine-class scores file. See ``docs/fuse.md``.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts import Scores, check_same_classes, read_scores, write_scores
from ..errors import ConfigError, MismatchError
from ..fusion import (DEFAULT_WEIGHT_GRID, check_weight, get_fusion_method, join_scores, merge_meta, oracle_gating,
                      parent_index, parse_weight_grid, refuse_overwriting_inputs, refuse_same_files,
                      refuse_shared_ids, select_coarse_weight)
from ..io import claim_outputs, locked_outputs
from ..scoring import accuracy, carried_label_map, log_loss, reference_indices

__all__ = ["run"]

log = logging.getLogger(__name__)


def _hierarchy(hierarchy: str | os.PathLike | None, f: Scores, c: Scores) -> tuple[dict[str, str], str]:
    """The fine -> coarse map: ``--hierarchy FILE``; else the map the coarse scores carry (their model's
    ``train --labels``) when it gives every fine class a parent; else the packaged DCASE 2020 map, when
    the fine classes are its scenes."""
    from ..labels import packaged_hierarchy, read_label_map

    if hierarchy is not None:
        return read_label_map(hierarchy), str(hierarchy)
    carried = carried_label_map(c.attrs, c.path)
    if carried is not None and all(k in carried for k in f.classes):
        return carried, f"the label map {c.path} carries (its model's --labels)"
    packaged = packaged_hierarchy()
    outside = [k for k in f.classes if k not in packaged]
    if outside and not set(f.classes) & (set(packaged) | set(packaged.values())):  # (DCASE classes: checked below)
        raise MismatchError(
            f"{f.path}: fine class(es) {', '.join(outside[:5])}{', ...' if len(outside) > 5 else ''} are not "
            "DCASE 2020 scenes, and the coarse scores carry no label map that covers them: give each fine class "
            "its coarse class with --hierarchy FILE (a TSV fine<TAB>coarse)"
        )
    return packaged, "the packaged DCASE 2020 hierarchy"


def _load_pair(fine: Path, coarse: Path) -> tuple[Scores, Scores]:
    f = read_scores(fine)
    return f, join_scores(f, read_scores(coarse))


def _fine_scenes(f: Scores, c: Scores) -> np.ndarray | None:
    """Reference scenes of a fine/coarse pair: the fine file's, else the coarse file's
    when they name fine classes (a coarse file may carry coarse labels instead)."""
    for s in (f, c):
        if s.scenes is not None and any(str(v) for v in s.scenes):
            if s is f or all(str(v) in f.classes for v in s.scenes):
                return np.asarray([str(v) for v in s.scenes], dtype=object)
    return None


@locked_outputs("out")  # one writer per output (docs/reliability.md)
def run(
    fine: str | os.PathLike,
    coarse: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str = "two-stage",
    hierarchy: str | os.PathLike | None = None,
    coarse_weight: float | None = None,
    choose_weight_on: Sequence[str | os.PathLike] | None = None,
    weight_grid: str | Sequence[float] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Two-stage fusion of fine and coarse scores, joined by clip id.

    Parameters
    ----------
    fine : fine-class scores (K classes, e.g. the 10 DCASE scenes)
    coarse : coarse-class scores (M classes, e.g. 3) of the same clips, any row order
    out : scores file to write (fine classes, clips in the order of ``fine``)
    method : a registered fusion method (``two-stage``: p(fine) proportional
        to p_fine * p_coarse(parent) ** coarse_weight)
    hierarchy : TSV ``fine<TAB>coarse``; default the label map the coarse
        scores carry (their model's ``train --labels``) when it covers the
        fine classes, else the packaged DCASE 2020 map (for DCASE scenes only).
        It must give every fine class one parent among the coarse classes.
    coarse_weight : exponent ``w`` on the coarse probabilities (>= 0; 1 is the
        reference system's fusion, 0 is the fine stage alone). None means 1,
        or the value chosen with ``choose_weight_on``.
    choose_weight_on : ``(valid_fine, valid_coarse)``: labelled validation
        scores of the two stages (sharing no clip with ``fine``); the weight of
        ``weight_grid`` with the best fused validation accuracy is used.
    weight_grid : weights to try, a sequence or comma-separated text
        (default :data:`asctool.fusion.DEFAULT_WEIGHT_GRID`)
    force : overwrite an existing ``out``

    Returns
    -------
    dict
        ``out``, ``clips``, ``coarse_weight``, the weight selection table when
        chosen, and, when the clips are labelled, ``accuracy`` of ``fine``
        alone, ``coarse`` (the coarse stage on the parents), ``fused`` and
        ``oracle_gating`` (p_fine restricted to the true parent's children:
        the ceiling a perfect coarse stage would give).

    Raises
    ------
    ConfigError
        Bad options, an unknown method, choosing the weight on the fused scores.
    MismatchError
        Different clips, a hierarchy that does not fit the class lists; no
        ``hierarchy`` for fine classes that are not DCASE scenes (the message
        names ``--hierarchy FILE``).
    """
    fine, coarse, out = Path(fine), Path(coarse), Path(out)
    fuse = get_fusion_method(method).func
    if choose_weight_on is not None and coarse_weight is not None:
        raise ConfigError("give either --coarse-weight or --choose-weight-on, not both")
    if choose_weight_on is not None and len(choose_weight_on) != 2:
        raise ConfigError("--choose-weight-on needs two files: VALID_FINE.h5 VALID_COARSE.h5")
    valid_paths = [Path(p) for p in (choose_weight_on or ())]
    refuse_overwriting_inputs(out, [fine, coarse, *valid_paths])
    claim_outputs([out], force=force, inputs=[hierarchy])
    f, c = _load_pair(fine, coarse)
    mapping, hierarchy_name = _hierarchy(hierarchy, f, c)
    parents = parent_index(f.classes, c.classes, mapping, hierarchy_name=hierarchy_name, coarse_name=str(coarse),
                           fine_name=str(fine))
    unused = [k for i, k in enumerate(c.classes) if i not in set(parents.tolist())]
    if unused:
        log.warning("%s: coarse class(es) %s have no fine class in %s", coarse, ", ".join(unused), hierarchy_name)
    scenes = _fine_scenes(f, c)
    devices = merge_meta(f, [c], "devices")
    summary: dict[str, Any] = {"out": str(out), "clips": len(f)}
    attrs: dict[str, Any] = {
        "method": method,
        "fine": str(fine),
        "coarse": str(coarse),
        "hierarchy": json.dumps({k: mapping[k] for k in f.classes}),
    }
    if choose_weight_on is not None:
        refuse_same_files(valid_paths, [fine, coarse], "the coarse weight")
        vf, vc = _load_pair(*valid_paths)
        check_same_classes(f.classes, vf.classes, fine, vf.path)
        check_same_classes(c.classes, vc.classes, coarse, vc.path)
        refuse_shared_ids([vf, vc], [f, c], "the coarse weight")
        v_ref = reference_indices(_fine_scenes(vf, vc), vf.classes, vf.path)
        if v_ref is None:
            raise ConfigError(f"{vf.path}: validation scores have no reference labels to choose the weight on")
        grid = parse_weight_grid(DEFAULT_WEIGHT_GRID if weight_grid is None else weight_grid)
        weight, table = select_coarse_weight(vf.scores, vc.scores, parents, v_ref, grid, method=method)
        summary["weight_selection"] = {"fine": str(valid_paths[0]), "coarse": str(valid_paths[1]),
                                       "clips": len(vf), "grid": table, "chosen": weight}
        attrs["coarse_weight_selection"] = json.dumps(summary["weight_selection"])
        log.info("coarse weight %g chosen on %s", weight, valid_paths[0])
    else:
        weight = 1.0 if coarse_weight is None else check_weight(coarse_weight)
    fused = fuse(f.scores, c.scores, parents, weight)
    summary["coarse_weight"] = weight
    attrs["coarse_weight"] = weight
    reference = reference_indices(scenes, f.classes, fine)
    if reference is not None:
        summary["accuracy"] = {
            "fine": accuracy(reference, f.scores.argmax(axis=1)),
            "coarse": accuracy(parents[reference], c.scores.argmax(axis=1)),
            "fused": accuracy(reference, fused.argmax(axis=1)),
            "oracle_gating": accuracy(reference, oracle_gating(f.scores, parents, reference)),
        }
        summary["log_loss"] = {"fine": log_loss(reference, f.scores), "fused": log_loss(reference, fused)}
    write_scores(out, ids=f.ids, scores=fused, classes=f.classes, scenes=scenes, devices=devices,
                 inputs=[fine, coarse, *valid_paths], extra_attrs=attrs)
    log.info("wrote %s (%s fusion, coarse weight %g, %d clips)", out, method, weight, len(f))
    return summary
