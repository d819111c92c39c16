"""The training library: schedule, profiles, batch augmentation, data and input pipeline."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from asctool.artifacts import FeaturesWriter
from asctool.errors import AsctoolError, ConfigError
from asctool.training import PROFILES, Schedule, cycle_ends, cycle_starts, learning_rate, resolve_profile
from asctool.training.schedule import cycles
from asctool.training.trainer import should_stop
from asctool.training.batch_augment import AugmentConfig, parse_augment
from asctool.training.data import hold_out_locations, make_clip_set, read_sources
from asctool.training.pipeline import BatchReader, epoch_batches, steps_per_epoch

from helpers import CLASSES, CONFIG, SHAPE, make_features  # noqa: E402


# --------------------------------------------------------------------------
# schedule
# --------------------------------------------------------------------------
def test_cycle_boundaries():
    assert cycle_starts(254) == [0, 2, 6, 14, 30, 62, 126]
    assert cycle_ends(254) == [2, 6, 14, 30, 62, 126, 254]
    assert cycle_ends(126) == [2, 6, 14, 30, 62, 126]
    assert cycle_ends(6) == [2, 6]
    assert cycle_ends(5) == [2]


@pytest.mark.parametrize("spe", [1, 3, 500])
def test_learning_rate_restarts_at_cycle_starts(spe):
    for epoch in (0, 2, 6, 14, 30, 62, 126):
        assert learning_rate(epoch * spe, spe) == pytest.approx(0.1)
    if spe == 500:
        for epoch in (2, 6, 14, 30, 62, 126, 254):
            assert 1e-5 <= learning_rate(epoch * spe - 1, spe) < 2e-5
        # half way through the third cycle [6, 14): the cosine's midpoint
        assert learning_rate(10 * spe, spe) == pytest.approx((0.1 + 1e-5) / 2)
    # decreasing within a cycle
    rates = [learning_rate(s, spe) for s in range(2 * spe, 6 * spe)]
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_fitted_schedule_ends_with_the_run():
    """end_epoch: the cycle crossing the last epoch is shortened to end there, or merged when short."""
    fit = lambda n: Schedule(end_epoch=n)   # noqa: E731
    assert cycles(254, fit(254)) == cycles(254) and cycle_ends(254, fit(254)) == cycle_ends(254)
    assert cycles(30, fit(20)) == [(0, 2), (2, 6), (6, 14), (14, 20)]
    assert cycles(30, fit(15)) == [(0, 2), (2, 6), (6, 15)]      # 1 epoch left: joins the 8-epoch cycle
    assert cycles(10, fit(15)) == [(0, 2), (2, 6), (6, 15)]      # the same cycles whatever is asked
    assert cycle_ends(5, fit(5)) == [2, 5] and cycle_ends(5) == [2]
    assert cycles(1, fit(1)) == [(0, 1)]
    spe = 7
    for n in (1, 3, 5, 15, 20, 30):
        s = fit(n)
        ends = cycle_ends(n, s)
        assert ends[-1] == n
        for end in ends:   # every cycle anneals to its minimum at its last step...
            assert learning_rate(end * spe - 1, spe, s) < 0.1 * 0.05
        starts = cycle_starts(n, s)
        for start in starts:   # ... and restarts at lr_max
            assert learning_rate(start * spe, spe, s) == pytest.approx(0.1)
        # the cosine of eq. 5 computed independently on the last cycle
        a, b = cycles(n, s)[-1]
        t = np.arange((b - a) * spe)
        expected = 1e-5 + 0.5 * (0.1 - 1e-5) * (1 + np.cos(np.pi * t / ((b - a) * spe)))
        got = [learning_rate(a * spe + int(i), spe, s) for i in t]
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    # unfitted: the doubling rule runs on past the last epoch (the old behaviour)
    assert learning_rate(5 * spe - 1, spe) > 0.01


def test_early_stopping_decides_only_at_cycle_ends():
    ends = set(cycle_ends(30, Schedule(end_epoch=30)))          # 2, 6, 14, 30
    assert not should_stop(5, 1, patience=4, cycle_end_epochs=ends)     # not a cycle end
    assert should_stop(6, 2, patience=4, cycle_end_epochs=ends)         # 4 epochs without improvement
    assert not should_stop(6, 3, patience=4, cycle_end_epochs=ends)     # only 3
    assert not should_stop(14, 14, patience=0, cycle_end_epochs=ends)   # improved at the end itself
    assert should_stop(14, 13, patience=0, cycle_end_epochs=ends)
    assert not should_stop(6, None, patience=0, cycle_end_epochs=ends)  # no validation: never


def test_learning_rate_rejects_bad_arguments():
    with pytest.raises(ValueError):
        learning_rate(0, 0)
    with pytest.raises(ValueError):
        learning_rate(-1, 10)


def test_profiles():
    assert resolve_profile("paper", "fcnn") == {"epochs": 254, "batch_size": 32, "width": 1.0, "bn_momentum": 0.99,
                                                "augment_auto_off": [], "early_stopping": False, "patience": 0,
                                                "best_at_cycle_ends": False, "valid_split": None, "crop": None,
                                                "augment_params": {}, "min_steps": None}
    assert resolve_profile("paper", "resnet")["epochs"] == 126
    demo = resolve_profile("demo", "fcnn")
    assert demo["epochs"] == 6 and demo["width"] < 0.3 and 16 <= demo["batch_size"] <= 32
    assert resolve_profile("demo", "fcnn", epochs=2, batch_size=4, width=0.5)["epochs"] == 2
    with pytest.raises(ConfigError):
        resolve_profile("fast", "fcnn")
    assert set(PROFILES) == {"paper", "demo", "cpu", "dcase2020-baseline"}
    cpu = resolve_profile("cpu", "fcnn")
    assert cpu["early_stopping"] and cpu["patience"] >= 2 and 0 < cpu["valid_split"] < 0.5
    assert cpu["best_at_cycle_ends"] and not demo["best_at_cycle_ends"]
    assert cpu["epochs"] in cycle_ends(cpu["epochs"]) and demo["width"] < cpu["width"] < 1
    assert resolve_profile("cpu", "fcnn", early_stopping=False, patience=3)["early_stopping"] is False
    assert resolve_profile("cpu", "fcnn", patience=3)["patience"] == 3
    assert cpu["min_steps"] == 800 and demo["min_steps"] is None
    assert resolve_profile("cpu", "fcnn", epochs=10)["min_steps"] is None   # --epochs is the budget as given
    with pytest.raises(ConfigError, match="patience"):
        resolve_profile("cpu", "fcnn", patience=-1)


def test_cpu_profile_resolves_for_every_registered_model():
    """Every model of the registry trains under the cpu profile: its defaults are complete and checked."""
    from asctool.models import available

    for name in available():
        values = resolve_profile("cpu", name)
        aug = parse_augment("auto", None, (128, 423, 3), auto_off=values["augment_auto_off"],
                            auto_crop=values["crop"], params=values["augment_params"])
        assert aug.crop == values["crop"] and aug.mixup_alpha == values["augment_params"]["mixup_alpha"], name
        assert values["early_stopping"] and values["epochs"] >= 14, name


def test_profiles_read_the_model_registry_entry():
    """The model's registry entry, not the training code, holds its training defaults."""
    from asctool.models import spec

    assert dict(spec("resnet").training_defaults) == {"paper": {"epochs": 126}}
    assert spec("resnet").augment_auto_off == ("specaugment",)
    assert resolve_profile("paper", "resnet")["augment_auto_off"] == ["specaugment"]
    assert resolve_profile("demo", "resnet") == {**resolve_profile("demo", "fcnn")}   # demo: 6 epochs for all
    assert resolve_profile("demo", "resnet")["augment_auto_off"] == ["specaugment", "mixup"]
    with pytest.raises(AsctoolError, match="no_such_net"):
        resolve_profile("paper", "no_such_net")


