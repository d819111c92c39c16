"""Tag-conditioned scene classifiers: a registry backbone plus the clip's tag vector.

Jung et al., "Acoustic scene classification using audio tagging", Interspeech
2020 (section 3): a tagger gives each clip a tag vector ``t`` (C event
probabilities); the scene classifier uses it beside its own *code* ``c``, the
global average pooling of the backbone's last feature map ``F`` (shape
``(freq', time', f)``) followed by a dense layer (64-d in the paper). The
backbone is any registry model; its entry declares the layer holding ``F``
(:attr:`asctool.models.registry.ModelSpec.feature_map`). The backbone's own
head is dropped.

Modes (``asctool train --tag-fusion MODE``)::

    codecat       [code ; t] -> softmax                       (sec. 3.1, "code concatenation")
    concat        [code ; t] -> dense(64) -> softmax          (sec. 3.1, with a transform)
    concat:K      [code ; g_K(t)] -> dense(64) -> softmax     (K dense layers g_K on t first)
    attention:H,K F * A(t) -> pool -> code(64) -> softmax     (sec. 3.2)
    both:H,K[,shared|separate]  attention and concat:K together (sec. 3.3)

with the multi-head attention map (sec. 3.2, eq. 2-3)::

    a = W_K(... W_1 t)            f values (the last of the K dense layers has f units, linear)
    a = [a_1 | ... | a_H]         H heads of f/H values
    A_h = (f/H) softmax(a_h)      within each head, scaled to a mean of 1 (see below)
    F'[i, j, :] = F[i, j, :] * A  every time (and frequency) step of the f filters

The factor f/H is asctool's: a softmax over f/H values averages H/f, so the
paper's map taken literally shrinks ``F`` (and, through the linear pooling and
code layers, the logits) by f/H, e.g. 30 for 60 filters in 2 heads. In the
authors' raw-waveform network a batch normalisation follows the attended map and
removes that factor; here the code layer follows it directly, and the literal
map left ``attention:2,1`` at chance after 10 demo epochs (the logits start
about 30 times smaller, and Adam's bounded steps need thousands of updates to
grow the code weights back; docs/tag_fusion.md has the figures). With the
factor, a uniform map (all a equal) is the identity and training starts from
the backbone alone; the weighting within and between heads is the paper's.

``both`` shares the K tag layers (``shared``: g_K(t) feeds the concatenation and,
through one more linear layer of f units, the attention map) or keeps them
``separate`` (a g_K for the concatenation, a K-layer map for the attention).
Hidden tag layers have ``units`` (= the code size) units and LeakyReLU (slope
0.3, as in RawNet). Only standard Keras layers are used, so a fused model saves
and loads like any other.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["FusionMode", "parse_fusion", "build_fusion_model", "CODE_UNITS"]

#: The code size of the paper (a dense layer after global pooling).
CODE_UNITS = 64


@dataclass(frozen=True)
class FusionMode:
    """A parsed ``--tag-fusion`` value.

    Attributes
    ----------
    kind : {"codecat", "concat", "attention", "both"}
    layers : int
        K: dense layers on the tag vector (``concat:K``, ``attention:H,K``, ``both``).
    heads : int
        H: attention heads (``attention``, ``both``).
    shared : bool
        ``both``: one tag transform for the concatenation and the attention.
    """

    kind: str
    layers: int = 0
    heads: int = 0
    shared: bool = True

    def __str__(self) -> str:
        if self.kind == "codecat":
            return self.kind
        if self.kind == "concat":
            return f"concat:{self.layers}" if self.layers else "concat"
        text = f"{self.kind}:{self.heads},{self.layers}"
        if self.kind == "both":
            text += ",shared" if self.shared else ",separate"
        return text


_PATTERNS = (
    (re.compile(r"^(codecat|concat)$"), lambda m: FusionMode(m.group(1))),
    (re.compile(r"^concat:(\d+)$"), lambda m: FusionMode("concat", layers=int(m.group(1)))),
    (re.compile(r"^attention:(\d+),(\d+)$"),
     lambda m: FusionMode("attention", heads=int(m.group(1)), layers=int(m.group(2)))),
    (re.compile(r"^both:(\d+),(\d+)(?:,(shared|separate))?$"),
     lambda m: FusionMode("both", heads=int(m.group(1)), layers=int(m.group(2)),
                          shared=(m.group(3) or "shared") == "shared")),
)


def parse_fusion(text: str) -> FusionMode:
    """Parse ``--tag-fusion``: ``codecat``, ``concat``, ``concat:K``, ``attention:H,K``, ``both:H,K[,shared|separate]``.

    Raises
    ------
    ConfigError
        Unknown form, or H < 1, or K < 1 where layers are needed.
    """
    value = str(text).strip().lower()
    for pattern, make in _PATTERNS:
        match = pattern.match(value)
        if match:
            mode = make(match)
            if mode.kind in ("attention", "both") and (mode.heads < 1 or mode.layers < 1):
                raise ConfigError(f"--tag-fusion {text}: H (heads) and K (layers) must be >= 1")
            return mode
    raise ConfigError(f"--tag-fusion {text!r}: choose codecat, concat, concat:K, attention:H,K or "
                      "both:H,K[,shared|separate]")


def _dense_stack(x, layers: int, units: int, prefix: str):
    import keras

    for i in range(layers):
        x = keras.layers.Dense(units, name=f"{prefix}_dense{i + 1}")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.3, name=f"{prefix}_act{i + 1}")(x)
    return x


def _attention_map(t, filters: int, heads: int, name: str):
    """Dense output ``(batch, f)`` -> per-head softmax x f/H -> ``(batch, 1, 1, f)`` (eq. 2-3, mean 1)."""
    import keras

    a = keras.layers.Reshape((heads, filters // heads), name=f"{name}_heads")(t)
    a = keras.layers.Softmax(axis=-1, name=f"{name}_softmax")(a)
    a = keras.layers.Rescaling(filters / heads, name=f"{name}_scale")(a)
    return keras.layers.Reshape((1, 1, filters), name=f"{name}_map")(a)


def build_fusion_model(model_name: str, num_classes: int, input_shape, num_tags: int, mode: FusionMode | str,
                       *, units: int = CODE_UNITS, **options: Any):
    """A two-input scene classifier: registry backbone ``model_name`` conditioned on the tag vector.

    Parameters
    ----------
    model_name : str
        Registry backbone; its entry's ``feature_map`` layer gives ``F``.
    num_classes : int
    input_shape : (freq, time or None, channels)
    num_tags : int
        C, the tag vector's length.
    mode : FusionMode or str
        See the module docstring.
    units : int
        Code size and width of the hidden tag layers (64 in the paper).
    **options
        The backbone's builder options.

    Returns
    -------
    keras.Model
        Inputs ``[features (batch, freq, time, channels), tags (batch, C)]``, output ``(batch, num_classes)`` softmax.

    Raises
    ------
    ConfigError
        Bad mode, feature map missing or not 4-D, f not divisible by H.
    """
    import keras

    from .registry import build, feature_map_output

    mode = parse_fusion(mode) if isinstance(mode, str) else mode
    backbone = build(model_name, num_classes, input_shape, **options)
    feature = feature_map_output(backbone, model_name)
    filters = int(feature.shape[-1])
    if mode.kind in ("attention", "both") and filters % mode.heads:
        raise ConfigError(f"--tag-fusion {mode}: the feature map of {model_name!r} has {filters} filters, "
                          f"not divisible into {mode.heads} heads")
    tags = keras.Input((int(num_tags),), name="tags")
    tag_h = None
    if mode.kind == "attention" or mode.kind == "both":
        if mode.kind == "both" and mode.shared:
            tag_h = _dense_stack(tags, mode.layers, units, "tag")
            a = keras.layers.Dense(filters, name="att_dense")(tag_h)
        else:
            h = _dense_stack(tags, mode.layers - 1, units, "att")
            a = keras.layers.Dense(filters, name=f"att_dense{mode.layers}")(h)
        att = _attention_map(a, filters, mode.heads, "att")
        feature = keras.layers.Multiply(name="att_apply")([feature, att])
    pooled = keras.layers.GlobalAveragePooling2D(name="code_pool")(feature)
    code = keras.layers.Dense(units, name="code")(pooled)
    if mode.kind == "attention":
        z = code
    elif mode.kind == "codecat":
        z = keras.layers.Concatenate(name="codecat")([code, tags])
    else:  # concat or both: (K tag layers), concatenation, the dense transform
        if tag_h is None:
            tag_h = _dense_stack(tags, mode.layers, units, "tag")
        z = keras.layers.Concatenate(name="concat")([code, tag_h])
        z = keras.layers.Dense(units, name="transform")(z)
        z = keras.layers.LeakyReLU(negative_slope=0.3, name="transform_act")(z)
    out = keras.layers.Dense(num_classes, activation="softmax", name="scene")(z)
    return keras.Model([backbone.input, tags], out, name=f"{model_name}_{mode.kind}")
