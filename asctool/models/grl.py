"""The gradient reversal layer (GRL) of domain-adversarial training.

Ganin & Lempitsky, "Unsupervised domain adaptation by backpropagation"
(ICML 2015), section 3.2; used for sound events by Park et al., "Weakly
labeled sound event detection using tri-training and adversarial learning"
(DCASE 2019 workshop), section 2.2. Forward: the identity. Backward: the
incoming gradient times ``-alpha``, so the layers below the GRL are updated
with ``-alpha * dL_d/dtheta_F`` while the domain classifier above it learns
with ``dL_d/dtheta_D``.
"""
from __future__ import annotations

from typing import Any

import keras

__all__ = ["GradientReversal", "dann_ramp"]


def dann_ramp(progress: float, weight: float) -> float:
    """The DANN schedule of the GRL weight: ``weight * (2 / (1 + exp(-10 p)) - 1)``.

    Ganin et al., "Domain-adversarial training of neural networks" (JMLR 2016),
    section 5.2.2; ``p`` in [0, 1] is the fraction of training done (clipped).
    Returns 0 at ``p = 0`` and ``weight * 0.99991`` at ``p = 1``.
    """
    import math

    p = min(1.0, max(0.0, float(progress)))
    return float(weight) * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)


@keras.saving.register_keras_serializable(package="asctool")
class GradientReversal(keras.layers.Layer):
    """Identity in the forward pass; multiplies the gradient by ``-alpha`` in the backward pass.

    Parameters
    ----------
    alpha : float
        Initial weight (>= 0). It is held in the non-trainable variable
        ``self.alpha`` (saved with the model), so a schedule can change it
        during training with ``layer.alpha.assign(value)``.

    Notes
    -----
    Input and output of any shape. Needs the TensorFlow backend (the gradient
    is defined with ``tf.custom_gradient``).
    """

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        alpha = float(alpha)
        if alpha < 0:
            raise ValueError(f"GradientReversal: alpha must be >= 0, got {alpha}")
        self.initial_alpha = alpha
        self.alpha = self.add_weight(name="alpha", shape=(), initializer=keras.initializers.Constant(alpha),
                                     trainable=False, dtype="float32")

    def call(self, inputs):  # noqa: D102
        import tensorflow as tf

        alpha = tf.cast(tf.convert_to_tensor(self.alpha), inputs.dtype)

        @tf.custom_gradient
        def reverse(x):
            def grad(upstream):
                return -alpha * upstream
            return tf.identity(x), grad

        return reverse(inputs)

    def compute_output_shape(self, input_shape: tuple) -> tuple:  # noqa: D102
        return tuple(input_shape)

    def get_config(self) -> dict:  # noqa: D102
        config = super().get_config()
        config.update({"alpha": self.initial_alpha})
        return config
