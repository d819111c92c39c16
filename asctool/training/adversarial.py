"""Unlabelled target data: device-adversarial training and tri-training.

Park et al., "Weakly labeled sound event detection using tri-training and
adversarial learning" (DCASE 2019 workshop), carried over to the device
problem of acoustic scene classification:

- **Adversarial domain learning** (section 2.2; Ganin & Lempitsky, ICML 2015):
  a domain classifier D on the backbone's last feature map, behind a gradient
  reversal layer (:class:`asctool.models.grl.GradientReversal`) of weight
  alpha, so the feature extractor F gets ``dL_y/dθ_F - α dL_d/dθ_F`` and D
  gets ``dL_d/dθ_D``. ``whole``: D sees the clip's pooled representation (one
  prediction per clip); ``time``: D sees every time frame of the feature map
  (frequency averaged; one prediction per frame, each with the clip's domain
  label). Domain labels (``--domain``): ``device`` (one class per device),
  ``source`` (device ``a`` vs the rest), ``set`` (labelled vs unlabelled).
- **Tri-training** (section 2.3; Saito et al., ICML 2017): two labellers F1, F2
  (a hidden layer and a softmax each, on the pooled feature map) beside the
  backbone's own head Ft, kept different by the penalty
  ``λ · Σ|(W1/‖W1‖)ᵀ (W2/‖W2‖)|`` on their hidden layers' kernels
  (:func:`orthogonality_penalty`); ``asctool pseudo-label`` then keeps the
  unlabelled clips on which F1 and F2 agree with confidence.

How the batches carry both targets: each training clip gets one *joint* label
``j = d·(C+1) + c`` (``d`` its domain, ``c`` its class or ``C`` when it is
unlabelled), so the unchanged input pipeline (shuffling, crop, mixup) serves
``(K·(C+1))``-way soft targets, which :class:`DomainAdversarialModel` splits
back into class targets (summed over domains, the "unlabelled" column dropped)
and domain targets (summed over classes). An unlabelled clip thus has an all
zero class target and adds nothing to the class loss; the class loss is
averaged over the labelled mass of the batch.

The run's ``model.keras`` is the backbone alone (the deployable classifier:
no GRL, no D, no labellers); with tri-training, ``labellers.keras`` maps the
input to ``[Ft, F1, F2]`` probabilities (the weights of ``model.keras``; ``labellers-last.keras``
those of ``last.keras``); the full training graph is the
checkpoint (``checkpoint/epoch-NNNN.keras``), from which ``--resume``
continues.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

from ..artifacts import check_same_config, open_features
from ..errors import ArtifactError, ConfigError, MismatchError
from .data import ClipSet, SourceInfo, read_sources

__all__ = ["HEADS", "DOMAINS", "SOURCE_DEVICE", "domain_labels", "joint_labels", "split_joint",
           "orthogonality_penalty", "check_options", "attach_unlabelled", "build_training_model",
           "DomainAdversarialModel", "LABELLERS_FILE", "select_pseudo_labels"]

log = logging.getLogger(__name__)

#: Where the domain classifier looks: the pooled clip representation or every time frame.
HEADS = ("whole", "time")
#: What the domain labels are.
DOMAINS = ("device", "source", "set")
#: The source device of ``--domain source`` (DCASE 2020 Task 1a: device A).
SOURCE_DEVICE = "a"
#: The tri-training labellers' model in the run folder (input -> [Ft, F1, F2]).
LABELLERS_FILE = "labellers.keras"
#: Units of the hidden layer of the domain classifier and of each labeller.
HIDDEN = 64


def domain_labels(domain: str, labelled_devices: Sequence[str],
                  unlabelled_devices: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """The domain index of every clip, labelled clips first.

    Parameters
    ----------
    domain : {"device", "source", "set"}
        ``device``: the sorted device names; ``source``: ``["a", "other"]``
        (device ``a`` vs the rest); ``set``: ``["labelled", "unlabelled"]``.
    labelled_devices, unlabelled_devices : sequence of str
        The ``device`` column of each clip ("" when unknown; only ``set`` accepts that).

    Returns
    -------
    (labels, names) : int32 array of length ``len(labelled) + len(unlabelled)``, and the domain names.

    Raises
    ------
    ConfigError
        Unknown domain, or a clip without a device for ``device``/``source``.
    """
    lab = np.asarray(labelled_devices, dtype=object).astype(str)
    unl = np.asarray(unlabelled_devices, dtype=object).astype(str)
    if domain == "set":
        return np.concatenate([np.zeros(len(lab), np.int32), np.ones(len(unl), np.int32)]), ["labelled", "unlabelled"]
    if domain not in DOMAINS:
        raise ConfigError(f"--domain {domain!r}: choose from {', '.join(DOMAINS)}")
    every = np.concatenate([lab, unl])
    if (every == "").any():
        raise ConfigError(f"--domain {domain}: {int((every == '').sum())} clip(s) have no device")
    if domain == "source":
        return (every != SOURCE_DEVICE).astype(np.int32), [SOURCE_DEVICE, "other"]
    names = sorted(set(every.tolist()))
    index = {name: i for i, name in enumerate(names)}
    return np.fromiter((index[d] for d in every), dtype=np.int32, count=len(every)), names


def joint_labels(classes: np.ndarray, domains: np.ndarray, num_classes: int) -> np.ndarray:
    """``d·(C+1) + c`` per clip; ``classes`` holds ``-1`` (or ``C``) for unlabelled clips."""
    classes = np.asarray(classes, dtype=np.int64).copy()
    classes[classes < 0] = num_classes
    return (np.asarray(domains, dtype=np.int64) * (num_classes + 1) + classes).astype(np.int32)


def split_joint(y, num_classes: int, num_domains: int):
    """Soft joint targets ``(batch, K·(C+1))`` -> class targets ``(batch, C)`` and domain targets ``(batch, K)``."""
    from keras import ops

    joint = ops.reshape(y, (-1, num_domains, num_classes + 1))
    return ops.sum(joint, axis=1)[:, :num_classes], ops.sum(joint, axis=2)


def orthogonality_penalty(w1, w2):
    """``Σ_ij |((W1/‖W1‖)ᵀ (W2/‖W2‖))_ij|``, the tri-training labellers' penalty (without λ).

    Saito et al., "Asymmetric tri-training for unsupervised domain
    adaptation" (ICML 2017), eq. 1, with the kernels scaled to unit Frobenius
    norm as in Park et al. (DCASE 2019 workshop), eq. 4. ``w1``, ``w2``:
    kernels ``(features, hidden)`` of the labellers' first layers; returns a
    scalar in ``[0, hidden]``.
    """
    from keras import ops

    u = w1 / (ops.sqrt(ops.sum(ops.square(w1))) + 1e-12)
    v = w2 / (ops.sqrt(ops.sum(ops.square(w2))) + 1e-12)
    return ops.sum(ops.abs(ops.matmul(ops.transpose(u), v)))


def select_pseudo_labels(p1: np.ndarray, p2: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The clips the two labellers agree on, both confidently (tri-training, phase 1 -> 2).

    Park et al. (DCASE 2019 workshop), section 2.3; Saito et al. (ICML 2017),
    algorithm 1: keep clip ``i`` when ``argmax p1[i] == argmax p2[i]`` and
    both labellers' probabilities of that class exceed ``threshold``.

    Parameters
    ----------
    p1, p2 : np.ndarray [shape=(n, C)]
        Class probabilities of labellers F1 and F2.
    threshold : float
        In [0, 1); 0.5 in the paper.

    Returns
    -------
    (keep, labels) : boolean mask ``(n,)`` and the agreed class index of every clip ``(n,)``
        (meaningful where ``keep``).
    """
    p1, p2 = np.asarray(p1, dtype=np.float64), np.asarray(p2, dtype=np.float64)
    if p1.shape != p2.shape or p1.ndim != 2:
        raise ValueError(f"labeller scores of shapes {p1.shape} and {p2.shape}: expected two equal (n, C)")
    a1, a2 = p1.argmax(axis=1), p2.argmax(axis=1)
    rows = np.arange(len(p1))
    keep = (a1 == a2) & (p1[rows, a1] > threshold) & (p2[rows, a2] > threshold)
    return keep, a1


