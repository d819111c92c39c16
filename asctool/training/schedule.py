"""Cosine annealing with warm restarts (SGDR), as a pure function of the step.

The reference system (docs/reference.md section 4) updates the learning rate every
batch, from ``lr_max`` = 0.1 down to ``lr_min`` = 1e-5 along a half cosine;
the first cycle lasts 2 epochs and each cycle is twice as long as the one
before: epochs [0, 2), [2, 6), [6, 14), [14, 30), [30, 62), [62, 126),
[126, 254). Because the rate depends only on the global step (and the number
of steps per epoch), a resumed run continues at exactly the same position.

Fitted to the run (``end_epoch``): the cycle that would run past the run's
last epoch is shortened to end with it, so the rate reaches ``lr_min`` at the
last step whatever the number of epochs; a shortened cycle of less than half
the length of the cycle before it is merged into that one instead (a run of 15
epochs ends with the cycle [6, 15), not with a 1-epoch cycle [14, 15)). Runs
of 2, 6, 14, ..., 254 epochs are unchanged. Early stopping
(:mod:`asctool.training.trainer`) stops only at a cycle end, so a run always
ends with the rate at its minimum.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["Schedule", "cycles", "cycle_starts", "cycle_ends", "learning_rate", "epochs_for_steps"]


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
    end_epoch : int or None
        The run's number of epochs: the last cycle is fitted to end there
        (see the module docstring). None: cycles follow the doubling rule
        past any number of epochs (a run that stops mid-cycle stops with a
        high rate).
    """

    lr_max: float = 0.1
    lr_min: float = 1e-5
    first_cycle: int = 2
    cycle_mult: int = 2
    momentum: float = 0.9
    end_epoch: int | None = None

    def to_dict(self) -> dict:
        """The parameters as a plain dict (for ``config.json``)."""
        return asdict(self)


def cycles(epochs: int, schedule: Schedule = Schedule()) -> list[tuple[int, int]]:
    """The cycles that start before ``epochs``, as ``(first epoch, end epoch)`` pairs.

    Parameters
    ----------
    epochs : int
        Number of epochs to cover.
    schedule : Schedule
        Schedule parameters; with ``end_epoch`` the last cycle ends at it and
        no cycle starts after it.

    Returns
    -------
    list of (int, int)
        ``[(0, 2), (2, 6), (6, 14), ...]`` for the default schedule; with
        ``end_epoch=15``: ``[(0, 2), (2, 6), (6, 15)]``; with ``end_epoch=20``:
        ``[(0, 2), (2, 6), (6, 14), (14, 20)]``.
    """
    if schedule.first_cycle < 1 or schedule.cycle_mult < 1:
        raise ValueError(f"first_cycle and cycle_mult must be positive, got {schedule}")
    end = schedule.end_epoch
    if end is not None and end < 1:
        raise ValueError(f"end_epoch must be positive, got {end}")
    out: list[tuple[int, int]] = []
    start, length = 0, schedule.first_cycle
    while start < (epochs if end is None else end):
        stop = start + length
        if end is not None and stop >= end:
            stop = end
            if out and 2 * (stop - start) < out[-1][1] - out[-1][0]:
                out[-1] = (out[-1][0], stop)   # a short remainder joins the cycle before it
                break
        out.append((start, stop))
        start, length = stop, length * schedule.cycle_mult
    return [(a, b) for a, b in out if a < epochs]


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
    return [start for start, _ in cycles(epochs, schedule)]


def cycle_ends(epochs: int, schedule: Schedule = Schedule()) -> list[int]:
    """Epoch counts at which a cycle ends (``2, 6, 14, ...``), up to ``epochs``.

    An epoch count ``e`` in the list means: after ``e`` complete epochs the
    learning rate has just reached its minimum (a snapshot point, and the
    only points where early stopping may stop a run).
    """
    return [stop for _, stop in cycles(epochs, schedule) if stop <= epochs]


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
        it started (Loshchilov & Hutter, SGDR, ICLR 2017, eq. 5): ``lr_max``
        at the first step of every cycle, approaching ``lr_min`` at its last
        step. Steps past a fitted schedule's ``end_epoch`` stay in its last
        cycle's final position.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    epoch = step // steps_per_epoch
    start, stop = cycles(epoch + 1, schedule)[-1]
    length = (stop - start) * steps_per_epoch
    t = min(step - start * steps_per_epoch, length - 1) / length
    return schedule.lr_min + 0.5 * (schedule.lr_max - schedule.lr_min) * (1.0 + math.cos(math.pi * t))


def epochs_for_steps(epochs: int, steps_per_epoch: int, min_steps: int, *, max_epochs: int = 254) -> int:
    """The epoch budget that gives a run at least ``min_steps`` SGD steps.

    A profile sized in epochs gives a set of 100 clips (6 steps of 16) a few
    hundred steps and a set of 10,000 clips tens of thousands; the ``cpu``
    profile therefore states its budget in steps too (docs/train.md, "Profiles";
    the evidence: docs/performance.md, "Training on a CPU").

    Parameters
    ----------
    epochs : int
        The profile's epoch budget (kept when it already gives ``min_steps``).
    steps_per_epoch : int
        Batches per epoch (> 0).
    min_steps : int
        The fewest SGD steps the budget must allow (> 0).
    max_epochs : int
        Upper bound of the result (default 254, the reference's longest run).

    Returns
    -------
    int
        ``min(max(epochs, ceil(min_steps / steps_per_epoch)), max(epochs, max_epochs))``.

    Raises
    ------
    ValueError
        A non-positive argument.
    """
    if epochs < 1 or steps_per_epoch < 1 or min_steps < 1 or max_epochs < 1:
        raise ValueError(f"epochs, steps_per_epoch, min_steps and max_epochs must be positive, got "
                         f"{epochs}, {steps_per_epoch}, {min_steps}, {max_epochs}")
    needed = -(-min_steps // steps_per_epoch)
    return min(max(epochs, needed), max(epochs, max_epochs))