# --------------------------------------------------------------------------
# augmentation
# --------------------------------------------------------------------------
def _auto(model: str, shape, spec="auto", crop=None, profile="paper"):
    """``--augment`` resolved as the trainer does: the profile's and the model's choices."""
    return parse_augment(spec, crop, shape, auto_off=resolve_profile(profile, model)["augment_auto_off"])


def test_parse_augment_reference_choices():
    a = _auto("fcnn", (128, 423, 3))
    assert a.specaugment and a.mixup and a.crop == 400 and not a.channel_swap
    assert (a.freq_mask, a.time_mask, a.mixup_alpha) == (12, 39, 0.4)
    r = _auto("resnet", (128, 423, 3))
    assert not r.specaugment and r.crop == 400
    b = _auto("mobnet", (128, 461, 6), spec=None)
    assert b.crop is None and b.channel_swap and b.specaugment
    assert parse_augment("auto", None, SHAPE).crop is None          # short input: no crop
    assert parse_augment("auto", 0, (128, 423, 3)).crop is None
    assert parse_augment("auto", 30, SHAPE).crop == 30
    none = parse_augment("none", None, (128, 423, 3))
    assert not (none.specaugment or none.mixup or none.channel_swap or none.crop)
    demo = parse_augment("auto", None, (128, 423, 3), auto_off=("specaugment", "mixup"))
    assert demo.crop == 400 and not demo.specaugment and not demo.mixup
    assert _auto("fcnn", (128, 423, 3), profile="demo") == demo
    only = parse_augment("mixup,crop", 20, SHAPE)
    assert only.mixup and only.crop == 20 and not only.specaugment


