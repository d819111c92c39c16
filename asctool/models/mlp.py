"""MLP on one embedding frame: the classifier of Cramer et al. (2019) and the DCASE 2020 Task 1a baseline.

Cramer, Wu, Salamon, Bello, "Look, listen, and learn more: design choices for
deep audio embeddings", ICASSP 2019, section 4.2 (downstream classifier): two
hidden layers of 512 and 128 units with ReLU and a softmax output, trained on
single embedding frames, each labelled with its clip's class; embeddings
standardised with statistics of the training set; weight decay as an L2
penalty on the kernels (the ``weight_decay`` of the authors' ``construct_mlp_model``).
The DCASE 2020 Task 1a baseline uses the same network on OpenL3 mel256/music/512-d.

The standardisation is the model's first layer (``standardise``, a Keras
``Normalization`` whose mean and variance :mod:`asctool.training.frames` sets
from the training frames), so a saved model carries it.
"""
from __future__ import annotations

import keras

from asctool.models.registry import register


@register("mlp", "two hidden layers 512-128 (ReLU) + softmax on one embedding frame (Cramer et al. 2019)",
          inputs="embeddings",
          training_defaults={"paper": {"epochs": 50, "batch_size": 64}, "demo": {"epochs": 50, "batch_size": 64}})
def build_mlp(num_classes: int, input_shape: tuple, *, hidden: tuple = (512, 128), l2: float = 0.0) -> keras.Model:
    """The MLP for frames of ``input_shape = (dims,)``.

    Parameters
    ----------
    num_classes : int
    input_shape : (dims,)
        The embedding size D (512 for OpenL3's 512-d variants, 1024 for BirdNET).
    hidden : tuple of int
        Units of the hidden layers (512, 128 as published).
    l2 : float
        L2 penalty on every kernel (the paper's "weight decay").

    Returns
    -------
    keras.Model
        ``(batch, dims)`` -> ``(batch, num_classes)`` softmax; layers ``standardise``
        (Normalization, not yet adapted: mean 0, variance 1), ``hidden1``, ``hidden2``,
        ``logits``, ``softmax``.
    """
    regularizer = keras.regularizers.L2(l2) if l2 else None
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = keras.layers.Normalization(axis=-1, mean=None, variance=None, name="standardise")(inputs)
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(int(units), activation="relu", kernel_regularizer=regularizer, name=f"hidden{i + 1}")(x)
    x = keras.layers.Dense(num_classes, kernel_regularizer=regularizer, name="logits")(x)
    outputs = keras.layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name="mlp")
