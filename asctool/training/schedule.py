"""Cosine annealing with warm restarts (SGDR), as a pure function of the step.

The reference system (docs/reference.md section 4) updates the learning rate every
batch, from ``lr_max`` = 0.1 down to ``lr_min`` = 1e-5 along a half cosine;
the first cycle lasts 2 epochs and each cycle is twice as long as the one
before: epochs [0, 2), [2, 6), [6, 14), [14, 30), [30, 62), [62, 126),
[126, 254). Because the rate depends only on the global step (and the number
of steps per epoch), a resumed run continues at exactly the same position.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["Schedule", "cycle_starts", "cycle_ends", "learning_rate"]


@dataclass(frozen=True)
class Schedule:
    """Parameters of the warm-restart cosine schedule.

    Attributes
    ----------
    lr_max : float
        Rate at the start of every cycle.
    lr_min : float
        Rate approached at the end of every cycle.
    first_cycle : int
        Length of the first cycle in epochs.
    cycle_mult : int
        Each cycle is this many times longer than the previous one.
    momentum : float
        SGD momentum (recorded with the schedule; not used by it).
    """

    lr_max: float = 0.1
    lr_min: float = 1e-5
    first_cycle: int = 2
    cycle_mult: int = 2
    momentum: float = 0.9

    def to_dict(self) -> dict:
        """The parameters as a plain dict (for ``config.json``)."""
        return asdict(self)


def cycle_starts(epochs: int, schedule: Schedule = Schedule()) -> list[int]:
    """Epochs at which a cycle starts (learning rate back at ``lr_max``), below ``epochs``.

    Parameters
    ----------
    epochs : int
        Number of epochs of the run.
    schedule : Schedule
        Schedule parameters.

    Returns
    -------
    list of int
        ``[0, 2, 6, 14, ...]`` for the default schedule.
    """
    starts, start, length = [], 0, schedule.first_cycle
    while start < epochs:
        starts.append(start)
        start += length
        length *= schedule.cycle_mult
    return starts


def cycle_ends(epochs: int, schedule: Schedule = Schedule()) -> list[int]:
    """Epoch counts at which a cycle ends (``2, 6, 14, ...``), up to ``epochs``.

    An epoch count ``e`` in the list means: after ``e`` complete epochs the
    learning rate has just reached its minimum (a snapshot point).
    """
    ends, end, length = [], 0, schedule.first_cycle
    while end + length <= epochs:
        end += length
        ends.append(end)
        length *= schedule.cycle_mult
    return ends


def learning_rate(step: int, steps_per_epoch: int, schedule: Schedule = Schedule()) -> float:
    """Learning rate for a global training step.

    Parameters
    ----------
    step : int
        Global step, counted from 0 over the whole run (``epoch *
        steps_per_epoch + batch``).
    steps_per_epoch : int
        Batches per epoch (> 0).
    schedule : Schedule
        Schedule parameters.

    Returns
    -------
    float
        ``lr_min + (lr_max - lr_min) * (1 + cos(pi * t / T)) / 2`` where ``T``
        is the length of the current cycle in steps and ``t`` the steps since
        it started: ``lr_max`` at the first step of every cycle, approaching
        ``lr_min`` at its last step.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    start, length = 0, schedule.first_cycle * steps_per_epoch
    while step >= start + length:
        start += length
        length *= schedule.cycle_mult
    t = (step - start) / length
    return schedule.lr_min + 0.5 * (schedule.lr_max - schedule.lr_min) * (1.0 + math.cos(math.pi * t))