def test_parse_augment_profile_crop_and_strengths():
    """A profile's crop (any channel count, longer inputs only) and augmentation strengths."""
    cpu = parse_augment("auto", None, (128, 461, 6), auto_crop=200, params={"freq_mask": 8, "mixup_alpha": 0.2})
    assert cpu.crop == 200 and cpu.channel_swap and (cpu.freq_mask, cpu.time_mask, cpu.mixup_alpha) == (8, 39, 0.2)
    assert parse_augment("auto", None, SHAPE, auto_crop=200).crop is None          # 40 frames: no crop
    assert parse_augment("auto", 50, (128, 423, 3), auto_crop=200).crop == 50       # --crop wins
    assert parse_augment("crop,mixup", None, (128, 423, 3), auto_crop=200).crop == 200
    assert parse_augment("auto", None, (128, 423, 3), auto_crop=None).crop == 400   # the reference rule
    with pytest.raises(ConfigError, match="mixup are switches"):
        parse_augment("auto", None, SHAPE, params={"mixup": False})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_augment("auto", None, SHAPE, params={"mixup_beta": 1})


@pytest.mark.parametrize("spec, crop, shape", [
    ("mixup,flip", None, SHAPE),       # unknown name
    ("crop", None, SHAPE),             # input shorter than the default crop
    ("auto", 40, SHAPE),               # crop not shorter than the input
    ("swap", None, SHAPE),             # odd channel count
    ("mixup", 20, SHAPE),              # --crop without crop
])
def test_parse_augment_errors(spec, crop, shape):
    with pytest.raises(ConfigError):
        parse_augment(spec, crop, shape)


def test_augment_config_is_a_flat_hashable_mapping():
    from asctool.training.batch_augment import augment_names

    assert augment_names() == ["crop", "specaugment", "mixup", "swap"]
    cfg = AugmentConfig(specaugment=True, crop=30)
    assert cfg.to_dict() == {"crop": 30, "specaugment": True, "freq_mask": 12, "time_mask": 39, "mixup": False,
                             "mixup_alpha": 0.4, "channel_swap": False, "swap_p": 0.5}
    assert AugmentConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert hash(cfg.replace(crop=30)) == hash(cfg) and cfg.replace(crop=None) != cfg
    assert [e.name for e in cfg.enabled()] == ["specaugment"]
    with pytest.raises(ConfigError, match="flip"):
        AugmentConfig(flip=True)
    with pytest.raises(AttributeError):
        cfg.crop = 3


def _seed(a: int):
    return np.array([a, 7], np.int64)


def _augment(x, labels, seed, config, num_classes):
    """The training pipeline's two halves on a batch in memory: draw, then apply (no crop)."""
    from asctool.training.batch_augment import apply_batch, draw_batch

    offset, params = draw_batch(seed, x.shape, config)
    assert offset is None
    x, y = apply_batch(x, np.asarray(labels, np.int32), params, config=config, num_classes=num_classes)
    return x.numpy(), y.numpy()


