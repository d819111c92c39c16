"""The ``asctool train`` stage: a run folder from features files.

Checks every option before anything is written, reads and labels the
features (:mod:`asctool.training.data`, :mod:`asctool.labels`), holds out
validation locations, writes ``RUN/config.json`` and hands over to the
training engine (:func:`asctool.training.trainer.fit`). The run folder layout
is described in :mod:`asctool.runs` and ``docs/train.md``.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import __version__
from ..artifacts import check_same_config, config_diff
from ..provenance import current_command
from ..errors import ConfigError, MismatchError
from ..io import claim_outputs, locked_outputs
from ..labels import read_classes, resolve_label_map
from ..runs import RUN_FILES, check_run_dir, log_to, write_json
from ..training.batch_augment import parse_augment
from ..training.data import clip_ids, hold_out_validation, join_tags, make_clip_set, read_sources
from ..training.pipeline import steps_per_epoch
from ..training.schedule import Schedule, cycle_ends, epochs_for_steps
from ..training.trainer import fit, parse_model_options, resolve_profile

__all__ = ["run"]

log = logging.getLogger(__name__)

#: config.json keys that may differ when resuming.
_RESUME_IGNORED = ("distribute", "command", "created", "asctool_version", "out_dir")


def _read_run_record(path: Path) -> dict[str, Any]:
    """``config.json`` or ``state.json`` of the run to resume: a JSON object, or one line naming the file."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); cannot resume this run (--force starts over)") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{path}: not a JSON object; cannot resume this run (--force starts over)")
    return record


def _prepare_data(train_paths, valid_path, valid_split, labels, seed, known=None, tags=None):
    """Read and check the data; returns (train ClipSet, valid ClipSet or None, classes, map, info).

    With ``tags`` (a TagsFile), every clip's tag vector is joined by id (a clip without tags is an error)."""
    sources = read_sources(train_paths, "training")
    mapping = resolve_label_map(labels)
    clips, classes = make_clip_set(sources, mapping, None, labels_name=labels, known=known)
    if tags is not None:
        clips.tags = join_tags(tags, clip_ids(clips, sources), " + ".join(str(p) for p in train_paths))
    if len(classes) < 2:
        raise ConfigError(
            f"{sources[0].path}: training data has only the class {classes}; at least 2 are needed"
        )
    valid = None
    info: dict[str, Any] = {}
    if valid_path is not None:
        vsources = read_sources([valid_path], "validation")
        vs = vsources[0]
        check_same_config(sources[0].config, vs.config, sources[0].path, vs.path)
        if vs.feature_shape != sources[0].feature_shape:
            raise MismatchError(
                f"{vs.path}: features of shape {vs.feature_shape} differ from "
                f"{sources[0].path}: {sources[0].feature_shape}"
            )
        shared_ids = set(vs.ids) & set(np.concatenate([s.ids for s in sources]))
        if shared_ids:
            raise MismatchError(
                f"{vs.path}: {len(shared_ids)} clip(s) are also training clips (e.g. {sorted(shared_ids)[0]})"
            )
        train_locs = set(np.concatenate([s.locations for s in sources])) - {""}
        shared_locs = train_locs & (set(vs.locations) - {""})
        if shared_locs:
            raise MismatchError(
                f"{vs.path}: {len(shared_locs)} recording location(s) are also in the training data "
                f"(e.g. {sorted(shared_locs)[0]}); validation must come from other locations"
            )
        valid, _ = make_clip_set(vsources, mapping, classes, labels_name=labels, known=known)
        if tags is not None:
            valid.tags = join_tags(tags, clip_ids(valid, vsources), vs.path)
    elif valid_split:
        mask, split_info = hold_out_validation(clips, sources, float(valid_split), seed)
        if not mask.any() or mask.all():
            raise ConfigError(
                f"--valid-split {valid_split}: cannot hold out locations of "
                f"{', '.join(str(s.path) for s in sources)} (every class needs at least 2 locations)"
            )
        valid, clips = clips.subset(mask), clips.subset(~mask)
        info.update(split_info)
    return sources, clips, valid, classes, mapping, info


