"""``asctool train --task tagging``: an audio tagger from features files with event labels.

Multi-label training (Jung et al., "Acoustic scene classification using audio
tagging", Interspeech 2020, section 2: a tagger gives each clip the
probability of each of C sound events): the features files carry each
clip's ``;``-separated event names (``featurize`` of a manifest with a
``tags`` column); the targets are multi-hot vectors over the sorted set of
names in the training data; any backbone of the model registry with its
softmax replaced by a sigmoid per tag; binary cross-entropy
``-mean_c [y_c log p_c + (1 - y_c) log(1 - p_c)]``; Adam. With validation data,
the epoch of the best validation mAP (:mod:`asctool.tagging.metrics`) becomes
``model.keras``; without, the last epoch.

Like scene training, a run checkpoints every epoch (``checkpoint/epoch-NNNN.keras``
with the optimizer state, ``checkpoint/best.keras``, ``state.json``), so a killed
run continues with ``resume`` at the epoch after its last checkpoint (the batch
order of epoch e is drawn from ``(seed, e)``, so the epochs it replays are the
same); ``model.keras`` is written once, at the end. Early stopping (the
profile's, or ``--early-stopping --patience N``) needs validation data: the run
stops after an epoch that lies at least ``patience`` epochs after the best one
(:func:`asctool.training.trainer.should_stop` with every epoch a decision point:
the learning rate is constant, there are no cycles to wait for).

The run folder is that of scene training (``config.json`` with ``task:
tagging`` and the tag names as ``classes``, ``model.keras`` with that
metadata, ``history.tsv``, ``train.log``); ``asctool tag --tagger asctool
--run RUN`` uses it.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import __version__
from ..artifacts import check_finite_features, check_same_config, open_features
from ..errors import ArtifactError, ConfigError, MismatchError
from ..io import atomic_path
from ..provenance import current_command
from ..runs import RUN_FILES, embed_keras_metadata, log_to, write_json
from ..tagging.metrics import mean_average_precision, multi_hot, tag_vocabulary
from .trainer import set_bn_momentum, should_stop

__all__ = ["train_tagger", "sigmoid_model", "refuse_scene_options", "TAGGING_HISTORY_COLUMNS"]

log = logging.getLogger(__name__)

#: Columns of a tagging run's ``history.tsv``.
TAGGING_HISTORY_COLUMNS = ("epoch", "loss", "val_loss", "val_mAP")


def sigmoid_model(model):
    """The registry model with its final softmax replaced by a sigmoid per output (same layers, same weights).

    Raises
    ------
    ConfigError
        The model does not end in a softmax activation layer.
    """
    import keras

    last = model.layers[-1]
    if not (isinstance(last, keras.layers.Activation) and getattr(last.activation, "__name__", "") == "softmax"):
        raise ConfigError(f"model {model.name}: its last layer {last.name!r} is not a softmax; "
                          "--task tagging needs a registry model that ends in one")
    logits = last.input
    outputs = keras.layers.Activation("sigmoid", dtype="float32", name="sigmoid")(logits)
    return keras.Model(model.inputs, outputs, name=f"{model.name}_tagger")


class _Source:
    """One features file's clips and their multi-hot targets."""

    def __init__(self, path: Path, role: str) -> None:
        self.path = path
        with open_features(path) as f:
            labels = f.tags
            if labels is None:
                raise ArtifactError(f"{path}: no event labels ('tags' dataset); featurize a manifest with a "
                                    f"'tags' column (;-separated event names) for --task tagging {role} data")
            check_finite_features(f)
            self.ids, self.locations, self.labels = f.ids, f.locations, labels
            self.config, self.shape, self.n = f.config, f.feature_shape, len(f)


class _Batches:
    """Batches ``(x, y)`` of clips ``rows`` of ``sources`` read from their HDF5 files, in a seeded order."""

    def __init__(self, sources: Sequence[_Source], index: np.ndarray, targets: np.ndarray, batch: int) -> None:
        self.sources, self.index, self.targets, self.batch = sources, index, targets, batch
        self.handles = None

    def read(self, picks: np.ndarray) -> np.ndarray:
        import h5py

        if self.handles is None:
            self.handles = [h5py.File(s.path, "r") for s in self.sources]
        out = np.empty((len(picks), *self.sources[0].shape), dtype=np.float32)
        for k in range(len(self.sources)):
            mine = np.flatnonzero(self.index[picks, 0] == k)
            if mine.size:
                rows = self.index[picks[mine], 1]
                order = np.argsort(rows)
                out[mine[order]] = self.handles[k]["features"][np.sort(rows)]  # h5py reads increasing rows
        return out

    def epoch(self, rng: np.random.Generator | None):
        order = np.arange(len(self.index)) if rng is None else rng.permutation(len(self.index))
        for start in range(0, len(order), self.batch):
            picks = order[start:start + self.batch]
            yield self.read(picks), self.targets[picks]

    def close(self) -> None:
        for handle in self.handles or []:
            handle.close()
        self.handles = None