def test_spec_augment_masks_one_band_per_channel():
    x = np.ones((64, 32, 60, 3), np.float32)
    y, _ = _augment(x, np.zeros(64), _seed(1), AugmentConfig(specaugment=True, freq_mask=12, time_mask=39), 2)
    zero = y == 0
    rows = zero.all(axis=2)     # (B, F, C): frequency bins masked over all frames
    cols = zero.all(axis=1)     # (B, T, C)
    assert rows.sum(axis=1).max() <= 12 and cols.sum(axis=1).max() <= 39
    # one contiguous band each, and every zero lies in a masked row or column
    for band in (rows, cols):
        edges = np.diff(band.astype(int), axis=1)
        assert (edges == 1).sum(axis=1).max() <= 1
    assert np.array_equal(zero, rows[:, :, None, :] | cols[:, None, :, :])
    # drawn independently per channel and per example
    assert not np.array_equal(rows[:, :, 0], rows[:, :, 1])
    assert len({tuple(r) for r in rows[:, :, 0].astype(int)}) > 10
    # widths span their range
    assert rows.sum(axis=1).min() == 0 and cols.sum(axis=1).max() > 25


def _frames_file(path: Path, n: int, time: int, channels: int = 2) -> Path:
    """Features whose every value is its frame index (so a crop shows where it starts)."""
    frames = np.broadcast_to(np.arange(time, dtype=np.float32)[None, :, None], (4, time, channels))
    ids = [f"airport-lyon-{i % 5}-{i}-a" for i in range(n)]
    with FeaturesWriter(path, n=n, feature_shape=(4, time, channels), config=CONFIG, ids=ids,
                        scenes=["airport"] * n, devices=["a"] * n, locations=[f"airport-lyon-{i % 5}" for i in range(n)],
                        dtype="float32") as writer:
        for i in range(n):
            writer.write(i, frames)
    return path


def test_random_crop_keeps_consecutive_frames(tmp_path):
    from asctool.training.pipeline import train_batches

    path = _frames_file(tmp_path / "frames.h5", 32, 50)
    clips, _ = make_clip_set(read_sources([path], "training"), None, None, labels_name="scene")
    (y, _, params), = train_batches(clips, batch_size=32, seed=2, first_epoch=0, epochs=1,
                                    augment=AugmentConfig(crop=40))
    assert y.shape == (32, 4, 40, 2) and params == {}
    offsets = y[:, 0, 0, 0]
    assert np.array_equal(y[:, 0, :, 0], offsets[:, None] + np.arange(40)[None, :])
    assert offsets.min() >= 0 and offsets.max() <= 10 and len(set(offsets)) > 4