def _chief_locks(func):
    """``locked_outputs("out_dir")``, except on the non-chief workers of ``--distribute multiworker``:
    they write nothing (``_writer=False``), the chief alone holds the run folder."""
    locked = locked_outputs("out_dir")(func)  # one writer per run folder (docs/reliability.md)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if kwargs.get("distribute") == "multiworker":
            from ..training.distributed import worker_role

            if not worker_role().is_chief:
                return func(*args, _writer=False, **kwargs)
        return locked(*args, **kwargs)

    return wrapper


@_chief_locks
def run(
    train_paths: Sequence[str | os.PathLike],
    model_name: str,
    out_dir: str | os.PathLike,
    *,
    labels: str = "scene",
    valid_path: str | os.PathLike | None = None,
    valid_split: float | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    profile: str = "paper",
    width: float | None = None,
    model_options: Sequence[str] | Mapping[str, Any] | None = None,
    snapshots: int = 0,
    distribute: str = "none",
    resume: bool = False,
    seed: int = 0,
    force: bool = False,
    augment: str | None = "auto",
    crop: int | None = None,
    classes_path: str | os.PathLike | None = None,
    early_stopping: bool | None = None,
    patience: int | None = None,
    unlabelled_paths: Sequence[str | os.PathLike] = (),
    adversarial: str | None = None,
    domain: str = "device",
    grl_weight: float = 1.0,
    grl_ramp: bool = False,
    tri_training: bool = False,
    orthogonality: float = 1.0,
    task: str = "scene",
    tags_path: str | os.PathLike | None = None,
    tag_fusion: str | None = None,
    grid: bool = False,
    _interrupt_at_step: int | None = None,
    _writer: bool = True,
) -> dict[str, Any]:
    """Train a model on features files and write a run folder.

    Parameters
    ----------
    train_paths : sequence of path
        Training features files (same front-end config and shape).
    model_name : str
        Registry name (``asctool models``).
    out_dir : path
        Run folder (see the module docstring for its content).
    labels : str
        ``scene``, ``coarse`` (packaged 3-class map) or a TSV ``scene<TAB>label``.
        Classes are sorted alphabetically.
    valid_path : path, optional
        Validation features (from the training side, other locations).
    valid_split : float, optional
        Hold out this fraction of each class's recording locations instead
        (by class when the clips have no location). None: the profile's
        (``cpu``: 0.2; others: no validation); 0: no validation.
    epochs, batch_size, width : optional
        Override the profile's values.
    profile : {"paper", "demo", "cpu"}
    model_options : ``KEY=VALUE`` strings or a dict
        Extra builder options (e.g. ``base_filters=24``).
    snapshots : int
        Average the weights of the last K cycle-end snapshots into model.keras
        (0: keep the best/last epoch).
    distribute : {"none", "mirrored", "multiworker"}
        ``mirrored``: ``tf.distribute.MirroredStrategy`` over all GPUs, or
        all logical CPUs when there is no GPU. ``multiworker``:
        ``MultiWorkerMirroredStrategy`` over the workers of ``TF_CONFIG`` or of
        an ``srun`` step (:mod:`asctool.training.distributed`); every worker
        runs the same command, only worker 0 writes ``out_dir``.
    resume : bool
        Continue the run in ``out_dir`` from its last checkpoint.
    seed : int
        Seeds weights, shuffling, augmentation, dropout and the validation split.
    force : bool
        Start over in a folder that holds a run (its run files are removed).
    augment : str
        ``auto`` (reference choices), ``none`` or a comma-separated subset of
        ``specaugment,crop,mixup,swap``.
    crop : int, optional
        Crop length in frames (0: no crop; default 400 for 1a-shaped input).
    classes_path : path, optional
        The data set's own scenes, one per line (``--classes FILE``); default:
        the classes each features file records (``featurize --classes``), else
        the DCASE scenes or coarse classes. A scene outside them is an error.
    early_stopping : bool, optional
        Stop at the first cycle end ``patience`` epochs after the best
        validation epoch (``epochs`` is then the maximum); default: the profile's.
    patience : int, optional
        Epochs without improvement before early stopping (default: the profile's).
    unlabelled_paths : sequence of path
        Features files without scene labels (``--unlabelled``), for the domain
        classifier and the tri-training labellers (docs/adversarial.md).
    adversarial : {"whole", "time"}, optional
        Add a domain classifier behind a gradient reversal layer on the
        backbone's feature map: on the pooled clip representation or on every frame.
    domain : {"device", "source", "set"}
        The domain labels: device, device ``a`` vs the rest, labelled vs unlabelled.
    grl_weight : float
        α of the gradient reversal; ``grl_ramp``: raised from 0 with the DANN ramp.
    tri_training : bool
        Train two labellers F1, F2 beside the backbone's head (phase 1 of
        tri-training; ``asctool pseudo-label`` then uses ``RUN/labellers.keras``).
    orthogonality : float
        λ of the labellers' orthogonality penalty.
    task : {"scene", "tagging"}
        ``tagging``: a multi-label audio tagger from the features' event labels
        (:func:`asctool.training.tagging.train_tagger`; sigmoid outputs, binary
        cross-entropy); the scene-only options must stay at their defaults.
    tags_path : path, optional
        A tags file (``asctool tag``) holding every training and validation clip
        (joined by id); needs ``tag_fusion``.
    tag_fusion : str, optional
        ``codecat``, ``concat``, ``concat:K``, ``attention:H,K`` or
        ``both:H,K[,shared|separate]`` (:mod:`asctool.models.tag_fusion`; Jung et
        al., Interspeech 2020); the model file records the tagger and tag names.
    grid : bool
        mlp on embeddings: choose learning rate x weight decay on validation
        (:mod:`asctool.training.frames`, which trains the mlp and the linear back-ends).

    Returns
    -------
    dict
        Summary: run folder, model file, epochs, steps, classes, clip counts,
        best epoch and validation accuracy, final training loss and accuracy.

    Raises
    ------
    AsctoolError
        Bad or inconsistent inputs (nothing is written then).
    """
    out_dir = Path(out_dir)
    train_paths = [Path(p) for p in (train_paths if not isinstance(train_paths, (str, os.PathLike)) else [train_paths])]
    if not train_paths:
        raise ConfigError("train: give at least one --train features file")
    if valid_path is not None and valid_split:
        raise ConfigError("--valid and --valid-split exclude each other")
    if snapshots < 0:
        raise ConfigError(f"--snapshots {snapshots}: must be >= 0")
    if int(seed) < 0:
        raise ConfigError(f"--seed {seed}: must be >= 0")
    unlabelled_paths = [Path(p) for p in unlabelled_paths]
    if unlabelled_paths or adversarial is not None or tri_training:
        from ..training import adversarial as _adv

        _adv.check_options(unlabelled=unlabelled_paths, adversarial=adversarial, domain=domain,
                           grl_weight=grl_weight, grl_ramp=grl_ramp, tri_training=tri_training,
                           orthogonality=orthogonality)
    fusion_mode = None
    if (tags_path is None) != (tag_fusion is None):
        raise ConfigError("--tags and --tag-fusion go together")
    if tag_fusion is not None:
        from ..models.tag_fusion import parse_fusion

        fusion_mode = parse_fusion(tag_fusion)
        if task != "scene" or unlabelled_paths or adversarial is not None or tri_training:
            raise ConfigError("--tags: scene training only, without --unlabelled/--adversarial/--tri-training")
    if distribute == "multiworker" and (unlabelled_paths or adversarial is not None or tri_training
                                        or tag_fusion is not None or task != "scene"):
        raise ConfigError("--distribute multiworker: plain scene training only (not with --unlabelled, "
                          "--adversarial, --tri-training, --tags or --task tagging)")
    claim_outputs(folders=[out_dir], inputs=[*train_paths, valid_path, *unlabelled_paths, tags_path])
    if _writer:
        check_run_dir(out_dir, resume=resume, force=force)
    from ..training.frames import route, train_shallow

    if route(train_paths[0], model_name) is not None:  # mlp on embedding frames, linear back-ends
        if (snapshots or distribute != "none" or crop is not None or width is not None or augment not in ("auto", "none")
                or early_stopping is not None or patience is not None or unlabelled_paths or adversarial
                or tri_training or tags_path is not None):
            raise ConfigError(f"--snapshots, --distribute, --crop, --width, --augment, --early-stopping, --patience, "
                              f"--unlabelled, --adversarial, --tri-training and --tags: not for {model_name}")
        return train_shallow(train_paths, model_name, out_dir, labels=labels, valid_path=valid_path,
                             valid_split=valid_split, epochs=epochs, batch_size=batch_size, profile=profile,
                             model_options=model_options, seed=seed, force=force, resume=resume,
                             classes_path=classes_path, grid=grid)
    if grid:
        raise ConfigError(f"--grid: only for the mlp on embeddings, not {model_name}")

    from ..models import check_options, spec

    model_spec = spec(model_name)  # unknown names fail here, before any data is read
    options = parse_model_options(model_options)
    if "width" in options:
        raise ConfigError("--option width=...: use --width")
    check_options(model_name, options)  # names and values (the builder checks them after config.json is written)
    known = read_classes(classes_path)
    resolved = resolve_profile(profile, model_name, epochs=epochs, batch_size=batch_size, width=width,
                               early_stopping=early_stopping, patience=patience)
    if valid_split is None and valid_path is None:
        valid_split = resolved["valid_split"]
    if task == "tagging":  # multi-label event tagging: its own engine (asctool.training.tagging, docs/tag.md)
        from ..training.tagging import refuse_scene_options, train_tagger

        refuse_scene_options(labels=labels, snapshots=snapshots, distribute=distribute,
                             augment=augment, crop=crop, classes=classes_path, unlabelled=tuple(unlabelled_paths),
                             adversarial=adversarial, tri_training=tri_training, tags=tags_path, tag_fusion=tag_fusion)
        return train_tagger(train_paths, model_name, out_dir, valid_path=valid_path, valid_split=valid_split,
                            epochs=resolved["epochs"], batch_size=resolved["batch_size"], width=resolved["width"],
                            options=options, seed=int(seed), force=force, bn_momentum=resolved["bn_momentum"],
                            resume=resume, early_stopping=resolved["early_stopping"], patience=resolved["patience"])
    if task != "scene":
        raise ConfigError(f"--task {task!r}: choose scene or tagging")
    tags = None
    if tags_path is not None:
        from ..tagsfile import read_tags

        tags = read_tags(tags_path)
        info_tags = {"mode": str(fusion_mode), "tags": str(tags_path), **tags.identity}
    sources, clips, valid, classes, mapping, info = _prepare_data(train_paths, valid_path, valid_split,
                                                                  labels, seed, known, tags)
    if known is not None:
        info["known_classes"] = known
    adversarial_setup = None
    if unlabelled_paths or adversarial is not None or tri_training:
        clips, facts = _adv.attach_unlabelled(clips, sources, unlabelled_paths, num_classes=len(classes),
                                              adversarial=adversarial, domain=domain)
        adversarial_setup = {"unlabelled": [str(p) for p in unlabelled_paths], "head": adversarial,
                             "domain": domain if adversarial else None, "grl_weight": float(grl_weight),
                             "grl_ramp": bool(grl_ramp), "tri_training": bool(tri_training),
                             "orthogonality": float(orthogonality) if tri_training else 0.0, **facts}
    if resolved["early_stopping"] and valid is None:
        raise ConfigError("early stopping needs validation data: give --valid FILE or --valid-split F "
                          "(or --no-early-stopping)")
    if "width" in model_spec.defaults:
        options_all = {"width": resolved["width"], **options}
    else:
        if resolved["width"] != 1.0:
            log.warning("model %s has no width option; --width %s ignored", model_name, resolved["width"])
        options_all = dict(options)
    input_shape = tuple(int(s) for s in clips.feature_shape)
    aug = parse_augment(augment, crop, input_shape, auto_off=resolved["augment_auto_off"],
                        auto_crop=resolved["crop"], params=resolved["augment_params"])
    batch = min(resolved["batch_size"], len(clips))
    spe = steps_per_epoch(len(clips), batch)
    if resolved["min_steps"]:   # the cpu profile's budget in steps (docs/train.md, "Profiles")
        budget = epochs_for_steps(resolved["epochs"], spe, resolved["min_steps"])
        if budget != resolved["epochs"]:
            if patience is None:   # the profile's patience stretches with its budget: the same share of the run
                resolved["patience"] = -(-resolved["patience"] * budget // resolved["epochs"])
            log.info("profile %s: %d steps per epoch, so up to %d epochs (at least %d SGD steps; --epochs N sets "
                     "the budget), patience %d", profile, spe, budget, resolved["min_steps"], resolved["patience"])
        resolved["epochs"] = budget
    schedule = Schedule(end_epoch=resolved["epochs"])   # the last cycle ends with the run
    snap_epochs = set(cycle_ends(resolved["epochs"], schedule)) if snapshots else set()

    config: dict[str, Any] = {
        "train": [str(p) for p in train_paths],
        "model": model_name,
        "model_options": options_all,
        "labels": labels,
        "label_map": mapping,
        "classes": classes,
        "valid": None if valid_path is None else str(valid_path),
        "valid_split": valid_split or None,
        **info,
        "profile": profile,
        "epochs": resolved["epochs"],
        "batch_size": batch,
        "width": resolved["width"],
        "bn_momentum": resolved["bn_momentum"],
        "early_stopping": resolved["early_stopping"],
        "patience": resolved["patience"] if resolved["early_stopping"] else None,
        "best_at_cycle_ends": resolved["best_at_cycle_ends"],
        "snapshots": int(snapshots),
        "seed": int(seed),
        "augment_option": augment,
        "augment": aug.to_dict(),
        "crop": aug.crop,
        "input_shape": list(input_shape),
        "train_input_shape": [input_shape[0], aug.output_time(input_shape[1]), input_shape[2]],
        **({"tag_fusion": info_tags} if tags is not None else {}),
        "frontend_config": sources[0].config,
        "schedule": schedule.to_dict(),
        "steps_per_epoch": spe,
        "n_train": len(clips),
        **({"adversarial": adversarial_setup,
            "train_targets": len(adversarial_setup["domains"]) * (len(classes) + 1)} if adversarial_setup else {}),
        "n_valid": 0 if valid is None else len(valid),
        "distribute": distribute,
        "out_dir": str(out_dir),
        "asctool_version": __version__,
        "command": current_command(),
        "created": _dt.datetime.now(tz=_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    config = json.loads(json.dumps(config, default=str))  # as it will read back

    state: dict[str, Any] = {"epoch": 0, "steps": 0, "checkpoint": None, "best_val_accuracy": None,
                             "best_epoch": None, "snapshots": [], "history": [],
                             "rng": {"seed": int(seed), "note": "shuffle, augmentation and dropout "
                                     "draws are derived from (seed, epoch)"}}
    if resume:
        stored = _read_run_record(out_dir / "config.json")
        diffs = config_diff({k: v for k, v in stored.items() if k not in _RESUME_IGNORED},
                            {k: v for k, v in config.items() if k not in _RESUME_IGNORED})
        if diffs:
            raise MismatchError(
                f"{out_dir / 'config.json'}: cannot resume, the configuration differs: " + "; ".join(diffs)
            )
        config["created"] = stored.get("created", config["created"])
        if (out_dir / "state.json").is_file():
            state = _read_run_record(out_dir / "state.json")
    elif _writer:
        if force:
            for name in RUN_FILES:
                target = out_dir / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "config.json", config)

    engine = fit
    if distribute == "multiworker":   # Keras's fit fails under that strategy: a loop of its own
        from ..training.distributed import fit_multiworker as engine
    with log_to(out_dir / "train.log") if _writer else contextlib.nullcontext():
        return engine(config=config, state=state, out_dir=out_dir, clips=clips, valid=valid, aug=aug,
                      options_all=options_all, spe=spe, schedule=schedule, snap_epochs=snap_epochs,
                      interrupt_at_step=_interrupt_at_step)