def check_options(*, unlabelled: Sequence[Any], adversarial: str | None, domain: str, grl_weight: float,
                  grl_ramp: bool, tri_training: bool, orthogonality: float) -> None:
    """Option checks made before anything is read or written (one-line :class:`ConfigError`)."""
    if adversarial is not None and adversarial not in HEADS:
        raise ConfigError(f"--adversarial {adversarial!r}: choose from {', '.join(HEADS)}")
    if domain not in DOMAINS:
        raise ConfigError(f"--domain {domain!r}: choose from {', '.join(DOMAINS)}")
    if unlabelled and adversarial is None and not tri_training:
        raise ConfigError("--unlabelled needs --adversarial whole|time or --tri-training")
    if adversarial is not None and domain == "set" and not unlabelled:
        raise ConfigError("--domain set needs --unlabelled FILE (labelled vs unlabelled clips)")
    if grl_weight < 0:
        raise ConfigError(f"--grl-weight {grl_weight}: must be >= 0")
    if orthogonality < 0:
        raise ConfigError(f"--orthogonality {orthogonality}: must be >= 0")


def _devices(path: Path) -> np.ndarray:
    with open_features(path) as f:
        return np.asarray(f.devices, dtype=object).astype(str)


def attach_unlabelled(clips: ClipSet, sources: Sequence[SourceInfo], unlabelled: Sequence[str | os.PathLike], *,
                      num_classes: int, adversarial: str | None, domain: str) -> tuple[ClipSet, dict[str, Any]]:
    """Append the unlabelled clips to the training clips and give every clip its joint label.

    Parameters
    ----------
    clips : ClipSet
        The labelled training clips (validation already held out); labels are class indices.
    sources : sequence of SourceInfo
        Their files (``clips.paths``, same order).
    unlabelled : sequence of path
        Features files without scene labels (same front-end config and shape).
    num_classes : int
    adversarial : {"whole", "time"} or None
        None: no domain classifier (one domain for every clip).
    domain : {"device", "source", "set"}

    Returns
    -------
    (ClipSet, info) : the joint clip set (labels are joint indices, see the
        module docstring) and the ``config.json`` facts (domain names, counts).

    Raises
    ------
    ArtifactError
        An unlabelled file holds scene labels, or a file lacks the device
        column that ``--domain device|source`` needs.
    MismatchError
        An unlabelled file differs in front-end config or feature shape.
    """
    extra = read_sources(list(unlabelled), "unlabelled") if unlabelled else []
    for source in extra:
        labelled = np.flatnonzero(np.asarray(source.scenes, dtype=object).astype(str) != "")
        if labelled.size:
            raise ArtifactError(f"{source.path}: --unlabelled file holds scene labels ({labelled.size} clip(s), "
                                f"e.g. {source.ids[labelled[0]]}); give features of a manifest without scenes")
        check_same_config(sources[0].config, source.config, sources[0].path, source.path)
        if source.feature_shape != tuple(clips.feature_shape):
            raise MismatchError(f"{source.path}: features of shape {source.feature_shape} differ from "
                                f"{sources[0].path}: {tuple(clips.feature_shape)}")
    # an unlabelled clip may also be a training clip (tri-training's phase 2 trains on pseudo-labelled clips of
    # the unlabelled pool and keeps the whole pool for the domain classifier)
    if adversarial is None:
        lab_dev = np.full(len(clips), "", dtype=object)
        unl_dev = np.full(sum(s.n for s in extra), "", dtype=object)
        dom, names = np.zeros(len(lab_dev) + len(unl_dev), np.int32), ["all"]
    else:
        per_file = []
        for path in [*clips.paths, *(s.path for s in extra)]:
            devices = _devices(path)
            if domain != "set" and (devices == "").any():
                first = int(np.flatnonzero(devices == "")[0])
                raise ArtifactError(f"{path}: clip row {first} has no device; --domain {domain} needs the device "
                                    "column (use --domain set, or features of a manifest with devices)")
            per_file.append(devices)
        lab_dev = np.array([per_file[f][r] for f, r in zip(clips.file_index.tolist(), clips.row.tolist())],
                           dtype=object)
        unl_dev = np.concatenate([per_file[len(clips.paths) + i] for i in range(len(extra))]) if extra else \
            np.zeros(0, dtype=object)
        dom, names = domain_labels(domain, lab_dev, unl_dev)
    n_unl = sum(s.n for s in extra)
    classes = np.concatenate([clips.labels.astype(np.int64), np.full(n_unl, -1, np.int64)])
    offset = len(clips.paths)
    file_index = np.concatenate([clips.file_index,
                                 *[np.full(s.n, offset + i, np.int32) for i, s in enumerate(extra)]])
    rows = np.concatenate([clips.row, *[np.arange(s.n, dtype=np.int64) for s in extra]])
    dtype = clips.dtype if all(s.dtype == np.float16 for s in extra) else np.dtype(np.float32)
    joint = ClipSet([*clips.paths, *(s.path for s in extra)], file_index.astype(np.int32), rows,
                    joint_labels(classes, dom, num_classes), tuple(clips.feature_shape), dtype)
    counts = np.bincount(dom, minlength=len(names))
    log.info("%d labelled + %d unlabelled training clips; domains %s", len(clips), n_unl,
             ", ".join(f"{n} ({c})" for n, c in zip(names, counts.tolist())))
    return joint, {"domains": names, "n_labelled": len(clips), "n_unlabelled": n_unl,
                   "domain_counts": counts.tolist()}


