"""Shallow classifiers: the MLP on embedding frames and the linear back-ends, trained and applied.

``asctool train`` hands over here (:func:`train_shallow`) when its input is an
embeddings file (``asctool embed``) or its model a linear back-end
(:mod:`asctool.backends`); ``asctool predict`` hands over (:func:`shallow_scores`)
for an embeddings file or a ``RUN/model.json``.

The MLP (Cramer et al., ICASSP 2019, section 4.2; the DCASE 2020 Task 1a baseline)
-----------------------------------------------------------------------------------
- every frame of a training clip is one example with the clip's label;
- the frames are standardised with the mean and variance of the training frames,
  stored in the model (its ``standardise`` layer);
- Adam, sparse categorical cross-entropy; after each epoch the validation clips
  are scored as ``predict`` scores them (frame probabilities collapsed per clip,
  :func:`collapse`) and the epoch with the best clip accuracy is kept; with a
  ``patience`` (profile ``paper``: 20, at most 50 epochs) training stops when it
  has not improved for that many epochs (early stopping);
- ``grid=True``: learning rate x weight decay (L2 on the kernels) over
  :data:`GRID` = {1e-5, 1e-4, 1e-3}^2, the pair with the best validation
  accuracy kept (the paper's model selection);
- validation: ``--valid FILE``, ``--valid-split`` (recording locations, as for the
  CNNs), else 10 % of the training clips held out stratified by class (the
  paper's protocol; :data:`HOLD_OUT`).

Profiles (:data:`FRAME_PROFILES`; epochs and batch size come from
:func:`asctool.training.trainer.resolve_profile` and the ``mlp`` entry's
``training_defaults``): ``paper`` (Cramer et al.: Adam 1e-3, patience 20, at most
50 epochs, batch 64), ``demo`` (the same), ``dcase2020-baseline`` (Adam 1e-3,
200 epochs, batch 64, no early stop: the best validation epoch is kept).

Memory: the frames stay in the embeddings files and are read block by block
(:mod:`asctool.training.framestream`: the clips in a random order per epoch, the
frames shuffled within a block of :data:`~asctool.training.framestream.BLOCK_BYTES`),
so training no longer holds the N x T x D x 4 bytes of all training frames
(TAU 2020 fold 1 with OpenL3 512-d every 0.1 s: about 2.7 GiB). Linear back-ends hold
one vector per clip.

A run is short and deterministic (seeded, TensorFlow op determinism on a CPU):
``--resume`` trains it again from the start.
"""
from __future__ import annotations

import datetime as _dt
import itertools
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import __version__
from ..artifacts import (KIND_EMBEDDINGS, KIND_FEATURES, check_same_config, first_nonfinite, open_embeddings,
                         open_features, read_kind)
from ..errors import ArtifactError, ConfigError, MismatchError
from ..io import atomic_path
from ..labels import read_classes, resolve_label_map
from ..provenance import current_command
from ..runs import RUN_FILES, embed_keras_metadata, log_to, model_metadata, read_model_metadata, write_history, write_json
from .data import SourceInfo, clip_locations, hold_out_locations, make_clip_set
from .framestream import BLOCK_BYTES, FrameClips, epoch_batches, frame_moments, steps_per_epoch
from .trainer import parse_model_options, resolve_profile

__all__ = ["GRID", "HOLD_OUT", "FRAME_PROFILES", "COLLAPSE", "route", "collapse", "stratified_hold_out",
           "train_shallow", "shallow_scores"]

log = logging.getLogger(__name__)

#: Learning rates and weight decays of ``--grid`` (Cramer et al. 2019, section 4.2).
GRID = (1e-5, 1e-4, 1e-3)
#: Fraction of the training clips held out, stratified by class, when no validation is given.
HOLD_OUT = 0.1
#: Frame-training settings by profile: Adam's learning rate, early-stopping patience (None: none).
FRAME_PROFILES = {
    "paper": {"lr": 1e-3, "patience": 20},
    "demo": {"lr": 1e-3, "patience": 20},
    "dcase2020-baseline": {"lr": 1e-3, "patience": None},
}
#: How :func:`collapse` turns a clip's frame probabilities into one row.
COLLAPSE = ("sum", "mean", "max")
#: Files a shallow run writes besides :data:`asctool.runs.RUN_FILES`.
_SHALLOW_FILES = ("model.json", "grid.tsv")


