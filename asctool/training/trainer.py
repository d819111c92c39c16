"""The training engine: fit a model on clip sets and keep the run folder current.

:func:`fit` builds (or resumes) the model, runs the epochs with the cyclic
learning-rate schedule, and after each epoch writes the checkpoint, the
history, the resume state and (with validation) the best model; at the end it
writes ``last.keras`` and ``model.keras`` (best epoch, snapshot average or last
epoch). Every ``.keras`` it writes carries the model metadata
(:mod:`asctool.runs`). The run folder layout is in :mod:`asctool.runs`; the
stage that validates options and writes ``config.json`` is
:mod:`asctool.stages.train`.

Early stopping (:func:`should_stop`, the ``cpu`` profile): after each epoch
the validation accuracy is compared with the best so far (ties: the lower
validation loss; with ``best_at_cycle_ends`` only cycle-end epochs compete)
and the best epoch is exported to ``model.keras`` at once; at
a cycle end of the schedule the run stops when the best epoch lies
``patience`` epochs back, so ``model.keras`` holds the best epoch's weights
and the run ends with the learning rate at its minimum. Epochs are numbered
from 1 everywhere (log, ``history.tsv``, ``checkpoint/epoch-NNNN.keras``,
``best_epoch``, ``stopped_epoch``, ``model_epoch``).

A killed run continues with ``--resume`` at the epoch after its last
checkpoint; the learning rate is a pure function of the global step and the
shuffling, augmentation and dropout draws are seeded by (seed, epoch), so the
resumed run ends exactly where an uninterrupted one would; the early-stopping
state (best accuracy, loss and epoch, the epoch it stopped at) is part of
``state.json``, so it continues exactly too.
"""
from __future__ import annotations

import contextlib
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import AsctoolError, ConfigError
from ..io import atomic_path
from ..runs import embed_keras_metadata, model_metadata, write_history, write_json
from .batch_augment import AugmentConfig
from .data import ClipSet
from .pipeline import eval_dataset, train_dataset
from .schedule import Schedule, cycle_ends, learning_rate

__all__ = ["fit", "PROFILES", "resolve_profile", "parse_model_options", "should_stop", "SimulatedKill",
           "export_model", "copy_atomic", "set_bn_momentum", "reseed_dropout", "save_epoch_files",
           "average_snapshots"]

log = logging.getLogger(__name__)

#: Training profiles: ``paper`` is the reference system, ``demo`` a smoke test on a CPU,
#: ``cpu`` training to convergence on a small data set on a CPU (docs/train.md, "Profiles").
_NO_EARLY_STOP = {"early_stopping": False, "patience": 0, "best_at_cycle_ends": False, "valid_split": None,
                  "crop": None, "augment_params": {}, "min_steps": None}
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {"batch_size": 32, "epochs": 254, "width": 1.0, "bn_momentum": 0.99,
              "augment_auto_off": (), **_NO_EARLY_STOP},
    "demo": {"batch_size": 16, "epochs": 6, "width": 0.125, "bn_momentum": 0.9,
             "augment_auto_off": ("specaugment", "mixup"), **_NO_EARLY_STOP},
    "cpu": {"batch_size": 16, "epochs": 30, "width": 0.25, "bn_momentum": 0.9, "augment_auto_off": (),
            "early_stopping": True, "patience": 8, "best_at_cycle_ends": True, "valid_split": 0.2, "crop": 200,
            "min_steps": 800, "augment_params": {"freq_mask": 8, "time_mask": 20, "mixup_alpha": 0.2}},
    # the DCASE 2020 Task 1a baseline's MLP (Adam 1e-3: asctool.training.frames.FRAME_PROFILES)
    "dcase2020-baseline": {"batch_size": 64, "epochs": 200, "width": 1.0, "bn_momentum": 0.99,
                           "augment_auto_off": (), **_NO_EARLY_STOP},
}
# bn_momentum: the moving-average momentum of every batch normalisation layer.
# 0.99 is the Keras default the reference used over ~100,000 steps; a demo run
# of a few hundred steps needs faster-moving statistics to evaluate sensibly.
# augment_auto_off: augmentations that --augment auto leaves out. SpecAugment and
# mixup regularise for long runs on large sets; on the demo data (240 clips,
# 6 epochs) they cost accuracy (evaluate split 0.21 with them, 0.38 with the crop
# only, one seed each; see docs/train.md). --augment NAMES turns them back on.
# epochs: with early_stopping, the most epochs a run may take; patience: the run
# stops at the first cycle end at least this many epochs after its best one.
# best_at_cycle_ends: only cycle-end epochs (learning rate at its minimum) may become
# model.keras; on a small validation set the accuracy of a high-rate epoch is mostly noise.
# valid_split: the validation fraction used when neither --valid nor --valid-split
# is given (None: no validation). crop: the --augment auto crop in frames for any
# input longer than it (None: the reference rule, 400 frames of 3-channel input).
# min_steps: without --epochs, the epoch budget grows (up to 254) until it allows at
# least this many SGD steps (schedule.epochs_for_steps): 30 epochs of 100 clips are
# 180 steps, far from convergence (docs/performance.md, "Training on a CPU").
# augment_params: batch-augmentation strengths (SpecAugment mask widths, mixup
# alpha) replacing the registry's reference values. The cpu values and the
# evidence for them: docs/train.md, "Profiles".