def build_training_model(config: dict[str, Any], options: dict[str, Any]):
    """The training graph of a run with ``config["adversarial"]``: backbone (+ D) (+ F1, F2), compiled later.

    The backbone comes from the model registry; D and the labellers attach to
    the layer its entry declares as ``feature_map``.

    Returns
    -------
    DomainAdversarialModel
    """
    import keras

    from ..models import build, feature_map_output
    from ..models.grl import GradientReversal

    setup = config["adversarial"]
    classes = len(config["classes"])
    freq, _, channels = config["input_shape"]
    backbone = build(config["model"], classes, (freq, None, channels), **options)
    feature = feature_map_output(backbone, config["model"])
    outputs = [backbone.output]
    head = setup.get("head")
    if head is not None:
        reversed_ = GradientReversal(setup["grl_weight"], name="grl")(feature)
        if head == "whole":
            z = keras.layers.GlobalAveragePooling2D(name="domain_pool")(reversed_)
        else:   # time: every frame, frequency averaged
            z = keras.layers.AveragePooling2D(pool_size=(int(feature.shape[1]), 1), name="domain_pool")(reversed_)
            z = keras.layers.Reshape((-1, int(feature.shape[3])), name="domain_frames")(z)
        z = keras.layers.Dense(HIDDEN, activation="relu", name="domain_hidden")(z)
        outputs.append(keras.layers.Dense(len(setup["domains"]), activation="softmax", name="domain")(z))
    if setup.get("tri_training"):
        pooled = keras.layers.GlobalAveragePooling2D(name="labeller_pool")(feature)
        for k in (1, 2):
            h = keras.layers.Dense(HIDDEN, activation="relu", name=f"labeller{k}_hidden")(pooled)
            outputs.append(keras.layers.Dense(classes, activation="softmax", name=f"labeller{k}")(h))
    net = keras.Model(backbone.input, outputs, name=f"{backbone.name}_training")
    total = int(config["epochs"]) * int(config["steps_per_epoch"])
    return DomainAdversarialModel(net=net, num_classes=classes, num_domains=len(setup["domains"]),
                                  head=head, grl_weight=float(setup["grl_weight"]),
                                  grl_ramp=bool(setup["grl_ramp"]), total_steps=total,
                                  tri_training=bool(setup.get("tri_training")),
                                  orthogonality=float(setup.get("orthogonality", 0.0)),
                                  backbone_name=backbone.name)