# --------------------------------------------------------------------------
# routing and small pieces
# --------------------------------------------------------------------------
def route(train_path, model_name: str) -> str | None:
    """Which trainer a model and a training file need: ``"frames"`` (mlp), ``"linear"``, or None (the CNNs).

    Raises
    ------
    ConfigError
        A model of features given embeddings, or the mlp given features.
    """
    from .. import backends
    from ..models import spec

    if model_name in backends.available("clips"):
        return "linear"
    if model_name in backends.available("codes"):
        raise ConfigError(f"--model {model_name}: a back-end on a trained model's codes, not a model to train; "
                          f"fit it with asctool backend {model_name} --model RUN ...")
    inputs = spec(model_name).inputs  # an unknown name is refused here, listing the models
    kind = read_kind(train_path) if Path(train_path).is_file() else None
    if kind == KIND_EMBEDDINGS and inputs != "embeddings":
        raise ConfigError(f"{train_path}: holds embeddings; model {model_name!r} reads features "
                          f"(train mlp or a linear back-end ({', '.join(backends.available('clips'))}) on embeddings)")
    if inputs == "embeddings":
        if kind not in (KIND_EMBEDDINGS, None):
            raise ConfigError(f"{train_path}: model {model_name!r} reads embedding frames (asctool embed), "
                              f"not a {kind} file")
        return "frames"
    return None


def collapse(frame_probs: np.ndarray, method: str = "sum") -> np.ndarray:
    """One probability row per clip from its frames' probabilities.

    Parameters
    ----------
    frame_probs : np.ndarray [shape=(n, T, K)]
    method : {"sum", "mean", "max"}
        ``sum``: the class likelihoods summed over the frames (Cramer et al. 2019,
        section 4.2; the DCASE 2020 baseline), ``mean`` the same divided by T,
        ``max`` the largest probability of each class over the frames.

    Returns
    -------
    np.ndarray [shape=(n, K)], float64
        Rows renormalised to sum to 1 (so ``sum`` and ``mean`` give the same
        scores; the choice is recorded in the scores file).
    """
    p = np.asarray(frame_probs, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"frame probabilities must be (clips, frames, classes), got {p.shape}")
    if method == "sum":
        rows = p.sum(axis=1)
    elif method == "mean":
        rows = p.mean(axis=1)
    elif method == "max":
        rows = p.max(axis=1)
    else:
        raise ConfigError(f"--collapse {method!r}: choose from {', '.join(COLLAPSE)}")
    rows = np.clip(rows, 0.0, None)
    return rows / np.maximum(rows.sum(axis=1, keepdims=True), 1e-300)


def stratified_hold_out(labels: np.ndarray, fraction: float, seed: int, where: str) -> np.ndarray:
    """Boolean mask of the validation clips: ``fraction`` of the clips, stratified by class (scikit-learn).

    Raises
    ------
    ConfigError
        Too few clips for a stratified split (every class needs 2; the held-out part at least one per class).
    """
    from sklearn.model_selection import StratifiedShuffleSplit

    labels = np.asarray(labels)
    try:
        split = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        _, held = next(split.split(np.zeros(len(labels)), labels))
    except ValueError as exc:
        raise ConfigError(f"{where}: cannot hold out {fraction:.0%} of the clips stratified by class ({exc}); "
                          "give --valid FILE") from None
    mask = np.zeros(len(labels), dtype=bool)
    mask[held] = True
    return mask


def _open(path, kind: str):
    return open_embeddings(path) if kind == KIND_EMBEDDINGS else open_features(path)


