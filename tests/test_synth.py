"""asctool.synth: the demo data's plan and audio (scenes, devices)."""
from __future__ import annotations

import numpy as np
import pytest

from asctool.audio import read_audio
from asctool.errors import AsctoolError
from asctool.manifest import read_manifest
from asctool.stages.prepare import run as prepare
from asctool.stages.synth import run as synthesize
from asctool.synth import plan_dataset, render_location


def test_plan_is_location_disjoint_and_unseen_devices_only_in_evaluate():
    plan = plan_dataset(12)
    train = [s for s in plan if s.split == "train"]
    evaluate = [s for s in plan if s.split == "evaluate"]
    assert {(s.scene, s.location_id) for s in train}.isdisjoint({(s.scene, s.location_id) for s in evaluate})
    assert len({s.location_id for s in train if s.scene == "park"}) == 6
    assert all(not set(s.devices) & {"s4", "s5", "s6"} for s in train)
    # device a dominates training (12 segments, 2 of them also on b, c, s1-s3); 5 evaluation segments
    assert sum(len(s.devices) for s in train) == 10 * (12 + 2 * 5)
    assert sum(len(s.devices) for s in evaluate) == 10 * 5 * 9
    with pytest.raises(AsctoolError, match="unknown device"):
        plan_dataset(2, devices=("a", "z9"))


def test_devices_differ_and_levels_sane(demo_manifests):
    evaluate = read_manifest(demo_manifests["evaluate"])
    clips = {c.device: c for c in evaluate if c.id.startswith(evaluate.clips[0].id.rsplit("-", 1)[0] + "-")}
    audio = {d: read_audio(evaluate.audio_path(c))[0][0] for d, c in clips.items()}
    for d, y in audio.items():
        rms_db = 20 * np.log10(np.sqrt(np.mean(y ** 2)))
        assert -50 < rms_db < -10 and np.abs(y).max() < 1.0, (d, rms_db)
    # parallel recordings are correlated with device a, but not identical
    for d in ("b", "s1", "s4"):
        r = np.corrcoef(audio["a"], audio[d])[0, 1]
        assert 0.2 < r < 0.999, (d, r)


@pytest.mark.slow
def test_learnable_not_trivial(tmp_path):
    """A linear probe on log-mel statistics: above chance, below perfect, unseen devices harder."""
    librosa = pytest.importorskip("librosa")
    linear = pytest.importorskip("sklearn.linear_model")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    synthesize(tmp_path / "d", clips_per_class=12, seed=0, nj=2)
    manifests = prepare(tmp_path / "d", tmp_path / "m")["manifests"]

    def features(path):
        manifest = read_manifest(path)
        rows = []
        for clip in manifest:
            y, sr = read_audio(manifest.audio_path(clip))
            mel = np.log(librosa.feature.melspectrogram(y=y[0], sr=sr, n_fft=2048, hop_length=1024, n_mels=128,
                                                        htk=True, norm=None) + 1e-8)
            rows.append(np.concatenate([mel.mean(axis=1), mel.std(axis=1)]))
        return np.stack(rows), np.array([c.scene for c in manifest]), np.array([c.device for c in manifest])

    x_train, y_train, _ = features(manifests["train"])
    x_eval, y_eval, devices = features(manifests["evaluate"])
    scaler = preprocessing.StandardScaler().fit(x_train)
    model = linear.LogisticRegression(C=0.1, max_iter=2000).fit(scaler.transform(x_train), y_train)
    correct = model.predict(scaler.transform(x_eval)) == y_eval
    overall = correct.mean()
    device_a = correct[devices == "a"].mean()
    unseen = correct[np.isin(devices, ["s4", "s5", "s6"])].mean()
    assert 0.25 < overall < 0.9, overall
    assert unseen < device_a, (unseen, device_a)


def test_render_location_is_deterministic_and_in_range():
    segments = [s for s in plan_dataset(2, devices=("a", "b", "s4")) if s.location_id == 1]
    n, sr = 4000, 8000
    first = list(render_location(segments, seed=5, n=n, sr=sr))
    again = list(render_location(segments, seed=5, n=n, sr=sr))
    assert [(s.stem(d), y.tobytes()) for s, d, y in first] == [(s.stem(d), y.tobytes()) for s, d, y in again]
    assert {d for s in segments for d in s.devices} == {d for _, d, _ in first}
    for _, _, y in first:
        assert y.shape == (1, n) and y.dtype == np.float32 and np.abs(y).max() <= 1.0
    other = list(render_location(segments, seed=6, n=n, sr=sr))
    assert first[0][2].tobytes() != other[0][2].tobytes()


def test_scenes_of_a_coarse_class_share_background_and_signature_frequencies():
    """The scene lives in the shape of its signature events, not in where they lie in frequency: every
    scene of a coarse class has the class's background sources and room, and draws its signature
    frequency from the same law (the first draw of a location, so one seed gives one frequency)."""
    from asctool.labels import packaged_hierarchy
    from asctool.synth import SCENE_RECIPES, location_params

    hierarchy = packaged_hierarchy()
    backgrounds = {"indoor": {"hvac", "babble"}, "outdoor": {"wind", "distant"},
                   "transportation": {"rumble", "cabin"}}
    by_coarse: dict[str, list[str]] = {}
    for scene, recipe in SCENE_RECIPES.items():
        coarse = hierarchy[scene]
        by_coarse.setdefault(coarse, []).append(scene)
        assert backgrounds[coarse] <= set(recipe.levels), scene
        assert not (set(recipe.levels) - backgrounds[coarse]) & set().union(*backgrounds.values()), scene
    for coarse, scenes in by_coarse.items():
        rooms = {(SCENE_RECIPES[s].rt60, SCENE_RECIPES[s].drr, SCENE_RECIPES[s].loudness) for s in scenes}
        assert len(rooms) == 1, coarse
        for seed in range(5):
            freqs = {location_params(s, np.random.default_rng(seed))["sig_f"] for s in scenes}
            assert len(freqs) == 1, (coarse, freqs)
    # their signature events differ: at least two different families per coarse class
    for coarse, scenes in by_coarse.items():
        signatures = [frozenset(SCENE_RECIPES[s].levels) - backgrounds[coarse] for s in scenes]
        assert len(set(signatures)) == len(scenes) and all(signatures), coarse
