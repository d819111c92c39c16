"""Training on several workers: ``asctool train --distribute multiworker``.

TensorFlow's ``tf.distribute.MultiWorkerMirroredStrategy`` keeps one copy of the
model per replica (a GPU, or the CPU of a worker without one) on every worker and
sums the gradients across all of them each step. Keras 3's ``model.fit`` fails under
this strategy ("Attempt to convert a value (PerReplica ...)", keras-team/keras issue
20585), so this module runs the training loop itself (the pattern of TensorFlow's
"Custom training loop with Keras and MultiWorkerMirroredStrategy" tutorial):

- the input: every replica reads only its share of each global batch
  (:func:`replica_rows`), through ``strategy.distribute_datasets_from_function``, so no
  clip is read twice per epoch and the union of the shares is exactly the batch that
  single-worker training (:mod:`asctool.training.pipeline`) reads, with the same
  crop offsets and masks;
- the step: ``strategy.run`` of a step that computes the loss of the replica's share
  with ``tf.GradientTape``, scaled by the *global* batch size (the per-example
  cross-entropy summed and divided by ``B``, plus the regularisation losses divided
  by the number of replicas), so that the gradients Keras's optimizer sums across
  replicas are those of the mean loss over the global batch;
- batch normalisation runs synchronised: the mean and variance of the global batch
  (:func:`_synchronised_moments`, two passes like ``tf.nn.moments``: the mean summed
  across replicas, then the squared deviations from it), so a step equals the
  single-worker step to floating-point rounding. Keras's own ``synchronized=True``
  computes ``E[x^2] - E[x]^2`` in one pass, which is not the single-worker
  computation and loses digits where the mean is far from zero (log-mel energies
  at the first layer). The replacement is set on the layer objects of this run
  (``layer._moments``, a private Keras method: tests/test_distributed.py fails if a
  Keras release changes it) and is not saved with the model. Two differences remain, both
  by design: dropout draws its masks per replica (a replica's share gets the mask
  a batch of that size would), and mixup pairs clips within a replica's share (the
  partner permutation of the global batch is re-ranked within the share);
- the trainer's schedule, checkpoints, history, best model, snapshots and resume
  (:mod:`asctool.training.trainer`): the learning rate is set before every step
  from the global step, the dropout seeds per epoch from ``(seed, epoch)``.

Only the chief (worker 0) writes the run folder; the other workers write nothing and
read the checkpoint from it when resuming, so the folder must be shared (as it is on
a cluster's shared file system). The cluster comes from ``TF_CONFIG`` when it is set,
else from Slurm's variables under ``srun`` (:func:`_slurm_resolver`: one worker per
Slurm task, ports from ``$ASCTOOL_PORT_BASE``, default 8888). docs/scaling.md shows
both.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import AsctoolError, ConfigError
from ..runs import model_metadata, write_history
from .batch_augment import AugmentConfig, apply_batch, param_signature
from .data import ClipSet
from .pipeline import BatchReader, batch_draws, eval_batches
from .schedule import Schedule, learning_rate

__all__ = ["WorkerRole", "worker_role", "replica_rows", "shard_params", "fit_multiworker"]

log = logging.getLogger(__name__)

#: Local batches computed ahead of the step on each worker.
PREFETCH = 2


@dataclass(frozen=True)
class WorkerRole:
    """This process's place in a multi-worker run.

    Attributes
    ----------
    index : int
        Worker index, 0-based.
    count : int
        Number of workers.
    source : {"TF_CONFIG", "slurm"}
        Where the cluster was read from.
    """

    index: int
    count: int
    source: str

    @property
    def is_chief(self) -> bool:
        """Worker 0 is the chief: it alone writes the run folder."""
        return self.index == 0


def worker_role(environ: Mapping[str, str] | None = None) -> WorkerRole:
    """The worker index and count from ``TF_CONFIG``, else from Slurm's variables under ``srun``.

    Parameters
    ----------
    environ : mapping, optional
        The environment (default ``os.environ``).

    Raises
    ------
    ConfigError
        No cluster described (neither ``TF_CONFIG`` nor ``SLURM_PROCID`` with
        ``SLURM_STEP_NUM_TASKS``), or a ``TF_CONFIG`` that is not the JSON of a
        worker cluster (``{"cluster": {"worker": [...]}, "task": {"type": "worker",
        "index": i}}``).
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG", "").strip()
    if text:
        try:
            tf_config = json.loads(text)
            workers = tf_config["cluster"]["worker"]
            task = tf_config["task"]
            index = int(task["index"])
            if task.get("type", "worker") != "worker" or set(tf_config["cluster"]) != {"worker"}:
                raise ValueError("only 'worker' tasks are supported (worker 0 is the chief)")
            if not isinstance(workers, list) or not 0 <= index < len(workers):
                raise ValueError(f"task index {index} is not one of the {len(workers)} workers")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"--distribute multiworker: TF_CONFIG is not a worker cluster ({exc})") from None
        return WorkerRole(index, len(workers), "TF_CONFIG")
    if "SLURM_PROCID" in environ and "SLURM_STEP_NUM_TASKS" in environ:
        return WorkerRole(int(environ["SLURM_PROCID"]), int(environ["SLURM_STEP_NUM_TASKS"]), "slurm")
    raise ConfigError("--distribute multiworker: no cluster described; set TF_CONFIG or start the workers "
                      "with srun (docs/scaling.md)")