def _hold_out(sources: Sequence[_Source], fraction: float, seed: int) -> np.ndarray:
    """A validation mask over the clips of ``sources``: a ``fraction`` of the recording locations
    (of the clips, when there are no locations), drawn with ``seed``."""
    groups = np.concatenate([np.where(s.locations != "", s.locations, s.ids) for s in sources]).astype(str)
    unique = np.unique(groups)
    rng = np.random.default_rng(seed)
    chosen = set(rng.permutation(unique)[:max(1, int(round(fraction * len(unique))))])
    return np.fromiter((g in chosen for g in groups), dtype=bool, count=len(groups))


def train_tagger(
    train_paths: Sequence[Path], model_name: str, out_dir: Path, *, valid_path: Path | None,
    valid_split: float | None, epochs: int, batch_size: int, width: float, options: Mapping[str, Any],
    seed: int, force: bool, learning_rate: float = 1e-3, bn_momentum: float = 0.99, resume: bool = False,
    early_stopping: bool = False, patience: int = 0,
) -> dict[str, Any]:
    """Train a tagger and write its run folder (the caller has claimed ``out_dir``).

    Parameters
    ----------
    train_paths : features files with event labels (same front end and shape)
    model_name : registry backbone (``asctool models``)
    out_dir : run folder
    valid_path : validation features (with event labels), or None
    valid_split : hold out this fraction of the training locations instead (None or 0: no validation)
    epochs, batch_size, width, options, seed : training settings and builder options
    force : remove the run files of an earlier run first
    learning_rate : Adam's step size
    bn_momentum : moving-average momentum of every batch normalisation layer (the profile's)
    resume : continue the run in ``out_dir`` from its last checkpoint (its ``config.json``
        must record the same data and settings)
    early_stopping, patience : stop once the best validation mAP lies ``patience``
        epochs back (needs validation data; ignored without it, with a log line)

    Returns
    -------
    dict : run folder, model file, tags, clip counts, epochs, best epoch and its
        validation mAP, final training loss.

    Raises
    ------
    ArtifactError, MismatchError, ConfigError
        Features without event labels, mixed front ends or shapes, a validation
        clip that is also a training clip, fewer than 2 tags, an event in the
        validation data the training data never has, ``resume`` of a run with
        other settings or without a checkpoint; nothing is written then.
    """
    import keras

    from ..models import build, spec

    sources = [_Source(Path(p), "training") for p in train_paths]
    for other in sources[1:]:
        check_same_config(sources[0].config, other.config, sources[0].path, other.path)
        if other.shape != sources[0].shape:
            raise MismatchError(f"{other.path}: features of shape {other.shape} differ from "
                                f"{sources[0].path}: {sources[0].shape}")
    labels = np.concatenate([s.labels for s in sources])
    ids = np.concatenate([s.ids for s in sources])
    names = tag_vocabulary(labels)
    if len(names) < 2:
        raise ConfigError(f"{sources[0].path}: the training data lists {len(names)} event name(s) "
                          f"({', '.join(names) or 'none'}); a tagger needs at least 2")
    targets = multi_hot(labels, names, where=sources[0].path, ids=ids)
    index = np.concatenate([np.stack([np.full(s.n, k), np.arange(s.n)], axis=1) for k, s in enumerate(sources)])
    valid = None
    if valid_path is not None:
        vs = _Source(Path(valid_path), "validation")
        check_same_config(sources[0].config, vs.config, sources[0].path, vs.path)
        if vs.shape != sources[0].shape:
            raise MismatchError(f"{vs.path}: features of shape {vs.shape} differ from {sources[0].path}: "
                                f"{sources[0].shape}")
        shared = set(vs.ids) & set(ids)
        if shared:
            raise MismatchError(f"{vs.path}: {len(shared)} clip(s) are also training clips (e.g. {sorted(shared)[0]})")
        valid = _Batches([vs], np.stack([np.zeros(vs.n, int), np.arange(vs.n)], axis=1),
                         multi_hot(vs.labels, names, where=vs.path, ids=vs.ids), batch_size)
    elif valid_split:
        mask = _hold_out(sources, float(valid_split), seed)
        if mask.all() or not mask.any():
            raise ConfigError(f"--valid-split {valid_split}: leaves no training or no validation clip")
        valid = _Batches(sources, index[mask], targets[mask], batch_size)
        index, targets = index[~mask], targets[~mask]
    train = _Batches(sources, index, targets, min(batch_size, len(index)))
    input_shape = list(sources[0].shape)
    model_options = {"width": width, **options} if "width" in spec(model_name).defaults else dict(options)
    config = {
        "task": "tagging", "train": [str(p) for p in train_paths], "model": model_name,
        "model_options": model_options, "labels": "tags", "label_map": None, "classes": names,
        "valid": None if valid_path is None else str(valid_path), "valid_split": valid_split or None,
        "epochs": int(epochs), "batch_size": int(train.batch), "learning_rate": learning_rate,
        "bn_momentum": bn_momentum, "seed": int(seed),
        "early_stopping": bool(early_stopping and valid is not None), "patience": int(patience),
        "input_shape": input_shape, "frontend_config": sources[0].config, "n_train": int(len(index)),
        "n_valid": 0 if valid is None else int(len(valid.index)), "loss": "binary_crossentropy",
        "asctool_version": __version__, "command": current_command(),
        "created": _dt.datetime.now(tz=_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    config = json.loads(json.dumps(config, default=str))
    state = {"epoch": 0, "history": [], "best_epoch": None, "best_val_mAP": None, "checkpoint": None,
             "stopped_early": False, "finished": False}
    if resume:
        state = _resume_state(out_dir, config)
        config = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
    if force:
        for name in RUN_FILES:
            target = out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_json(out_dir / "config.json", config)
    metadata = {key: config[key] for key in ("task", "model", "classes", "labels", "label_map",
                                             "frontend_config", "input_shape")}
    with log_to(out_dir / "train.log"):
        keras.utils.set_random_seed(int(seed))
        if state["checkpoint"]:
            model = keras.saving.load_model(out_dir / "checkpoint" / state["checkpoint"], compile=True)
            log.info("resuming %s after epoch %d of %d", out_dir, state["epoch"], epochs)
        else:
            model = sigmoid_model(build(model_name, len(names), tuple(input_shape), **model_options))
            set_bn_momentum(model, bn_momentum)
            model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=keras.losses.BinaryCrossentropy())
            log.info("tagger %s: %d tags, %d training clips, %d validation clips, %d epochs", model_name,
                     len(names), len(index), config["n_valid"], epochs)
        if early_stopping and valid is None:
            log.info("early stopping needs validation data: the run takes all %d epochs", epochs)
        history = state["history"]
        try:
            for epoch in range(state["epoch"] + 1, int(epochs) + 1):
                if state["finished"]:
                    break
                losses = [float(model.train_on_batch(x, y)) for x, y in
                          train.epoch(np.random.default_rng([int(seed), epoch]))]
                row = {"epoch": epoch, "loss": float(np.mean(losses)), "val_loss": None, "val_mAP": None}
                if valid is not None:
                    scores = np.concatenate([model.predict_on_batch(x) for x, _ in valid.epoch(None)])
                    eps = 1e-7
                    p = np.clip(scores, eps, 1 - eps)
                    row["val_loss"] = float(-np.mean(valid.targets * np.log(p) + (1 - valid.targets) * np.log(1 - p)))
                    row["val_mAP"] = mean_average_precision(valid.targets, scores)[0]
                history.append(row)
                log.info("epoch %d/%d loss %.4f%s", epoch, epochs, row["loss"],
                         "" if valid is None else f" val_loss {row['val_loss']:.4f} val_mAP {row['val_mAP']:.4f}")
                if not np.isfinite(row["loss"]):
                    raise ConfigError(f"{out_dir}: training loss became {row['loss']} at epoch {epoch}")
                _checkpoint_epoch(model, out_dir, state, row, epoch, metadata, valid is not None)
                if (config["early_stopping"] and epoch < epochs
                        and should_stop(epoch, state["best_epoch"], patience=int(patience), cycle_end_epochs={epoch})):
                    log.info("early stop after epoch %d: the best validation mAP (%.4f) was at epoch %d", epoch,
                             state["best_val_mAP"], state["best_epoch"])
                    state["stopped_early"] = True
                    break
        finally:
            train.close()
            if valid is not None:
                valid.close()
        with atomic_path(out_dir / "model.keras") as tmp:
            shutil.copyfile(out_dir / "checkpoint" / "best.keras", tmp)
        state["finished"] = True
        write_json(out_dir / "state.json", state)
    summary = {"run": str(out_dir), "model": str(out_dir / "model.keras"), "task": "tagging", "tags": len(names),
               "n_train": int(len(index)), "n_valid": config["n_valid"], "epochs": len(history),
               "best_epoch": state["best_epoch"], "best_val_mAP": state["best_val_mAP"],
               "stopped_early": state["stopped_early"], "loss": history[-1]["loss"]}
    return summary


def _checkpoint_epoch(model, out_dir: Path, state: dict, row: Mapping[str, Any], epoch: int,
                      metadata: Mapping[str, Any], has_valid: bool) -> None:
    """After an epoch: the best model (``checkpoint/best.keras``), the checkpoint with the optimizer
    state (only the newest kept), history.tsv and state.json, in that order (a kill between two
    files leaves the state of the epoch before)."""
    import warnings

    folder = out_dir / "checkpoint"
    folder.mkdir(exist_ok=True)
    if not has_valid or state["best_val_mAP"] is None or (row["val_mAP"] or 0) > state["best_val_mAP"]:
        state["best_epoch"], state["best_val_mAP"] = epoch, row["val_mAP"]
        _save(model, folder / "best.keras", metadata)
    name = f"epoch-{epoch:04d}.keras"
    with atomic_path(folder / name) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        model.save(tmp)
    state.update(epoch=epoch, checkpoint=name)
    _write_history(out_dir / "history.tsv", state["history"])
    write_json(out_dir / "state.json", state)
    for old in folder.glob("epoch-*.keras"):
        if old.name != name:
            old.unlink()


#: config.json keys a resumed run may differ in (the command and its time).
_VOLATILE = ("command", "created", "asctool_version")


def _resume_state(out_dir: Path, config: Mapping[str, Any]) -> dict:
    """The state of the run in ``out_dir``, after checking that ``config`` matches its config.json.

    Raises
    ------
    ConfigError
        No config.json or no checkpoint to continue from; a setting that differs (named).
    """
    try:
        saved = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
        state = json.loads((out_dir / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{out_dir}: nothing to resume ({exc.__class__.__name__}: {exc})") from None
    if saved.get("task") != "tagging":
        raise ConfigError(f"{out_dir}/config.json: not a tagging run; --resume continues a run of the same task")
    for key in sorted(set(saved) | set(config)):
        if key not in _VOLATILE and saved.get(key) != config.get(key):
            raise ConfigError(f"{out_dir}/config.json: --resume with another {key} ({saved.get(key)!r} in the run, "
                              f"{config.get(key)!r} now)")
    if not state.get("checkpoint") or not (out_dir / "checkpoint" / state["checkpoint"]).is_file():
        raise ConfigError(f"{out_dir}: nothing to resume (no checkpoint in state.json)")
    state.setdefault("stopped_early", False)
    state.setdefault("finished", False)
    return state


def _save(model, path: Path, metadata: Mapping[str, Any]) -> None:
    """Save the model (no optimizer) with its metadata atomically."""
    import warnings

    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        model.save(tmp, include_optimizer=False)
        embed_keras_metadata(tmp, metadata)


def _write_history(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    def fmt(value: Any) -> str:
        return "" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))

    with atomic_path(path) as tmp:
        lines = ["\t".join(TAGGING_HISTORY_COLUMNS)]
        lines += ["\t".join(fmt(row.get(c)) for c in TAGGING_HISTORY_COLUMNS) for row in rows]
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def refuse_scene_options(**given: Any) -> None:
    """One line for an option of scene training that ``--task tagging`` does not take.

    ``given`` maps option names (``snapshots``, ``crop``...) to their values;
    a value other than the option's default is refused.
    """
    defaults = {"labels": "scene", "snapshots": 0, "distribute": "none", "augment": ("auto", "none"),
                "crop": None, "classes": None, "unlabelled": ((),), "adversarial": None, "tri_training": False,
                "tags": None, "tag_fusion": None}
    for name, value in given.items():
        allowed = defaults[name] if isinstance(defaults[name], tuple) else (defaults[name],)
        if value not in allowed:
            raise ConfigError(f"--task tagging does not take --{name.replace('_', '-')} (scene training only)")

