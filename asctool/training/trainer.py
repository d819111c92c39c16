"""The ``asctool train`` stage: a run folder from features files.

Run folder layout (``--out-dir RUN``)::

    RUN/config.json        everything train was given, plus model, classes,
                           labels, frontend_config, input_shape, seed, the
                           effective profile values and the augmentation
    RUN/model.keras        best epoch by validation accuracy (the last epoch
                           without validation; the snapshot average with
                           --snapshots K)
    RUN/last.keras         the model after the last epoch
    RUN/history.tsv        one row per epoch: epoch lr loss accuracy val_loss val_accuracy
    RUN/train.log          the log of every session of this run
    RUN/state.json         resume state: completed epochs, steps, best, history
    RUN/checkpoint/        epoch-NNNN.keras: model + optimizer of the last completed epoch
    RUN/snapshots/         epoch-NNNN.weights.h5 at cycle ends (with --snapshots)

A killed run continues with ``--resume`` at the epoch after its last
checkpoint; the learning rate is a pure function of the global step and the
shuffling, augmentation and dropout draws are seeded by (seed, epoch), so the
resumed run ends exactly where an uninterrupted one would.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import __version__
from ..artifacts import check_same_config, config_diff, current_command
from ..io import atomic_path
from ..errors import ConfigError, MismatchError
from .batch_augment import AugmentConfig, parse_augment
from .data import ClipSet, clip_locations, make_clip_set, read_sources, resolve_label_map, split_by_location
from .pipeline import eval_dataset, steps_per_epoch, train_dataset
from .schedule import Schedule, cycle_ends, learning_rate

__all__ = ["train", "PROFILES", "resolve_profile", "parse_model_options", "RUN_FILES",
           "SimulatedKill"]

log = logging.getLogger(__name__)

#: Training profiles: ``paper`` is the reference system, ``demo`` a quick CPU run.
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {"batch_size": 32, "epochs": 254, "epochs_resnet": 126, "width": 1.0, "bn_momentum": 0.99,
              "augment_auto_off": ()},
    "demo": {"batch_size": 16, "epochs": 6, "width": 0.125, "bn_momentum": 0.9,
             "augment_auto_off": ("specaugment", "mixup")},
}
# bn_momentum: the moving-average momentum of every batch normalisation layer.
# 0.99 is the Keras default the reference used over ~100,000 steps; a demo run
# of a few hundred steps needs faster-moving statistics to evaluate sensibly.
# augment_auto_off: augmentations that --augment auto leaves out. SpecAugment and
# mixup regularise for long runs on large sets; on the demo data (240 clips,
# 6 epochs) they cost accuracy (evaluate split 0.21 with them, 0.38 with the crop
# only, one seed each; see docs/train.md). --augment NAMES turns them back on.

#: Files and folders train writes into a run folder (removed by --force).
RUN_FILES = ("config.json", "model.keras", "last.keras", "history.tsv", "train.log", "state.json",
             "checkpoint", "snapshots")

#: config.json keys that may differ when resuming.
_RESUME_IGNORED = ("distribute", "command", "created", "asctool_version", "out_dir")

HISTORY_COLUMNS = ("epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy")


class SimulatedKill(BaseException):
    """Raised by the testing hook ``_interrupt_at_step`` to stop a run as a kill would."""


def resolve_profile(profile: str, model: str, *, epochs: int | None = None,
                    batch_size: int | None = None, width: float | None = None) -> dict[str, Any]:
    """Effective epochs, batch size and width: the profile's, overridden where given.

    Parameters
    ----------
    profile : {"paper", "demo"}
    model : str
        Model name; ``paper`` trains ``resnet*`` for 126 epochs, others for 254.
    epochs, batch_size, width : optional overrides.

    Returns
    -------
    dict with ``epochs``, ``batch_size``, ``width``, ``bn_momentum`` and
    ``augment_auto_off`` (augmentations that ``--augment auto`` leaves out).
    """
    if profile not in PROFILES:
        raise ConfigError(f"--profile {profile!r}: choose from {', '.join(PROFILES)}")
    values = PROFILES[profile]
    default_epochs = values["epochs"]
    if model.startswith("resnet") and "epochs_resnet" in values:
        default_epochs = values["epochs_resnet"]
    resolved = {
        "epochs": int(epochs if epochs is not None else default_epochs),
        "batch_size": int(batch_size if batch_size is not None else values["batch_size"]),
        "width": float(width if width is not None else values["width"]),
        "bn_momentum": float(values["bn_momentum"]),
        "augment_auto_off": list(values["augment_auto_off"]),
    }
    if resolved["epochs"] < 1 or resolved["batch_size"] < 1 or not resolved["width"] > 0:
        raise ConfigError(f"epochs, batch size and width must be positive, got {resolved}")
    return resolved


def parse_model_options(options: Sequence[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``("key=value", ...)`` -> dict (values stay strings; the registry converts them)."""
    if not options:
        return {}
    if isinstance(options, Mapping):
        return dict(options)
    parsed: dict[str, Any] = {}
    for item in options:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {item!r}: expected KEY=VALUE")
        parsed[key.strip().replace("-", "_")] = value.strip()
    return parsed