def _slurm_resolver():
    """The cluster of an ``srun`` step: one worker per task, in Slurm's task order.

    Worker ``i`` is task ``SLURM_PROCID == i``, at ``HOST:PORT``: the step's nodes in
    Slurm's order (``SLURM_STEP_NODELIST``, expanded by TensorFlow's Slurm helpers),
    each with its number of tasks (``SLURM_STEP_TASKS_PER_NODE``) on ports
    ``$ASCTOOL_PORT_BASE`` (default 8888), +1, ... (the rank order of srun's default
    block distribution, as ``SlurmClusterResolver`` assumes). The GPUs a task uses are
    those Slurm made visible to it (``--gpus-per-task``). TensorFlow's own
    ``SlurmClusterResolver`` is not used: it divides by the GPUs per task and fails on
    CPU-only nodes.
    """
    import tensorflow as tf
    from tensorflow.python.distribute.cluster_resolver import slurm_cluster_resolver as slurm

    hosts = slurm.expand_hostlist(os.environ["SLURM_STEP_NODELIST"])
    per_node = slurm.expand_tasks_per_node(os.environ["SLURM_STEP_TASKS_PER_NODE"])
    base = int(os.environ.get("ASCTOOL_PORT_BASE", "8888"))
    workers = [f"{host}:{base + i}" for host, tasks in zip(hosts, per_node) for i in range(tasks)]
    rank = int(os.environ["SLURM_PROCID"])
    if len(workers) != int(os.environ["SLURM_STEP_NUM_TASKS"]) or not 0 <= rank < len(workers):
        raise ConfigError(f"--distribute multiworker: Slurm's step lists {len(workers)} task(s) on "
                          f"{', '.join(hosts)} but has {os.environ['SLURM_STEP_NUM_TASKS']} (task {rank})")
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec({"worker": workers}), task_type="worker", task_id=rank, rpc_layer="grpc",
        num_accelerators={"GPU": len(tf.config.list_physical_devices("GPU"))})


def _make_strategy(role: WorkerRole):
    import tensorflow as tf

    if role.source == "TF_CONFIG":
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    else:
        resolver = _slurm_resolver()
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def replica_rows(batch: int, replica: int, replicas: int) -> np.ndarray:
    """Positions in a global batch of ``batch`` clips that replica ``replica`` of ``replicas`` reads.

    Positions ``replica, replica + replicas, ...``: every position once over the
    replicas, ``batch // replicas`` each (``batch`` must be a multiple of ``replicas``).
    """
    return np.arange(replica, batch, replicas)