def _read(paths: Sequence[Path], kind: str, role: str, linear: bool, seed: int):
    """Sources, the clips (linear: clip vectors (N, d); else a :class:`FrameClips`, every value checked
    finite here, read again when training) and the per-clip shape."""
    from ..backends import clip_summaries

    sources, arrays, config, shape = [], [], None, None
    for path in paths:
        found = read_kind(path) if Path(path).is_file() else kind
        if found != kind:
            raise MismatchError(f"{path}: a {found} file; the {role} data must be {kind} files like the first")
        with _open(path, kind) as f:
            if len(f) == 0:
                raise ArtifactError(f"{f.path}: {role} {kind} file holds no clips")
            this = tuple(int(s) for s in f.feature_shape)
            if config is None:
                config, shape = f.config, this
            else:
                check_same_config(config, f.config, paths[0], f.path)
                if this[-1] != shape[-1] or (kind == KIND_FEATURES and this[0] != shape[0]):
                    raise MismatchError(f"{f.path}: clips of shape {this} do not fit {paths[0]}: {shape}")
            if linear:
                arrays.append(clip_summaries(f, kind))
            else:   # NaN/Inf refused now, naming the clip; the frames are read again block by block
                for _ in f.batches(max(1, BLOCK_BYTES // (4 * int(np.prod(this))))):
                    pass
                arrays.append(this)
            sources.append(SourceInfo(Path(path), len(f), this, np.dtype(np.float32), f.config, f.ids,
                                      f.scenes, f.locations, f.classes))
    if linear:
        return sources, np.concatenate(arrays), config, shape
    if len({a[0] for a in arrays}) > 1:
        raise MismatchError(f"{paths[0]}: the {role} files hold different numbers of frames per clip")
    return sources, FrameClips.of_files(paths, [s.n for s in sources], shape[0], shape[-1]), config, shape


# --------------------------------------------------------------------------
# the MLP, one (learning rate, weight decay) pair
# --------------------------------------------------------------------------
def _clip_probs(model, clips: FrameClips) -> np.ndarray:
    """Clip probabilities ``(n, K)`` (frames collapsed by ``sum``), the clips read block by block."""
    parts = []
    for _, block in clips.blocks(block_clips=max(1, clips.block_clips // 4)):   # 16 MiB of frames a call
        frames = model.predict(block.reshape(-1, clips.dim), batch_size=4096, verbose=0)
        parts.append(collapse(frames.reshape(len(block), clips.frames, -1), "sum"))
    return np.concatenate(parts)


def _fit_mlp(train, valid, *, n_classes, mean, var, count, lr, l2, epochs, batch, patience, seed, options, tag):
    """Train one MLP on ``train`` = (FrameClips, clip labels), its frames streamed (:func:`epoch_batches`);
    returns (weights of the kept epoch, history rows, best epoch, best clip accuracy)."""
    import keras
    import tensorflow as tf

    from ..models import build

    clips, labels = train
    keras.utils.set_random_seed(seed)
    model = build("mlp", n_classes, (clips.dim,), **{**options, "l2": l2})
    norm = model.get_layer("standardise")
    norm.set_weights([mean.astype(np.float32), var.astype(np.float32), np.asarray(count, dtype=norm.weights[2].dtype)])
    norm.finalize_state()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    rows: list[dict] = []
    best = {"epoch": None, "accuracy": None, "weights": None}

    class Keep(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            row = {"epoch": epoch, "lr": lr, "loss": float(logs.get("loss", np.nan)),
                   "accuracy": float(logs.get("accuracy", np.nan)), "val_loss": None, "val_accuracy": None}
            if not np.isfinite(row["loss"]):
                raise ArtifactError(f"training loss became {row['loss']} at epoch {epoch + 1} ({tag}); "
                                    "check the embeddings for extreme values (asctool inspect)")
            if valid is not None:
                vclips, yv = valid
                clip = _clip_probs(self.model, vclips)
                row["val_accuracy"] = float(np.mean(clip.argmax(axis=1) == yv))
                row["val_loss"] = float(-np.mean(np.log(np.clip(clip[np.arange(len(yv)), yv], 1e-15, 1))))
                if best["accuracy"] is None or row["val_accuracy"] > best["accuracy"]:
                    best.update(epoch=epoch, accuracy=row["val_accuracy"], weights=self.model.get_weights())
                elif patience is not None and epoch - best["epoch"] >= patience:
                    self.model.stop_training = True
            rows.append(row)
            log.info("%s epoch %d/%d loss %.4f accuracy %.4f%s (%.1f s)", tag, epoch + 1, epochs, row["loss"],
                     row["accuracy"], "" if valid is None else
                     f" val_loss {row['val_loss']:.4f} val_accuracy (clips) {row['val_accuracy']:.4f}"
                     + (" (best)" if best["epoch"] == epoch else ""), time.perf_counter() - self.started)

    def one_epoch(epoch):
        return tf.data.Dataset.from_generator(
            lambda e: epoch_batches(clips, labels, batch=batch, seed=seed, epoch=int(e)), args=(epoch,),
            output_signature=(tf.TensorSpec((None, clips.dim), tf.float32), tf.TensorSpec((None,), tf.int64)))

    data = tf.data.Dataset.range(epochs).flat_map(one_epoch).prefetch(2)
    model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch(clips, batch), shuffle=False, verbose=0,
              callbacks=[Keep()])
    if best["weights"] is None:  # no validation: the last epoch
        best.update(epoch=len(rows) - 1, weights=model.get_weights())
    keras.backend.clear_session()
    return best["weights"], rows, best["epoch"], best["accuracy"]


def _save_mlp(weights, n_classes, dims, options, path: Path, metadata: dict) -> None:
    import keras

    from ..models import build

    model = build("mlp", n_classes, (dims,), **options)
    model.set_weights(weights)
    model.get_layer("standardise").finalize_state()
    with atomic_path(path) as tmp:
        model.save(tmp)
        embed_keras_metadata(tmp, metadata)
    keras.backend.clear_session()


# --------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------
def train_shallow(train_paths: Sequence[Path], model_name: str, out_dir: Path, *, labels: str = "scene",
                  valid_path=None, valid_split: float | None = None, epochs: int | None = None,
                  batch_size: int | None = None, profile: str = "paper", model_options=None, seed: int = 0,
                  force: bool = False, resume: bool = False, classes_path=None, grid: bool = False) -> dict[str, Any]:
    """Train the mlp on embedding frames, or a linear back-end on clip vectors; write the run folder.

    Called by the ``asctool train`` stage after its output checks (``claim_outputs``,
    ``check_run_dir``). Writes ``config.json``, ``train.log``, then ``model.keras``
    and ``history.tsv`` (mlp; ``grid.tsv`` with ``grid``) or ``model.json`` (linear).

    Parameters
    ----------
    train_paths : paths
        Embeddings files (mlp, linear) or features files (linear: the linear probe).
    model_name : str
        ``mlp`` or a linear back-end (``logreg``).
    valid_path, valid_split
        Validation (see the module docstring); a linear back-end uses none.
    epochs, batch_size, profile, grid
        MLP training (see the module docstring).
    model_options : ``KEY=VALUE`` strings or dict
        mlp: ``hidden``, ``l2``; logreg: ``c``, ``max_iter``.
    seed : int
        Seeds the weights, the shuffling and the stratified hold-out.

    Returns
    -------
    dict
        Summary: run folder, model file, classes, clip counts and, for the mlp,
        epochs run, best epoch, best validation accuracy (clips), learning rate, weight decay.

    Raises
    ------
    ConfigError
        Options the route does not take (``--grid`` for a linear back-end), bad option values.
    ArtifactError, MismatchError
        Unreadable, empty, NaN or mismatched inputs (nothing is written then).
    """
    from .. import backends

    kind_route = route(train_paths[0], model_name)
    linear = kind_route == "linear"
    kind = read_kind(train_paths[0]) if Path(train_paths[0]).is_file() else KIND_EMBEDDINGS
    options = parse_model_options(model_options)
    if linear:
        if grid:
            raise ConfigError(f"--grid: searches the mlp's learning rate and weight decay; {model_name} has none")
        options = backends.check_options(model_name, options)
    else:
        from ..models import check_options

        options = check_options(model_name, options)
    if profile not in FRAME_PROFILES and not linear:
        log.info("profile %s: the mlp uses the settings of profile paper (Adam 1e-3, patience 20)", profile)
    if grid and "l2" in options:
        raise ConfigError("--grid chooses the weight decay: leave out --option l2")
    known = read_classes(classes_path)
    mapping = resolve_label_map(labels)
    sources, data, frontend, shape = _read(train_paths, kind, "training", linear, seed)
    clips, classes = make_clip_set(sources, mapping, None, labels_name=labels, known=known)
    if len(classes) < 2:
        raise ConfigError(f"{sources[0].path}: training data has only the class {classes}; at least 2 are needed")
    y = clips.labels
    valid = None
    protocol = None
    if not linear:
        if valid_path is not None:
            vsources, vdata, vconfig, vshape = _read([Path(valid_path)], kind, "validation", False, seed)
            check_same_config(frontend, vconfig, train_paths[0], valid_path)
            if vshape[-1] != shape[-1]:
                raise MismatchError(f"{valid_path}: frames of {vshape[-1]} dimensions, training has {shape[-1]}")
            shared = set(vsources[0].ids) & set(np.concatenate([s.ids for s in sources]))
            if shared:
                raise MismatchError(f"{valid_path}: {len(shared)} clip(s) are also training clips "
                                    f"(e.g. {sorted(shared)[0]})")
            vclips, _ = make_clip_set(vsources, mapping, classes, labels_name=labels, known=known)
            valid, protocol = (vdata, vclips.labels), "file"
        else:
            if valid_split:
                locations = np.concatenate([clip_locations(s) for s in sources])
                mask, _ = hold_out_locations(clips, locations, float(valid_split), seed)
                if not mask.any() or mask.all():
                    raise ConfigError(f"--valid-split {valid_split}: cannot hold out locations of "
                                      f"{sources[0].path} (every class needs at least 2 locations)")
                protocol = f"{valid_split} of the locations"
            else:
                mask = stratified_hold_out(y, HOLD_OUT, seed, str(sources[0].path))
                protocol = f"{HOLD_OUT} of the clips, stratified by class"
            valid, data, y = (data.subset(mask), y[mask]), data.subset(~mask), y[~mask]
    elif valid_path is not None or valid_split:
        log.warning("%s: a linear back-end uses no validation data; --valid/--valid-split ignored", model_name)

    settings = FRAME_PROFILES.get(profile, FRAME_PROFILES["paper"])
    resolved = None if linear else resolve_profile(profile, model_name, epochs=epochs, batch_size=batch_size)
    config: dict[str, Any] = {
        "train": [str(p) for p in train_paths], "model": model_name, "model_options": options,
        "labels": labels, "label_map": mapping, "classes": classes,
        "valid": None if valid_path is None else str(valid_path), "valid_split": valid_split or None,
        "valid_protocol": protocol, "profile": profile, "seed": int(seed),
        "inputs": "embeddings" if kind == KIND_EMBEDDINGS else "features",
        "input_shape": [int(shape[-1])] if not linear else list(shape), "frontend_config": frontend,
        "n_train": int(len(y)), "n_valid": 0 if valid is None else int(len(valid[1])),
        "out_dir": str(out_dir), "asctool_version": __version__, "command": current_command(),
        "created": _dt.datetime.now(tz=_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if not linear:
        config.update(epochs=resolved["epochs"], batch_size=min(resolved["batch_size"], len(data) * data.frames),
                      lr=None if grid else settings["lr"], patience=settings["patience"], grid=bool(grid),
                      collapse="sum", n_train_frames=int(len(data) * data.frames))
    else:
        config["summary"] = backends.SUMMARIES[config["inputs"]]
    config = json.loads(json.dumps(config, default=str))
    if resume:
        log.info("%s: a %s run is short and deterministic: training it again from the start", out_dir, model_name)
    for name in (*RUN_FILES, *_SHALLOW_FILES):
        target = out_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists() and (force or resume):
            target.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "config.json", config)
    with log_to(out_dir / "train.log"):
        if linear:
            return _train_linear(config, data, y, out_dir, seed, options)
        return _train_mlp(config, data, y, valid, out_dir, seed, options)


def _train_linear(config, x, y, out_dir: Path, seed: int, options) -> dict[str, Any]:
    from .. import backends

    log.info("fit %s on %d clips (%s), %d classes", config["model"], len(y), config["summary"], len(config["classes"]))
    coef, intercept, mean, scale, info = backends.spec(config["model"]).fit(x, y, len(config["classes"]),
                                                                            seed=seed, **options)
    metadata = {**model_metadata(config), "backend": config["model"], "inputs": config["inputs"],
                "summary": config["summary"], "options": options, "info": info}
    model = backends.LinearModel(coef, intercept, mean, scale, metadata)
    model.save(out_dir / "model.json")
    log.info("wrote %s (training accuracy %.4f)", out_dir / "model.json", info["train_accuracy"])
    return {"out_dir": str(out_dir), "model": str(out_dir / "model.json"), "classes": config["classes"],
            "n_train": config["n_train"], **info}


def _train_mlp(config, data, y, valid, out_dir: Path, seed: int, options) -> dict[str, Any]:
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()
    n, t, d = len(data), data.frames, data.dim
    mean, var, count = frame_moments(data)
    grid = config["grid"]
    pairs = list(itertools.product(GRID, GRID)) if grid else [(config["lr"], float(options.get("l2", 0.0)))]
    log.info("train mlp on %d frames of %d clips (%d validation clips, %s), %d classes, %d epochs max, batch %d%s",
             n * t, n, config["n_valid"], config["valid_protocol"], len(config["classes"]), config["epochs"],
             config["batch_size"], f", grid of {len(pairs)} (lr, weight decay)" if grid else "")
    results, chosen = [], None
    for lr, l2 in pairs:
        weights, rows, best_epoch, best_acc = _fit_mlp(
            (data, y), valid, n_classes=len(config["classes"]), mean=mean, var=var, count=count, lr=lr, l2=l2,
            epochs=config["epochs"], batch=config["batch_size"], patience=config["patience"], seed=seed,
            options={k: v for k, v in options.items() if k != "l2"}, tag=f"lr {lr:g} wd {l2:g}")
        results.append({"lr": lr, "weight_decay": l2, "epochs_run": len(rows), "best_epoch": best_epoch,
                        "val_accuracy": best_acc})
        if chosen is None or (best_acc is not None and best_acc > chosen[3]):
            chosen = (weights, rows, (lr, l2), best_acc, best_epoch)
    weights, rows, (lr, l2), best_acc, best_epoch = chosen
    if grid:
        with atomic_path(out_dir / "grid.tsv") as tmp:
            tmp.write_text("lr\tweight_decay\tepochs_run\tbest_epoch\tval_accuracy\n" + "".join(
                f"{r['lr']:g}\t{r['weight_decay']:g}\t{r['epochs_run']}\t{r['best_epoch']}\t{r['val_accuracy']:.6g}\n"
                for r in results), encoding="utf-8")
        log.info("grid: lr %g, weight decay %g chosen (validation accuracy %.4f)", lr, l2, best_acc)
    metadata = {**model_metadata(config), "inputs": "embeddings", "collapse": "sum"}
    _save_mlp(weights, len(config["classes"]), d, {**options, "l2": l2}, out_dir / "model.keras", metadata)
    write_history(out_dir / "history.tsv", rows)
    write_json(out_dir / "state.json", {"epoch": len(rows), "best_epoch": best_epoch, "best_val_accuracy": best_acc,
                                        "lr": lr, "weight_decay": l2, "grid": results if grid else None})
    final = rows[-1]
    log.info("wrote %s", out_dir / "model.keras")
    return {"out_dir": str(out_dir), "model": str(out_dir / "model.keras"), "classes": config["classes"],
            "n_train": config["n_train"], "n_valid": config["n_valid"], "n_train_frames": n * t,
            "epochs_run": len(rows), "best_epoch": best_epoch, "best_val_accuracy": best_acc, "lr": lr,
            "weight_decay": l2, "loss": final["loss"], "accuracy": final["accuracy"]}


# --------------------------------------------------------------------------
# prediction
# --------------------------------------------------------------------------
def shallow_scores(model_path: Path, features_path: Path, *, batch_size: int = 64, collapse_method: str = "sum"):
    """Clip probabilities of a linear back-end (``RUN/model.json``) or of a model of embedding frames.

    Returns
    -------
    (metadata, ids, scores (N, K), scenes, devices, extra attributes of the scores file)

    Raises
    ------
    ArtifactError
        Unreadable model or input, NaN/Inf inputs or scores, an empty input.
    MismatchError
        The model was trained on another kind of file, front end or extractor, or shape.
    """
    from ..backends import LinearModel, clip_summaries
    from ..console import progress

    if collapse_method not in COLLAPSE:
        raise ConfigError(f"--collapse {collapse_method!r}: choose from {', '.join(COLLAPSE)}")
    if model_path.suffix == ".json":
        model = LinearModel.load(model_path)
        meta, kind = model.metadata, model.metadata["inputs"]
    else:
        meta = read_model_metadata(model_path)
        kind = meta.get("inputs", "features")
        if kind != "embeddings":
            raise MismatchError(f"{features_path}: holds embeddings; {model_path} reads features")
    found = read_kind(features_path) if features_path.is_file() else kind
    if found != kind:
        raise MismatchError(f"{features_path}: a {found} file; {model_path} was trained on {kind}")
    extra = {"model": str(model_path), "model_name": str(meta["model"])}
    with _open(features_path, kind) as f:
        check_same_config(meta["frontend_config"], f.config, f"{model_path} (its metadata)", features_path)
        want, shape = list(meta["input_shape"]), list(f.feature_shape)
        if shape[-1] != want[-1] or (kind == KIND_FEATURES and shape[0] != want[0]):
            raise MismatchError(f"{features_path}: clips of shape {tuple(shape)} do not fit {model_path}, "
                                f"trained on {tuple(want)}")
        n = len(f)
        if n == 0:
            raise ArtifactError(f"{features_path}: {kind} file holds no clips")
        with progress(n, "predicting") as advance:
            if model_path.suffix == ".json":
                scores = model.predict_proba(clip_summaries(f, kind, batch=batch_size, progress=advance))
            else:
                from ..inference import load_runner

                run = load_runner(model_path)
                scores = np.empty((n, len(meta["classes"])), dtype=np.float64)
                for start, view in f.batches(batch_size):
                    frames = run(view.reshape(-1, shape[-1]).astype(np.float32))
                    bad = first_nonfinite(frames)
                    if bad is not None:
                        raise ArtifactError(f"{model_path}: gives NaN or Inf scores for clip "
                                            f"{f.ids[start + bad // shape[0]]} of {features_path}")
                    scores[start:start + len(view)] = collapse(frames.reshape(len(view), shape[0], -1),
                                                               collapse_method)
                    advance(len(view))
                extra["collapse"] = collapse_method
        ids, scenes, devices = list(f.ids), list(f.scenes), list(f.devices)
    return meta, ids, scores, scenes if any(scenes) else None, devices if any(devices) else None, extra