class SimulatedKill(BaseException):
    """Raised by the testing hook ``_interrupt_at_step`` to stop a run as a kill would."""


def resolve_profile(profile: str, model: str, *, epochs: int | None = None,
                    batch_size: int | None = None, width: float | None = None,
                    early_stopping: bool | None = None, patience: int | None = None) -> dict[str, Any]:
    """Effective training settings: the profile's, overridden where given.

    The model's registry entry may override profile values
    (``training_defaults``, e.g. 126 epochs for ``resnet`` under ``paper``) and
    leave batch augmentations out of ``--augment auto`` (``augment_auto_off``);
    see :func:`asctool.models.register`.

    Parameters
    ----------
    profile : {"paper", "demo", "cpu"}
    model : str
        Registry name of the model.
    epochs, batch_size, width, early_stopping, patience : optional overrides.

    Returns
    -------
    dict with ``epochs`` (the maximum with early stopping), ``batch_size``,
    ``width``, ``bn_momentum``, ``augment_auto_off`` (augmentations that
    ``--augment auto`` leaves out: the profile's, then the model's),
    ``early_stopping``, ``patience`` (epochs), ``best_at_cycle_ends``
    (only cycle-end epochs may become ``model.keras``), ``valid_split`` (default
    validation fraction or None), ``min_steps`` (the fewest SGD steps the epoch
    budget must allow, None when ``epochs`` is given or the profile has none;
    :func:`asctool.training.schedule.epochs_for_steps`), ``crop`` (the ``auto`` crop in frames, None
    for the reference rule) and ``augment_params`` (augmentation strengths).

    Raises
    ------
    ConfigError
        Unknown profile, a model default for a key profiles do not have, or a
        value that is not positive.
    AsctoolError
        Unknown model.
    """
    from ..models import spec

    if profile not in PROFILES:
        raise ConfigError(f"--profile {profile!r}: choose from {', '.join(PROFILES)}")
    entry = spec(model)
    overrides = dict(entry.training_defaults.get(profile, {}))
    unknown = sorted(set(overrides) - set(PROFILES[profile]))
    if unknown:
        raise ConfigError(f"model {model!r}: training_defaults for profile {profile!r} name unknown "
                          f"key(s) {', '.join(unknown)}; known: {', '.join(PROFILES[profile])}")
    values = {**PROFILES[profile], **overrides}
    auto_off = list(dict.fromkeys([*values["augment_auto_off"], *entry.augment_auto_off]))
    resolved = {
        "epochs": int(epochs if epochs is not None else values["epochs"]),
        "batch_size": int(batch_size if batch_size is not None else values["batch_size"]),
        "width": float(width if width is not None else values["width"]),
        "bn_momentum": float(values["bn_momentum"]),
        "augment_auto_off": auto_off,
        "early_stopping": bool(early_stopping if early_stopping is not None else values["early_stopping"]),
        "patience": int(patience if patience is not None else values["patience"]),
        "best_at_cycle_ends": bool(values["best_at_cycle_ends"]),
        "valid_split": values["valid_split"],
        "crop": values["crop"],
        "augment_params": dict(values["augment_params"]),
        # an explicit --epochs is the budget as given
        "min_steps": None if epochs is not None or values.get("min_steps") is None else int(values["min_steps"]),
    }
    if resolved["epochs"] < 1 or resolved["batch_size"] < 1 or not resolved["width"] > 0:
        raise ConfigError(f"epochs, batch size and width must be positive, got {resolved}")
    if resolved["patience"] < 0:
        raise ConfigError(f"--patience {resolved['patience']}: must be >= 0")
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
@contextlib.contextmanager
def _quiet_numpy_copy_warning():
    """Silence the NumPy 2 ``__array__ ... copy`` DeprecationWarning raised inside Keras saving."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*__array__.*copy")
        yield


def export_model(model, path: Path, metadata: Mapping[str, Any]) -> None:
    """Save ``model``'s architecture and weights (no optimizer) with its metadata to ``path`` atomically."""
    import keras

    if hasattr(model, "export_parts"):   # a training graph (training.adversarial): its deployable parts
        for part, target in model.export_parts(path):
            export_model(part, target, metadata)
        return

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    with atomic_path(path) as tmp, _quiet_numpy_copy_warning():
        clone.save(tmp)
        embed_keras_metadata(tmp, metadata)