def shard_params(params: Mapping[str, Mapping[str, np.ndarray]], rows: np.ndarray,
                 batch: int) -> dict[str, dict[str, np.ndarray]]:
    """A replica's share of a batch's augmentation parameters (:func:`draw_batch`).

    Per-example arrays (leading dimension ``batch``) are sliced to ``rows``; mixup's
    partner permutation ``perm`` is replaced by a permutation of the share, the
    ranks of the global partners of its rows (partners stay within the share).

    Returns
    -------
    dict of the same names, arrays with leading dimension ``len(rows)``.
    """
    shared: dict[str, dict[str, np.ndarray]] = {}
    for name, arrays in params.items():
        shared[name] = {}
        for key, value in arrays.items():
            value = np.asarray(value)
            if name == "mixup" and key == "perm":
                shared[name][key] = np.argsort(np.argsort(value[rows], kind="stable"),
                                               kind="stable").astype(value.dtype)
            elif value.ndim and value.shape[0] == batch:
                shared[name][key] = value[rows]
            else:
                shared[name][key] = value
    return shared


def _share_batches(clips: ClipSet, *, batch: int, seed: int, first_epoch: int, epochs: int,
                   augment: AugmentConfig, replicas: list[int], n_replicas: int):
    """Yield ``(x, labels, params)`` of each replica in ``replicas`` for every step, in step order."""
    with BatchReader(clips) as reader:   # the single-worker batches (pipeline.batch_draws), split by replica
        for index, offset, params in batch_draws(clips, batch_size=batch, seed=seed, first_epoch=first_epoch,
                                                 epochs=epochs, augment=augment):
            for replica in replicas:
                rows = replica_rows(len(index), replica, n_replicas)
                x = reader.read(clips.file_index[index[rows]], clips.row[index[rows]],
                                None if offset is None else offset[rows], augment.crop)
                yield x, clips.labels[index[rows]], shard_params(params, rows, len(index))


def _input_function(clips: ClipSet, *, batch: int, seed: int, first_epoch: int, epochs: int,
                    augment: AugmentConfig, num_classes: int, n_replicas: int):
    """The ``distribute_datasets_from_function`` argument: one pipeline per worker, its replicas' shares."""
    import tensorflow as tf

    share = batch // n_replicas
    freq, _, channels = clips.feature_shape
    time_ = augment.output_time(clips.feature_shape[1])
    params_spec = param_signature(augment, (batch, *clips.feature_shape))
    params_spec = {name: {key: tf.TensorSpec((share, *spec.shape[1:]) if spec.shape and spec.shape[0] == batch
                                             else spec.shape, spec.dtype)
                          for key, spec in arrays.items()} for name, arrays in params_spec.items()}
    signature = (tf.TensorSpec((share, freq, time_, channels), tf.as_dtype(clips.dtype)),
                 tf.TensorSpec((share,), tf.int32), params_spec)

    def make(context):
        per_worker = n_replicas // context.num_input_pipelines
        first = context.input_pipeline_id * per_worker
        replicas = list(range(first, first + per_worker))
        dataset = tf.data.Dataset.from_generator(
            lambda: _share_batches(clips, batch=batch, seed=seed, first_epoch=first_epoch, epochs=epochs,
                                   augment=augment, replicas=replicas, n_replicas=n_replicas),
            output_signature=signature)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        dataset = dataset.with_options(options)
        return dataset.map(lambda x, labels, params: apply_batch(x, labels, params, config=augment,
                                                                 num_classes=num_classes),
                           num_parallel_calls=PREFETCH, deterministic=True).prefetch(PREFETCH)

    return make


def _synchronised_moments(layer):
    """A replacement of ``layer._moments``: the global batch's mean and variance across replicas.

    Two passes, as ``tf.nn.moments``: ``mean = sum(x) / n`` and ``var = sum((x -
    mean)^2) / n``, each sum all-reduced over the replicas (``n``: elements over the
    reduction axes of all replicas); the mean is a constant in the variance's gradient,
    as there. Outside a replica context (a single replica) it is ``tf.nn.moments``.
    """
    import tensorflow as tf

    def moments(inputs, mask):
        if mask is not None:
            raise ConfigError(f"{layer.name}: masked batch normalisation is not supported by multi-worker training")
        x = tf.cast(inputs, tf.float32)
        axes = list(layer._reduction_axes)
        context = tf.distribute.get_replica_context()
        shape = tf.shape(x)
        count = tf.cast(tf.reduce_prod(tf.gather(shape, axes)), tf.float32)
        total, count = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                          [tf.reduce_sum(x, axes, keepdims=True), count])
        mean = total / count
        squares = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(
            tf.math.squared_difference(x, tf.stop_gradient(mean)), axes, keepdims=True))
        mean, variance = tf.squeeze(mean, axes), tf.squeeze(squares / count, axes)
        return tf.cast(mean, inputs.dtype), tf.cast(variance, inputs.dtype)

    return moments


