"""The feature front end as pure functions: configuration and signal processing.

- :mod:`.config`: the packaged presets ``1a`` and ``1b`` and YAML files,
  validated into one flat dict (:func:`resolve_config`).
- :mod:`.dsp`: STFT framing, power spectrogram, mel filterbank, log, min-max
  scaling, regression deltas, the clip rules (channels, duration) and
  :class:`FrontEnd`, which maps a waveform to exactly what a model consumes.

Nothing here reads or writes files or starts processes: ``asctool featurize``
(:mod:`asctool.stages.featurize`) does that around these functions. See
``docs/featurize.md``.
"""
from __future__ import annotations

from . import config, dsp
from .config import CONFIG_KEYS, PRESETS, load_config, preset_config, resolve_config, validate_config
from .dsp import (
    FrontEnd,
    apply_filterbank,
    filterbank_blocks,
    fit_duration,
    frame_count,
    frame_segments,
    frame_view,
    hz_to_mel,
    match_channels,
    mel_filterbank,
    mel_to_hz,
    power_spectrogram,
    regression_delta,
    stack_deltas,
    window_function,
)

__all__ = [*config.__all__, *dsp.__all__]  # the public names of both modules