def copy_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _save_checkpoint(model, path: Path) -> None:
    """Save model and optimizer state to ``path`` atomically."""
    with atomic_path(path) as tmp, _quiet_numpy_copy_warning():
        model.save(tmp)


def set_bn_momentum(model, momentum: float) -> None:
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


def reseed_dropout(model, seed: int, epoch: int) -> None:
    """Set the state of ``model``'s random-seed generators (dropout) from ``(seed, epoch)`` (0-based).

    An epoch's masks then do not depend on what ran before it, so a resumed run draws
    the same masks as an uninterrupted one.
    """
    variables = _seed_variables(model)
    if variables:
        draws = np.random.default_rng([seed, epoch, 0xD50]).integers(
            0, 2**31 - 1, size=(len(variables), 2), dtype=np.int64)
        for variable, draw in zip(variables, draws):
            variable.assign(draw.astype(variable.dtype))


def save_epoch_files(model, run_dir: Path, state: dict, *, done: int, spe: int, snapshot: bool) -> None:
    """Write the run folder's files after epoch ``done`` (1-based); ``state`` is updated in place.

    With ``snapshot``, the weights go to ``snapshots/epoch-NNNN.weights.h5`` (listed in
    ``state["snapshots"]``); then the model with its optimizer state to
    ``checkpoint/epoch-NNNN.keras`` (the previous checkpoint is removed after it),
    ``state.json`` (``epoch``, ``steps`` = ``done * spe``, ``checkpoint``) and
    ``history.tsv`` (``state["history"]``). Every file is written atomically.
    """
    if snapshot:
        snap = run_dir / "snapshots" / f"epoch-{done:04d}.weights.h5"
        snap.parent.mkdir(exist_ok=True)
        with atomic_path(snap, suffix=".weights.h5") as tmp, _quiet_numpy_copy_warning():
            model.save_weights(tmp)   # Keras wants the .weights.h5 suffix
        state["snapshots"].append(snap.name)
    checkpoint = run_dir / "checkpoint" / f"epoch-{done:04d}.keras"
    checkpoint.parent.mkdir(exist_ok=True)
    _save_checkpoint(model, checkpoint)
    state.update(epoch=done, steps=done * spe, checkpoint=checkpoint.name)
    write_json(run_dir / "state.json", state)
    write_history(run_dir / "history.tsv", state["history"])
    for old in checkpoint.parent.glob("epoch-*.keras"):
        if old.name != checkpoint.name:
            old.unlink()