def test_mixup_mixes_inputs_and_targets_alike():
    k = 16
    x = np.broadcast_to(np.arange(k, dtype=np.float32)[:, None, None, None], (k, 2, 3, 1)).copy()
    xm, ym = _augment(x, np.arange(k), _seed(3), AugmentConfig(mixup=True, mixup_alpha=0.4), k)
    np.testing.assert_allclose(ym.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(xm[:, 0, 0, 0], ym @ np.arange(k), rtol=1e-5, atol=1e-5)
    lam = ym.max(axis=1)
    assert lam.min() >= 0.5 and (lam < 0.99).any()   # really mixed
    with_seed, _ = _augment(x, np.arange(k), _seed(3), AugmentConfig(mixup=True), k)
    np.testing.assert_array_equal(with_seed, xm)


def test_channel_swap_exchanges_left_and_right():
    x = np.broadcast_to(np.arange(6, dtype=np.float32), (64, 2, 3, 6)).copy()
    y = _augment(x, np.zeros(64), _seed(4), AugmentConfig(channel_swap=True, swap_p=0.5), 2)[0][:, 0, 0, :]
    same = (y == np.arange(6)).all(axis=1)
    swapped = (y == np.array([1, 0, 3, 2, 5, 4])).all(axis=1)
    assert (same | swapped).all() and 10 < swapped.sum() < 54


def _numpy_augment(x, labels, offset, params, config, num_classes):
    """An independent NumPy version of crop, masks, mixup and swap, in the reference order."""
    x = x.astype(np.float32)
    if offset is not None:
        x = np.stack([x[b, :, o:o + config.crop] for b, o in enumerate(offset)])
    y = np.eye(num_classes, dtype=np.float32)[labels]
    if "specaugment" in params:
        x = x * params["specaugment"]["fkeep"][:, :, None, :] * params["specaugment"]["tkeep"][:, None, :, :]
    if "mixup" in params:
        lam, perm = params["mixup"]["lam"], params["mixup"]["perm"]
        x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
        y = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
    if "swap" in params:
        pairs = x[..., [c ^ 1 for c in range(x.shape[-1])]]
        x = np.where(params["swap"]["swap"][:, None, None, None], pairs, x)
    return x, y


def test_training_batches_are_seeded_and_match_a_numpy_reference(tmp_path):
    """The production pipeline (train_dataset) against NumPy on the same draws; same seed, same batches."""
    from asctool.training.batch_augment import draw_batch
    from asctool.training.pipeline import epoch_batches, train_dataset

    path = make_features(tmp_path / "a.h5", 16, shape=(16, 40, 6), seed=4, dtype="float16")
    clips, _ = make_clip_set(read_sources([path], "training"), None, None, labels_name="scene")
    with h5py.File(path) as handle:
        stored = handle["features"][()]
    cfg = AugmentConfig(specaugment=True, mixup=True, channel_swap=True, crop=30)

    def batches(config, seed):
        dataset = train_dataset(clips, batch_size=8, seed=seed, first_epoch=0, epochs=1, augment=config,
                                num_classes=4)
        return [(x.numpy(), y.numpy()) for x, y in dataset]

    a, b, c = batches(cfg, 5), batches(cfg, 5), batches(cfg, 6)
    assert len(a) == 2 and a[0][0].shape == (8, 16, 30, 6) and a[0][0].dtype == np.float32 and a[0][1].shape == (8, 4)
    for (ax, ay), (bx, by) in zip(a, b):
        np.testing.assert_array_equal(ax, bx)
        np.testing.assert_array_equal(ay, by)
    assert not np.array_equal(a[0][0], c[0][0])
    index, seeds = epoch_batches(len(clips), 8, 5, 0)
    for (x, y), rows, seed in zip(a, index, seeds):
        rows = rows[np.lexsort((clips.row[rows], clips.file_index[rows]))]     # the reader's order
        offset, params = draw_batch(seed, (8, *clips.feature_shape), cfg)
        ex, ey = _numpy_augment(stored[clips.row[rows]], clips.labels[rows], offset, params, cfg, 4)
        np.testing.assert_allclose(x, ex, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(y, ey, rtol=1e-6, atol=1e-6)
    plain = batches(AugmentConfig(), 5)
    for (x, y), rows in zip(plain, index):
        rows = rows[np.lexsort((clips.row[rows], clips.file_index[rows]))]
        np.testing.assert_array_equal(x, stored[clips.row[rows]].astype(np.float32))
        np.testing.assert_array_equal(y.argmax(axis=1), clips.labels[rows])


# --------------------------------------------------------------------------
# data and pipeline
# --------------------------------------------------------------------------
def test_epoch_batches_seeded_and_disjoint():
    a, seeds = epoch_batches(50, 8, seed=1, epoch=3)
    b, _ = epoch_batches(50, 8, seed=1, epoch=3)
    c, _ = epoch_batches(50, 8, seed=1, epoch=4)
    assert a.shape == (6, 8) and seeds.shape == (6, 2) and steps_per_epoch(50, 8) == 6
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(set(a.ravel())) == a.size
    assert epoch_batches(5, 8, seed=0, epoch=0)[0].shape == (1, 5)


def test_batch_reader_reads_across_files_in_order(tmp_path):
    p1 = make_features(tmp_path / "a.h5", 12, seed=0)
    p2 = make_features(tmp_path / "b.h5", 9, seed=1, city="rome", dtype="float32")
    sources = read_sources([p1, p2], "training")
    clips, classes = make_clip_set(sources, None, None, labels_name="scene")
    assert classes == list(CLASSES) and len(clips) == 21 and clips.dtype == np.float32

    with h5py.File(p1) as f1, h5py.File(p2) as f2:
        everything = np.concatenate([f1["features"][()].astype(np.float32), f2["features"][()]])
    pick = np.array([20, 3, 4, 5, 13, 0, 12, 11])
    with BatchReader(clips) as reader:
        got = reader.read(clips.file_index[pick], clips.row[pick])
    np.testing.assert_array_equal(got, everything[pick])


def test_hold_out_locations_is_disjoint_and_seeded(tmp_path):
    path = make_features(tmp_path / "a.h5", 80)
    sources = read_sources([path], "training")
    clips, _ = make_clip_set(sources, None, None, labels_name="scene")
    locations = np.asarray(sources[0].locations)
    mask, held = hold_out_locations(clips, locations, 0.25, seed=0)
    assert set(locations[mask]) == set(held) and not set(locations[mask]) & set(locations[~mask])
    assert set(clips.labels[mask]) == set(range(4))              # every class validated
    assert mask.sum() == 16                                      # 1 of 5 locations per class
    again, _ = hold_out_locations(clips, locations, 0.25, seed=0)
    other, _ = hold_out_locations(clips, locations, 0.25, seed=1)
    assert np.array_equal(mask, again) and not np.array_equal(mask, other)


def test_validation_without_locations_is_stratified_by_class(tmp_path, caplog):
    """Clips with neither a location nor a TAU id: a stratified split by class, said once."""
    from asctool.training.data import hold_out_validation

    path = tmp_path / "plain.h5"
    scenes = [CLASSES[i % 4] for i in range(22)]      # 6, 6, 5, 5 clips per class
    with FeaturesWriter(path, n=22, feature_shape=SHAPE, config=CONFIG, ids=[f"clip{i}" for i in range(22)],
                        scenes=scenes) as writer:
        for i in range(22):
            writer.write(i, np.zeros(SHAPE))
    sources = read_sources([path], "training")
    clips, _ = make_clip_set(sources, None, None, labels_name="scene")
    with caplog.at_level("WARNING", logger="asctool"):
        mask, info = hold_out_validation(clips, sources, 0.2, seed=0)
    assert info == {"valid_split_by": "class"}
    warnings = [r.getMessage() for r in caplog.records if "stratified by class" in r.getMessage()]
    # the hint names what train can do (it has no --group-column option, asctool split has)
    assert warnings == [f"{path}: no clip has a recording location: the validation clips are drawn stratified by "
                        "class (to keep clips of one recording together, split the manifest with asctool split "
                        "--group-column COLUMN and give train the validation features with --valid)"]
    # round(0.2 * 6) = 1, round(0.2 * 5) = 1 per class
    assert [int(mask[clips.labels == k].sum()) for k in range(4)] == [1, 1, 1, 1]
    again, _ = hold_out_validation(clips, sources, 0.2, seed=0)
    assert np.array_equal(mask, again)
    many, _ = hold_out_validation(clips, sources, 0.5, seed=0)
    assert [int(many[clips.labels == k].sum()) for k in range(4)] == [3, 3, 2, 2]
    # with locations: the location split, unchanged
    located = make_features(tmp_path / "a.h5", 80)
    lsources = read_sources([located], "training")
    lclips, _ = make_clip_set(lsources, None, None, labels_name="scene")
    lmask, linfo = hold_out_validation(lclips, lsources, 0.25, seed=0)
    expected, held = hold_out_locations(lclips, np.asarray(lsources[0].locations), 0.25, seed=0)
    assert np.array_equal(lmask, expected) and linfo == {"valid_locations": held}


def test_classes_recorded_in_a_features_file_are_the_known_ones(tmp_path):
    """``featurize --classes`` records a data set's own classes; train reads them from the file."""
    own = ("beach", "cave", "forest")
    path = tmp_path / "own.h5"
    with FeaturesWriter(path, n=3, feature_shape=SHAPE, config=CONFIG, ids=["b1", "c1", "f1"],
                        scenes=list(own), extra_attrs={"classes": json.dumps(list(own))}) as writer:
        for i in range(3):
            writer.write(i, np.zeros(SHAPE))
    (source,) = read_sources([path], "training")
    assert source.classes == list(own)
    clips, classes = make_clip_set([source], None, None, labels_name="scene")
    assert classes == list(own) and list(clips.labels) == [0, 1, 2]
    with pytest.raises(ConfigError, match=r"own\.h5: clip f1 \(row 2\): unknown label 'forest'"):
        make_clip_set([source], None, None, labels_name="scene", known=["beach", "cave"])


def test_epochs_for_steps_gives_at_least_the_steps_within_the_cap():
    from asctool.training.schedule import epochs_for_steps

    assert epochs_for_steps(30, 6, 800) == 134          # ceil(800 / 6): 30 epochs would be 180 steps
    assert 134 * 6 >= 800 > 133 * 6
    assert epochs_for_steps(30, 100, 800) == 30         # 3,000 steps already: the profile's budget stands
    assert epochs_for_steps(30, 1, 800) == 254          # the cap
    assert epochs_for_steps(300, 1, 800) == 300         # never below the profile's budget
    with pytest.raises(ValueError, match="positive"):
        epochs_for_steps(30, 0, 800)
