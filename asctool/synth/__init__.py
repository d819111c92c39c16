"""The embedded demo data: a small synthetic dataset in the TAU layout.

This package makes the audio; the stage ``asctool synth``
(:mod:`asctool.stages.synth`) writes it as ``audio/*.wav``
(``scene-city-locationid-segmentid-device``), ``meta.csv`` and
``evaluation_setup/fold1_{train,evaluate,test}.csv`` so that ``asctool
prepare`` reads it exactly like TAU Urban Acoustic Scenes 2020 Mobile.

- :mod:`.scenes`: scene recipes, locations, rooms, the dry mixture
- :mod:`.devices`: device responses, recording and simulated devices
- :mod:`.plan`: which segments exist where and on which devices, and the
  rendering of one location's recordings

How a clip is made (see ``docs/synth.md``):

1. **Sources.** Each of the 10 scenes mixes its own families of synthetic
   sources at its own levels: noise-like sources (ventilation, wind, rumble,
   passing vehicles with a Doppler shift, babble of formant "voices",
   announcements, fountains, rolling suitcases, jets, arriving trains, music)
   are drawn in the STFT domain as a non-negative dictionary ``D @ A`` with
   random phase; tonal and impulsive sources (engine hum harmonics, motor
   whine, footsteps, bird chirps, chimes, brake squeals, door beeps, tram
   bells, rail clatter, horns) are synthesised in the time domain. Scenes of
   one coarse class (indoor, outdoor, transportation) share source families.
2. **Location and segment.** Every recording location draws its own source
   levels (some sources absent), parameters (engine pitch, bird species,
   vowel set, ...) and room (reverberation time, direct-to-reverberant
   ratio); every segment draws its own events and level jitter.
3. **Room.** The dry mix is convolved (circularly, via the FFT) with an
   exponentially decaying two-band noise impulse response of the location.
4. **Devices.** ``a`` is the reference microphone; ``b`` and ``c`` record the
   same sound field with other frequency responses, gains and noise floors;
   ``s1``-``s6`` are simulated from the device-a audio of the same segment
   with a fixed response, early reflections, compression and noise. ``s4``-``s6``
   are harsher and appear only in the evaluate/test split.

All randomness comes from ``numpy.random.Generator`` objects seeded from
``seed`` and the clip's indices, so one seed gives byte-identical files.
"""
from __future__ import annotations

from .devices import DEVICE_SPECS, DEVICES, TRAIN_DEVICES, DeviceSpec, device_response, record, simulate_device
from .plan import CITIES, PlannedSegment, plan_dataset, render_location
from .scenes import SCENE_RECIPES, SceneRecipe, location_params, room_response, scene_mix

__all__ = [
    "DEVICES",
    "TRAIN_DEVICES",
    "CITIES",
    "SCENE_RECIPES",
    "DEVICE_SPECS",
    "SceneRecipe",
    "DeviceSpec",
    "PlannedSegment",
    "plan_dataset",
    "render_location",
    "location_params",
    "scene_mix",
    "room_response",
    "device_response",
    "record",
    "simulate_device",
]