@keras.saving.register_keras_serializable(package="asctool")
class DomainAdversarialModel(keras.Model):
    """Backbone + domain classifier (+ tri-training labellers) with its own training step.

    Parameters
    ----------
    net : keras.Model
        ``input -> [class probs, (domain probs), (F1 probs, F2 probs)]``; class
        probs ``(batch, C)``, domain probs ``(batch, K)`` (``whole``) or
        ``(batch, T', K)`` (``time``).
    num_classes, num_domains : int
    head : {"whole", "time"} or None
    grl_weight : float
        α; with ``grl_ramp`` the DANN ramp ``α (2/(1+exp(-10 p)) - 1)`` of the
        fraction ``p = step / total_steps`` of training done
        (:func:`asctool.models.grl.dann_ramp`), set before every step.
    total_steps : int
    tri_training : bool
    orthogonality : float
        λ of :func:`orthogonality_penalty`.
    backbone_name : str
        Name of the deployable classifier model.

    Notes
    -----
    Training batches are ``(x, joint soft targets)`` (module docstring); the
    loss is ``L_y + L_d (+ L_y1 + L_y2 + λ·penalty) + regularisation``: class
    cross-entropies averaged over the labelled mass, the domain cross-entropy
    over all clips (and frames). Validation batches are ``(x, one-hot class)``
    and evaluate the backbone alone, so ``val_accuracy`` means what it means
    for a plain run. Calling the model gives the class probabilities.
    """

    def __init__(self, net, *, num_classes: int, num_domains: int, head: str | None, grl_weight: float,
                 grl_ramp: bool, total_steps: int, tri_training: bool = False, orthogonality: float = 0.0,
                 backbone_name: str = "classifier", **kwargs) -> None:
        import keras

        super().__init__(**kwargs)
        self.net = net
        self.num_classes, self.num_domains = int(num_classes), int(num_domains)
        self.head, self.grl_weight, self.grl_ramp = head, float(grl_weight), bool(grl_ramp)
        self.total_steps = max(1, int(total_steps))
        self.tri_training, self.orthogonality = bool(tri_training), float(orthogonality)
        self.backbone_name = str(backbone_name)
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss", "accuracy", *(("domain_loss", "domain_accuracy", "alpha")
                                                            if head else ()),
                                      *(("labeller_loss", "orthogonality") if tri_training else ()))}
        self.built = True

    # ------------------------------------------------------------------ parts
    def _outputs(self, outputs) -> dict[str, Any]:
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        named = {"class": outputs[0]}
        at = 1
        if self.head:
            named["domain"] = outputs[at]
            at += 1
        if self.tri_training:
            named["f1"], named["f2"] = outputs[at], outputs[at + 1]
        return named

    def classifier(self):
        """The deployable classifier: ``input -> class probs`` (shares the layers)."""
        import keras

        return keras.Model(self.net.input, self.net.outputs[0], name=self.backbone_name)

    def labellers(self):
        """``input -> [Ft, F1, F2]`` class probabilities (tri-training only)."""
        import keras

        named = self._outputs(self.net.outputs)
        return keras.Model(self.net.input, [named["class"], named["f1"], named["f2"]], name="labellers")

    def export_parts(self, path: Path) -> list[tuple[Any, Path]]:
        """What a run writes for ``path``: the classifier there and, with tri-training, the labellers
        beside it (``labellers.keras`` beside ``model.keras``, ``labellers-last.keras`` beside ``last.keras``)."""
        path = Path(path)
        parts = [(self.classifier(), path)]
        if self.tri_training:
            name = LABELLERS_FILE if path.name == "model.keras" else f"labellers-{path.name}"
            parts.append((self.labellers(), path.with_name(name)))
        return parts

    def _grl(self):
        return self.net.get_layer("grl")

    # ------------------------------------------------------------ training
    @property
    def metrics(self):  # noqa: D102
        return list(self.trackers.values())

    def call(self, inputs, training=None):  # noqa: D102
        return self._outputs(self.net(inputs, training=training))["class"]

    @staticmethod
    def _class_loss(target, probs):
        from keras import ops

        ce = -ops.sum(target * ops.log(ops.clip(probs, 1e-7, 1.0)), axis=-1)
        mass = ops.sum(target, axis=-1)
        return ops.sum(ce) / ops.maximum(ops.sum(mass), 1e-6), mass

    def train_step(self, data):  # noqa: D102
        import tensorflow as tf
        from keras import ops

        x, y = data[0], data[1]
        y_class, y_domain = split_joint(y, self.num_classes, self.num_domains)
        if self.head:
            if self.grl_ramp:
                p = ops.minimum(ops.cast(self.optimizer.iterations, "float32") / float(self.total_steps), 1.0)
                self._grl().alpha.assign(self.grl_weight * (2.0 / (1.0 + ops.exp(-10.0 * p)) - 1.0))
        with tf.GradientTape() as tape:
            named = self._outputs(self.net(x, training=True))
            class_loss, mass = self._class_loss(y_class, named["class"])
            loss = class_loss
            if self.head:
                d = named["domain"]
                target = y_domain if self.head == "whole" else y_domain[:, None, :] * ops.ones_like(d)
                domain_ce = -ops.sum(target * ops.log(ops.clip(d, 1e-7, 1.0)), axis=-1)
                domain_loss = ops.mean(domain_ce)
                loss = loss + domain_loss
            if self.tri_training:
                l1, _ = self._class_loss(y_class, named["f1"])
                l2, _ = self._class_loss(y_class, named["f2"])
                penalty = orthogonality_penalty(self.net.get_layer("labeller1_hidden").kernel,
                                                self.net.get_layer("labeller2_hidden").kernel)
                loss = loss + l1 + l2 + self.orthogonality * penalty
            if self.net.losses:
                loss = loss + ops.sum(ops.stack(self.net.losses))
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        labelled = ops.cast(mass > 0, "float32")
        hits = ops.cast(ops.argmax(named["class"], axis=-1) == ops.argmax(y_class, axis=-1), "float32")
        self.trackers["loss"].update_state(loss)
        self.trackers["accuracy"].update_state(hits, sample_weight=labelled)
        if self.head:
            d_hits = ops.cast(ops.argmax(d, axis=-1) == ops.argmax(target, axis=-1), "float32")
            self.trackers["domain_loss"].update_state(domain_loss)
            self.trackers["domain_accuracy"].update_state(d_hits)
            self.trackers["alpha"].update_state(ops.convert_to_tensor(self._grl().alpha))
        if self.tri_training:
            self.trackers["labeller_loss"].update_state((l1 + l2) / 2.0)
            self.trackers["orthogonality"].update_state(penalty)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def test_step(self, data):  # noqa: D102
        from keras import ops

        x, y = data[0], data[1]
        probs = self._outputs(self.net(x, training=False))["class"]
        ce = -ops.sum(y * ops.log(ops.clip(probs, 1e-7, 1.0)), axis=-1)
        loss = ops.mean(ce) + (ops.sum(ops.stack(self.net.losses)) if self.net.losses else 0.0)
        hits = ops.cast(ops.argmax(probs, axis=-1) == ops.argmax(y, axis=-1), "float32")
        self.trackers["loss"].update_state(loss)
        self.trackers["accuracy"].update_state(hits)
        return {"loss": self.trackers["loss"].result(), "accuracy": self.trackers["accuracy"].result()}

    # -------------------------------------------------------- serialisation
    def get_config(self) -> dict:  # noqa: D102
        import keras

        return {"name": self.name, "net": keras.saving.serialize_keras_object(self.net),
                "num_classes": self.num_classes, "num_domains": self.num_domains, "head": self.head,
                "grl_weight": self.grl_weight, "grl_ramp": self.grl_ramp, "total_steps": self.total_steps,
                "tri_training": self.tri_training, "orthogonality": self.orthogonality,
                "backbone_name": self.backbone_name}

    @classmethod
    def from_config(cls, config: dict):  # noqa: D102
        import keras

        config = dict(config)
        net = keras.saving.deserialize_keras_object(config.pop("net"))
        return cls(net=net, **config)