def average_snapshots(model, run_dir: Path, names: Sequence[str], metadata: Mapping[str, Any]) -> None:
    """Set ``model``'s weights to the mean of the snapshots ``names`` and export it as ``model.keras``.

    Every weight (batch-norm moving statistics included) is the arithmetic mean of its
    values in ``run_dir/snapshots/NAME`` (weight averaging of one run's cycle-end
    snapshots, docs/train.md "Snapshot averaging").
    """
    total = None
    for name in names:
        model.load_weights(run_dir / "snapshots" / name)
        weights = model.get_weights()
        total = weights if total is None else [a + b for a, b in zip(total, weights)]
    model.set_weights([w / len(names) for w in total])
    export_model(model, run_dir / "model.keras", metadata)


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
def _improves(row: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    """Whether an epoch's validation beats the best so far: higher accuracy, or equal accuracy and lower loss."""
    best = state["best_val_accuracy"]
    if best is None or row["val_accuracy"] > best:
        return True
    best_loss = state.get("best_val_loss")
    return row["val_accuracy"] == best and best_loss is not None and row["val_loss"] < best_loss


def should_stop(done: int, best_epoch: int | None, *, patience: int, cycle_end_epochs: set[int]) -> bool:
    """Early stopping: stop after ``done`` epochs?

    Only at the end of a learning-rate cycle (the rate is at its minimum, so
    the last weights are as annealed as the best ones), and only when the best
    validation epoch (1-based) lies at least ``patience`` epochs back. Inside a
    cycle the validation accuracy drops after every restart by design, so a
    per-epoch rule would stop at the first restart. A run whose best epoch is
    the cycle end itself goes on, whatever the patience (0 included).
    """
    return (best_epoch is not None and done in cycle_end_epochs and done > best_epoch
            and done - best_epoch >= patience)


def _make_callback(*, run_dir: Path, state: dict, spe: int, epochs: int, seed: int, schedule: Schedule,
                   snapshot_epochs: set[int], has_valid: bool, advance, interrupt_at_step: int | None,
                   metadata: Mapping[str, Any], early_stopping: bool = False, patience: int = 0,
                   best_at_cycle_ends: bool = False):
    import keras

    stop_points = set(cycle_ends(epochs, schedule))

    class RunCallback(keras.callbacks.Callback):
        """Sets the learning rate every batch and stops on a NaN or Inf loss; checkpoints, logs and
        keeps the best each epoch; stops early at a cycle end when validation no longer improves."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.started = time.perf_counter()
            reseed_dropout(self.model, seed, epoch)

        def on_train_batch_begin(self, batch, logs=None):
            step = self.epoch * spe + batch
            if interrupt_at_step is not None and step >= interrupt_at_step:
                raise SimulatedKill(f"simulated kill at step {step}")
            self.model.optimizer.learning_rate = learning_rate(step, spe, schedule)

        def on_train_batch_end(self, batch, logs=None):
            advance(1)
            loss = (logs or {}).get("loss")
            if loss is not None and not np.isfinite(loss):
                # raised before this epoch's files are written: the run folder keeps the last checkpoint
                raise AsctoolError(
                    f"{run_dir}: training loss became {loss} at epoch {self.epoch + 1}, step {batch + 1}; training "
                    f"stopped, the run folder keeps the files of its {state['epoch']} completed epoch(s); check "
                    "the features for extreme values (asctool inspect), then start again with --force"
                )

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            done = epoch + 1   # epochs are numbered from 1 everywhere: log, history, checkpoint, state
            row = {
                "epoch": done,
                "lr": learning_rate(epoch * spe, spe, schedule),
                "loss": float(logs.get("loss", float("nan"))),
                "accuracy": float(logs.get("accuracy", float("nan"))),
                "val_loss": float(logs["val_loss"]) if "val_loss" in logs else None,
                "val_accuracy": float(logs["val_accuracy"]) if "val_accuracy" in logs else None,
            }
            state["history"].append(row)
            message = (f"epoch {done}/{epochs} lr {row['lr']:.5f} loss {row['loss']:.4f} "
                       f"accuracy {row['accuracy']:.4f}")
            if has_valid:
                message += f" val_loss {row['val_loss']:.4f} val_accuracy {row['val_accuracy']:.4f}"
                if (not best_at_cycle_ends or done in stop_points) and _improves(row, state):
                    state.update(best_val_accuracy=row["val_accuracy"], best_val_loss=row["val_loss"],
                                 best_epoch=done)
                    export_model(self.model, run_dir / "model.keras", metadata)
                    message += " (best)"
            log.info("%s (%.1f s)", message, time.perf_counter() - self.started)
            if early_stopping and done < epochs and should_stop(done, state["best_epoch"], patience=patience,
                                                                cycle_end_epochs=stop_points):
                state["stopped_epoch"] = done
                self.model.stop_training = True
                log.info("early stopping after epoch %d (a cycle end): val_accuracy has not improved since "
                         "epoch %d (patience %d)", done, state["best_epoch"], patience)
            save_epoch_files(self.model, run_dir, state, done=done, spe=spe, snapshot=done in snapshot_epochs)

    return RunCallback()


# --------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------
def fit(*, config, state, out_dir: Path, clips: ClipSet, valid: ClipSet | None, aug: AugmentConfig,
         options_all, spe, schedule, snap_epochs, interrupt_at_step) -> dict[str, Any]:
    """Run (or resume) the epochs of a run whose ``config.json`` is written; return the summary.

    Parameters
    ----------
    config : dict
        The run configuration (``asctool.stages.train`` builds it).
    state : dict
        Resume state (``state.json``): completed epochs, history, best epoch.
    out_dir : Path
        The run folder.
    clips, valid : ClipSet
        Training and (optional) validation clips.
    aug : AugmentConfig
        Batch augmentations.
    options_all : dict
        Model builder options (width included).
    spe : int
        Steps per epoch.
    schedule : Schedule
        Learning-rate schedule.
    snap_epochs : set of int
        Epochs after which weight snapshots are kept (``--snapshots``).
    interrupt_at_step : int or None
        Testing hook: raise :class:`SimulatedKill` at this global step.
    """
    import keras
    import tensorflow as tf

    from ..console import progress
    from ..models import build

    epochs, seed, classes = config["epochs"], config["seed"], config["classes"]
    metadata = model_metadata(config)
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
    if config.get("adversarial"):
        from . import adversarial  # noqa: F401  (registers the training graph's class for --resume)
    with strategy.scope():
        if state.get("checkpoint") and first_epoch > 0:
            model = keras.saving.load_model(out_dir / "checkpoint" / state["checkpoint"], compile=True)
        elif config.get("adversarial"):   # unlabelled data, domain classifier, labellers (training.adversarial)
            from .adversarial import build_training_model

            model = build_training_model(config, options_all)
            set_bn_momentum(model, config["bn_momentum"])
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule.lr_max, momentum=schedule.momentum))
        else:
            freq, _, channels = config["input_shape"]
            if config.get("tag_fusion"):   # tag-conditioned (models.tag_fusion): inputs [features, tags]
                from ..models.tag_fusion import build_fusion_model

                model = build_fusion_model(config["model"], len(classes), (freq, None, channels),
                                           len(config["tag_fusion"]["tag_names"]), config["tag_fusion"]["mode"],
                                           **options_all)
            else:
                model = build(config["model"], len(classes), (freq, None, channels), **options_all)
            set_bn_momentum(model, config["bn_momentum"])
            model.compile(
                optimizer=keras.optimizers.SGD(learning_rate=schedule.lr_max, momentum=schedule.momentum),
                loss=keras.losses.CategoricalCrossentropy(),
                metrics=["accuracy"],
            )
    # history rows of epochs not covered by the checkpoint (a kill between files) are dropped
    state["history"] = [row for row in state["history"] if row["epoch"] <= first_epoch]
    has_valid = valid is not None
    early = bool(config.get("early_stopping"))
    if early and not has_valid:
        raise ConfigError("early stopping needs validation data: give --valid FILE or --valid-split F "
                          "(or --no-early-stopping)")
    stopped = state.get("stopped_epoch")
    if first_epoch < epochs and not stopped:
        data = train_dataset(clips, batch_size=config["batch_size"], seed=seed, first_epoch=first_epoch,
                             epochs=epochs, augment=aug, num_classes=config.get("train_targets", len(classes)))
        valid_data = (eval_dataset(valid, batch_size=config["batch_size"], num_classes=len(classes))
                      if has_valid else None)
        with progress((epochs - first_epoch) * spe, "training") as advance:
            callback = _make_callback(run_dir=out_dir, state=state, spe=spe, epochs=epochs, seed=seed,
                                      schedule=schedule, snapshot_epochs=snap_epochs, has_valid=has_valid,
                                      advance=advance, interrupt_at_step=interrupt_at_step,
                                      metadata=metadata, early_stopping=early,
                                      patience=int(config.get("patience") or 0),
                                      best_at_cycle_ends=bool(config.get("best_at_cycle_ends")))
            model.fit(data, epochs=epochs, initial_epoch=first_epoch, steps_per_epoch=spe,
                      validation_data=valid_data, callbacks=[callback], shuffle=False, verbose=0)
    elif stopped:
        log.info("run %s stopped early after epoch %d; finalising", out_dir, stopped)
    else:
        log.info("run %s already completed its %d epochs; finalising", out_dir, epochs)

    export_model(model, out_dir / "last.keras", metadata)
    final = state["history"][-1] if state["history"] else {}
    summary: dict[str, Any] = {
        "out_dir": str(out_dir),
        "model": str(out_dir / "model.keras"),
        "epochs": epochs,
        "epochs_run": int(state["epoch"]),
        "stopped_epoch": state.get("stopped_epoch"),
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
        average_snapshots(model, out_dir, names, metadata)
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
            copy_atomic(out_dir / "last.keras", out_dir / "model.keras")
    if has_valid:
        summary["best_epoch"] = state["best_epoch"]
        summary["best_val_accuracy"] = state["best_val_accuracy"]
    # the epoch whose weights model.keras holds (None: a snapshot average)
    summary["model_epoch"] = state["model_epoch"] = (
        None if summary.get("snapshots_averaged") else state["best_epoch"] if has_valid else int(state["epoch"]))
    write_json(out_dir / "state.json", state)
    write_history(out_dir / "history.tsv", state["history"])
    log.info("wrote %s", summary["model"])
    return summary