# --------------------------------------------------------------------------
# small file helpers
# --------------------------------------------------------------------------
def _write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def _write_history(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    def fmt(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.6g}"
        return str(value)

    with atomic_path(path) as tmp:
        lines = ["\t".join(HISTORY_COLUMNS)]
        lines += ["\t".join(fmt(row.get(c)) for c in HISTORY_COLUMNS) for row in rows]
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _quiet_numpy_copy_warning():
    """Silence the NumPy 2 ``__array__ ... copy`` DeprecationWarning raised inside Keras saving."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*__array__.*copy")
        yield


def _export_model(model, path: Path) -> None:
    """Save ``model``'s architecture and weights (no optimizer) to ``path`` atomically."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    with atomic_path(path) as tmp, _quiet_numpy_copy_warning():
        clone.save(tmp)


def _copy_atomic(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _save_checkpoint(model, path: Path) -> None:
    """Save model and optimizer state to ``path`` atomically."""
    with atomic_path(path) as tmp, _quiet_numpy_copy_warning():
        model.save(tmp)


def _set_bn_momentum(model, momentum: float) -> None:
    """Set the moving-average momentum of every BatchNormalization layer (saved with the model)."""
    import keras

    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
        stack.extend(getattr(layer, "layers", []))


def _seed_variables(model) -> list:
    """State variables of the model's random-seed generators (dropout)."""
    return [v for v in model.variables if "seed_generator_state" in v.path]


@contextlib.contextmanager
def _log_to(path: Path):
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("asctool")
    previous = root.level
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


def _strategy(distribute: str):
    import tensorflow as tf

    if distribute == "none":
        return tf.distribute.get_strategy()
    if distribute == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        log.info("MirroredStrategy over %s", ", ".join(devices))
        return tf.distribute.MirroredStrategy(devices=devices)
    raise ConfigError(f"--distribute {distribute!r}: choose none or mirrored")


# --------------------------------------------------------------------------
# the training callback
# --------------------------------------------------------------------------
def _make_callback(*, run_dir: Path, state: dict, spe: int, epochs: int, seed: int, schedule: Schedule,
                   snapshot_epochs: set[int], has_valid: bool, advance, interrupt_at_step: int | None):
    import keras

    class RunCallback(keras.callbacks.Callback):
        """Sets the learning rate every batch; checkpoints, logs and keeps the best each epoch."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.started = time.perf_counter()
            variables = _seed_variables(self.model)
            if variables:
                draws = np.random.default_rng([seed, epoch, 0xD50]).integers(
                    0, 2**31 - 1, size=(len(variables), 2), dtype=np.int64)
                for variable, draw in zip(variables, draws):
                    variable.assign(draw.astype(variable.dtype))

        def on_train_batch_begin(self, batch, logs=None):
            step = self.epoch * spe + batch
            if interrupt_at_step is not None and step >= interrupt_at_step:
                raise SimulatedKill(f"simulated kill at step {step}")
            self.model.optimizer.learning_rate = learning_rate(step, spe, schedule)

        def on_train_batch_end(self, batch, logs=None):
            advance(1)

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            row = {
                "epoch": epoch,
                "lr": learning_rate(epoch * spe, spe, schedule),
                "loss": float(logs.get("loss", float("nan"))),
                "accuracy": float(logs.get("accuracy", float("nan"))),
                "val_loss": float(logs["val_loss"]) if "val_loss" in logs else None,
                "val_accuracy": float(logs["val_accuracy"]) if "val_accuracy" in logs else None,
            }
            state["history"].append(row)
            message = (f"epoch {epoch + 1}/{epochs} lr {row['lr']:.5f} loss {row['loss']:.4f} "
                       f"accuracy {row['accuracy']:.4f}")
            if has_valid:
                message += f" val_loss {row['val_loss']:.4f} val_accuracy {row['val_accuracy']:.4f}"
                if state["best_val_accuracy"] is None or row["val_accuracy"] > state["best_val_accuracy"]:
                    state["best_val_accuracy"] = row["val_accuracy"]
                    state["best_epoch"] = epoch
                    _export_model(self.model, run_dir / "model.keras")
                    message += " (best)"
            log.info("%s (%.1f s)", message, time.perf_counter() - self.started)
            done = epoch + 1
            if done in snapshot_epochs:
                snap = run_dir / "snapshots" / f"epoch-{done:04d}.weights.h5"
                snap.parent.mkdir(exist_ok=True)
                tmp = snap.with_name(f"epoch-{done:04d}.tmp-{os.getpid()}.weights.h5")
                with _quiet_numpy_copy_warning():
                    self.model.save_weights(tmp)   # Keras wants the .weights.h5 suffix
                os.replace(tmp, snap)
                state["snapshots"].append(snap.name)
            checkpoint = run_dir / "checkpoint" / f"epoch-{done:04d}.keras"
            checkpoint.parent.mkdir(exist_ok=True)
            _save_checkpoint(self.model, checkpoint)
            state.update(epoch=done, steps=done * spe, checkpoint=checkpoint.name)
            _write_json(run_dir / "state.json", state)
            _write_history(run_dir / "history.tsv", state["history"])
            for old in checkpoint.parent.glob("epoch-*.keras"):
                if old.name != checkpoint.name:
                    old.unlink()

    return RunCallback()


# --------------------------------------------------------------------------
# the stage
# --------------------------------------------------------------------------
def _prepare_data(train_paths, valid_path, valid_split, labels, seed):
    """Read and check the data; returns (train ClipSet, valid ClipSet or None, classes, map, info)."""
    sources = read_sources(train_paths, "training")
    mapping = resolve_label_map(labels)
    clips, classes = make_clip_set(sources, mapping, None, labels_name=labels)
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
        valid, _ = make_clip_set(vsources, mapping, classes, labels_name=labels)
    elif valid_split:
        locations = np.concatenate([clip_locations(s) for s in sources])
        mask, held = split_by_location(clips, locations, float(valid_split), seed)
        if not mask.any() or mask.all():
            raise ConfigError(
                f"--valid-split {valid_split}: cannot hold out locations of "
                f"{', '.join(str(s.path) for s in sources)} (every class needs at least 2 locations)"
            )
        valid, clips = clips.subset(mask), clips.subset(~mask)
        info["valid_locations"] = held
    return sources, clips, valid, classes, mapping, info


def _check_run_dir(out_dir: Path, *, resume: bool, force: bool) -> None:
    present = [name for name in RUN_FILES if (out_dir / name).exists()]
    if resume and force:
        raise ConfigError("--resume and --force exclude each other")
    if resume:
        if not (out_dir / "config.json").is_file():
            raise ConfigError(f"{out_dir}: nothing to resume (no config.json)")
        return
    if present and not force:
        raise ConfigError(
            f"{out_dir}: already holds a run ({', '.join(present)}); "
            "use --resume to continue it or --force to start over"
        )


def train(
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
    _interrupt_at_step: int | None = None,
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
        Hold out this fraction of each class's recording locations instead.
    epochs, batch_size, width : optional
        Override the profile's values.
    profile : {"paper", "demo"}
    model_options : ``KEY=VALUE`` strings or a dict
        Extra builder options (e.g. ``base_filters=24``).
    snapshots : int
        Average the weights of the last K cycle-end snapshots into model.keras
        (0: keep the best/last epoch).
    distribute : {"none", "mirrored"}
        ``mirrored``: ``tf.distribute.MirroredStrategy`` over all GPUs, or
        all logical CPUs when there is no GPU.
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
    _check_run_dir(out_dir, resume=resume, force=force)

    from ..models import spec

    model_spec = spec(model_name)  # unknown names fail here, before any data is read
    options = parse_model_options(model_options)
    if "width" in options:
        raise ConfigError("--option width=...: use --width")
    sources, clips, valid, classes, mapping, info = _prepare_data(train_paths, valid_path, valid_split,
                                                                  labels, seed)
    resolved = resolve_profile(profile, model_name, epochs=epochs, batch_size=batch_size, width=width)
    if "width" in model_spec.defaults:
        options_all = {"width": resolved["width"], **options}
    else:
        if resolved["width"] != 1.0:
            log.warning("model %s has no width option; --width %s ignored", model_name, resolved["width"])
        options_all = dict(options)
    input_shape = tuple(int(s) for s in clips.feature_shape)
    aug = parse_augment(augment, crop, model_name, input_shape, auto_off=resolved["augment_auto_off"])
    batch = min(resolved["batch_size"], len(clips))
    spe = steps_per_epoch(len(clips), batch)
    schedule = Schedule()
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
        "snapshots": int(snapshots),
        "seed": int(seed),
        "augment_option": augment,
        "augment": aug.to_dict(),
        "crop": aug.crop,
        "input_shape": list(input_shape),
        "train_input_shape": [input_shape[0], aug.output_time(input_shape[1]), input_shape[2]],
        "frontend_config": sources[0].config,
        "schedule": schedule.to_dict(),
        "steps_per_epoch": spe,
        "n_train": len(clips),
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
        stored = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
        diffs = config_diff({k: v for k, v in stored.items() if k not in _RESUME_IGNORED},
                            {k: v for k, v in config.items() if k not in _RESUME_IGNORED})
        if diffs:
            raise MismatchError(
                f"{out_dir / 'config.json'}: cannot resume, the configuration differs: " + "; ".join(diffs)
            )
        config["created"] = stored.get("created", config["created"])
        if (out_dir / "state.json").is_file():
            state = json.loads((out_dir / "state.json").read_text(encoding="utf-8"))
    else:
        if force:
            for name in RUN_FILES:
                target = out_dir / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_json(out_dir / "config.json", config)

    with _log_to(out_dir / "train.log"):
        return _run(config=config, state=state, out_dir=out_dir, clips=clips, valid=valid, aug=aug,
                    options_all=options_all, spe=spe, schedule=schedule, snap_epochs=snap_epochs,
                    interrupt_at_step=_interrupt_at_step)


def _run(*, config, state, out_dir: Path, clips: ClipSet, valid: ClipSet | None, aug: AugmentConfig,
         options_all, spe, schedule, snap_epochs, interrupt_at_step) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    from ..console import progress
    from ..models import build

    epochs, seed, classes = config["epochs"], config["seed"], config["classes"]
    first_epoch = int(state["epoch"])
    log.info("train %s on %d clips (%d validation), %d classes, %d epochs x %d steps of %d, run %s%s",
             config["model"], config["n_train"], config["n_valid"], len(classes), epochs, spe,
             config["batch_size"], out_dir, f", resuming at epoch {first_epoch}" if first_epoch else "")
    keras.utils.set_random_seed(seed)
    if tf.config.list_logical_devices("GPU"):
        # some GPU kernels have no deterministic variant and would fail under op determinism
        log.info("GPU present: TensorFlow op determinism not enforced (set TF_DETERMINISTIC_OPS=1 for it)")
    else:
        tf.config.experimental.enable_op_determinism()
    strategy = _strategy(config["distribute"])
    with strategy.scope():
        if state.get("checkpoint") and first_epoch > 0:
            model = keras.saving.load_model(out_dir / "checkpoint" / state["checkpoint"], compile=True)
        else:
            freq, _, channels = config["input_shape"]
            model = build(config["model"], len(classes), (freq, None, channels), **options_all)
            _set_bn_momentum(model, config["bn_momentum"])
            model.compile(
                optimizer=keras.optimizers.SGD(learning_rate=schedule.lr_max, momentum=schedule.momentum),
                loss=keras.losses.CategoricalCrossentropy(),
                metrics=["accuracy"],
            )
    # history rows of epochs not covered by the checkpoint (a kill between files) are dropped
    state["history"] = [row for row in state["history"] if row["epoch"] < first_epoch]
    has_valid = valid is not None
    if first_epoch < epochs:
        data = train_dataset(clips, batch_size=config["batch_size"], seed=seed, first_epoch=first_epoch,
                             epochs=epochs, augment=aug, num_classes=len(classes))
        valid_data = (eval_dataset(valid, batch_size=config["batch_size"], num_classes=len(classes))
                      if has_valid else None)
        with progress((epochs - first_epoch) * spe, "training") as advance:
            callback = _make_callback(run_dir=out_dir, state=state, spe=spe, epochs=epochs, seed=seed,
                                      schedule=schedule, snapshot_epochs=snap_epochs, has_valid=has_valid,
                                      advance=advance, interrupt_at_step=interrupt_at_step)
            model.fit(data, epochs=epochs, initial_epoch=first_epoch, steps_per_epoch=spe,
                      validation_data=valid_data, callbacks=[callback], shuffle=False, verbose=0)
    else:
        log.info("run %s already completed its %d epochs; finalising", out_dir, epochs)

    _export_model(model, out_dir / "last.keras")
    final = state["history"][-1] if state["history"] else {}
    summary: dict[str, Any] = {
        "out_dir": str(out_dir),
        "model": str(out_dir / "model.keras"),
        "epochs": epochs,
        "steps": int(state["steps"]),
        "steps_per_epoch": spe,
        "classes": classes,
        "n_train": config["n_train"],
        "n_valid": config["n_valid"],
        "loss": final.get("loss"),
        "accuracy": final.get("accuracy"),
    }
    if config["snapshots"] and state["snapshots"]:
        names = state["snapshots"][-config["snapshots"]:]
        if len(names) < config["snapshots"]:
            log.warning("only %d cycle-end snapshot(s) exist; averaging those", len(names))
        total = None
        for name in names:
            model.load_weights(out_dir / "snapshots" / name)
            weights = model.get_weights()
            total = weights if total is None else [a + b for a, b in zip(total, weights)]
        model.set_weights([w / len(names) for w in total])
        _export_model(model, out_dir / "model.keras")
        summary["snapshots_averaged"] = names
        if has_valid:
            results = model.evaluate(eval_dataset(valid, batch_size=config["batch_size"],
                                                  num_classes=len(classes)), verbose=0, return_dict=True)
            summary["snapshot_val_accuracy"] = float(results["accuracy"])
            log.info("snapshot average of %s: val_accuracy %.4f", ", ".join(names), results["accuracy"])
    else:
        if config["snapshots"]:
            log.warning("no cycle ended within %d epochs: no snapshots to average", epochs)
        if not has_valid or not (out_dir / "model.keras").exists():
            _copy_atomic(out_dir / "last.keras", out_dir / "model.keras")
    if has_valid:
        summary["best_epoch"] = state["best_epoch"]
        summary["best_val_accuracy"] = state["best_val_accuracy"]
    _write_history(out_dir / "history.tsv", state["history"])
    log.info("wrote %s", summary["model"])
    return summary