def _batch_norms(model) -> list:
    import keras

    found, stack = [], list(model.layers)
    while stack:
        layer = stack.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return found


def _evaluate(model, clips: ClipSet, *, batch_size: int, num_classes: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``clips``, full length, on this worker alone."""
    import keras

    total_loss, correct, n = 0.0, 0, 0
    for x, labels in eval_batches(clips, batch_size=batch_size):
        probs = np.asarray(model(x.astype(np.float32), training=False))
        y = keras.utils.to_categorical(labels, num_classes)
        total_loss += float(np.sum(keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(y, probs))))
        correct += int(np.sum(np.argmax(probs, axis=1) == labels))
        n += len(labels)
    return total_loss / n, correct / n


def fit_multiworker(*, config, state, out_dir: Path, clips: ClipSet, valid: ClipSet | None, aug: AugmentConfig,
                    options_all, spe, schedule: Schedule, snap_epochs, interrupt_at_step) -> dict[str, Any]:
    """:func:`asctool.training.trainer.fit` across the workers of ``TF_CONFIG`` or of an ``srun`` step.

    Same parameters and summary as :func:`asctool.training.trainer.fit`. Every
    worker runs it with the same arguments; the chief (worker 0) alone writes
    ``out_dir`` (checkpoints, ``state.json``, ``history.tsv``, ``model.keras``,
    ``last.keras``, snapshots); the others return the same summary.

    Raises
    ------
    ConfigError
        No cluster described, or a batch size that is not a multiple of the
        number of replicas.
    AsctoolError
        The training loss became NaN or infinite (the run folder keeps the last
        completed epoch's files).
    """
    import keras
    import tensorflow as tf

    from ..console import progress
    from ..models import build
    from .trainer import (SimulatedKill, average_snapshots, copy_atomic, export_model, reseed_dropout,
                          save_epoch_files, set_bn_momentum)

    role = worker_role()
    strategy = _make_strategy(role)   # before any other TensorFlow call: it configures the collectives
    chief = role.is_chief
    n_replicas = strategy.num_replicas_in_sync
    batch, epochs, seed, classes = config["batch_size"], config["epochs"], config["seed"], config["classes"]
    if batch % n_replicas:
        raise ConfigError(f"--batch-size {batch}: must be a multiple of the {n_replicas} replicas of the "
                          f"{role.count} workers (each replica trains on an equal share of the batch)")
    metadata = model_metadata(config)
    first_epoch = int(state["epoch"])
    log.info("worker %d of %d (%s, %s), %d replicas in sync, %d clips per replica per step", role.index,
             role.count, role.source, "chief: writes the run folder" if chief else "writes nothing",
             n_replicas, batch // n_replicas)
    keras.utils.set_random_seed(seed)
    if not tf.config.list_logical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()
    with strategy.scope():
        if state.get("checkpoint") and first_epoch > 0:
            model = keras.saving.load_model(out_dir / "checkpoint" / state["checkpoint"], compile=True)
        else:
            freq, _, channels = config["input_shape"]
            model = build(config["model"], len(classes), (freq, None, channels), **options_all)
            set_bn_momentum(model, config["bn_momentum"])
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule.lr_max, momentum=schedule.momentum),
                          loss=keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
    for layer in _batch_norms(model):
        # global-batch statistics while training (an attribute of this object only: not saved)
        layer._moments = _synchronised_moments(layer)

    def step_fn(x, y):
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            per_example = keras.losses.categorical_crossentropy(y, probs)
            loss = tf.reduce_sum(per_example) / batch
            if model.losses:
                loss += tf.add_n(model.losses) / n_replicas
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, 1), tf.argmax(y, 1)), tf.float32))
        return loss, correct

    @tf.function
    def train_step(iterator):
        loss, correct = strategy.run(step_fn, args=next(iterator))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None))

    state["history"] = [row for row in state["history"] if row["epoch"] <= first_epoch]   # 1-based, as in the trainer
    has_valid = valid is not None
    if first_epoch < epochs:
        dataset = strategy.distribute_datasets_from_function(_input_function(
            clips, batch=batch, seed=seed, first_epoch=first_epoch, epochs=epochs, augment=aug,
            num_classes=len(classes), n_replicas=n_replicas))
        iterator = iter(dataset)
        with progress((epochs - first_epoch) * spe, "training") as advance:
            for epoch in range(first_epoch, epochs):
                started = time.perf_counter()
                reseed_dropout(model, seed, epoch)   # dropout draws from (seed, epoch), as in the trainer
                losses, correct = [], 0.0
                for step in range(spe):
                    global_step = epoch * spe + step
                    if interrupt_at_step is not None and global_step >= interrupt_at_step:
                        raise SimulatedKill(f"simulated kill at step {global_step}")
                    optimizer.learning_rate.assign(learning_rate(global_step, spe, schedule))
                    loss, right = train_step(iterator)
                    loss = float(loss)
                    if not np.isfinite(loss):
                        raise AsctoolError(
                            f"{out_dir}: training loss became {loss} at epoch {epoch + 1}, step {step + 1}; training "
                            f"stopped, the run folder keeps the files of its {state['epoch']} completed epoch(s); "
                            "check the features for extreme values (asctool inspect), then start again with --force")
                    losses.append(loss)
                    correct += float(right)
                    advance(1)
                row = {"epoch": epoch + 1, "lr": learning_rate(epoch * spe, spe, schedule),
                       "loss": float(np.mean(losses)), "accuracy": correct / (spe * batch),
                       "val_loss": None, "val_accuracy": None}
                message = (f"epoch {epoch + 1}/{epochs} lr {row['lr']:.5f} loss {row['loss']:.4f} "
                           f"accuracy {row['accuracy']:.4f}")
                done = epoch + 1
                if chief:
                    if has_valid:
                        row["val_loss"], row["val_accuracy"] = _evaluate(
                            model, valid, batch_size=batch, num_classes=len(classes))
                        message += f" val_loss {row['val_loss']:.4f} val_accuracy {row['val_accuracy']:.4f}"
                        if state["best_val_accuracy"] is None or row["val_accuracy"] > state["best_val_accuracy"]:
                            state.update(best_val_accuracy=row["val_accuracy"], best_epoch=epoch + 1)
                            export_model(model, out_dir / "model.keras", metadata)
                            message += " (best)"
                    state["history"].append(row)
                    save_epoch_files(model, out_dir, state, done=done, spe=spe, snapshot=done in snap_epochs)
                else:
                    state["history"].append(row)
                    state.update(epoch=done, steps=done * spe)
                log.info("%s (%.1f s)", message, time.perf_counter() - started)
    else:
        log.info("run %s already completed its %d epochs; finalising", out_dir, epochs)

    final = state["history"][-1] if state["history"] else {}
    summary: dict[str, Any] = {
        "out_dir": str(out_dir), "model": str(out_dir / "model.keras"), "epochs": epochs,
        "steps": int(state["steps"]), "steps_per_epoch": spe, "classes": classes,
        "n_train": config["n_train"], "n_valid": config["n_valid"],
        "loss": final.get("loss"), "accuracy": final.get("accuracy"),
        "workers": role.count, "replicas": n_replicas,
    }
    if not chief:
        return summary
    export_model(model, out_dir / "last.keras", metadata)
    if config["snapshots"] and state["snapshots"]:
        names = state["snapshots"][-config["snapshots"]:]
        average_snapshots(model, out_dir, names, metadata)
        summary["snapshots_averaged"] = names
        if has_valid:
            _, summary["snapshot_val_accuracy"] = _evaluate(model, valid, batch_size=batch,
                                                            num_classes=len(classes))
    elif not has_valid or not (out_dir / "model.keras").exists():
        copy_atomic(out_dir / "last.keras", out_dir / "model.keras")
    if has_valid:
        summary["best_epoch"] = state["best_epoch"]
        summary["best_val_accuracy"] = state["best_val_accuracy"]
    write_history(out_dir / "history.tsv", state["history"])
    log.info("wrote %s", summary["model"])
    return summary
