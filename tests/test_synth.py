"""asctool synth: the demo dataset generator."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from asctool.audio import audio_info, read_audio
from asctool.cli import cli
from asctool.errors import AsctoolError
from asctool.manifest import SCENES, parse_stem, prepare, read_csv_rows, read_manifest
from asctool.synth import DEVICES, plan_dataset, synthesize


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_byte_identical(tmp_path):
    kwargs = dict(clips_per_class=1, duration=1.0, devices="a,b,s4")
    synthesize(tmp_path / "one", seed=3, **kwargs)
    synthesize(tmp_path / "two", seed=3, nj=2, **kwargs)  # workers do not change the files
    synthesize(tmp_path / "other", seed=4, **kwargs)
    one, two, other = (_digests(tmp_path / n) for n in ("one", "two", "other"))
    assert one == two and len(one) == 5 + 10 * (2 + 3)
    wavs = [k for k in one if k.endswith(".wav")]
    assert all(one[k] != other[k] for k in wavs)


def test_layout_counts_and_prepare(demo_dataset, demo_manifests):
    root = demo_dataset
    assert (root / "meta.csv").is_file() and (root / "asctool_synth.json").is_file()
    header, meta = read_csv_rows(root / "meta.csv")
    assert header == ["filename", "scene_label", "identifier", "source_label"]
    for row in meta:
        parts = parse_stem(Path(row["filename"]).stem)
        assert parts["scene"] == row["scene_label"] and parts["device"] == row["source_label"]
        assert row["identifier"] == parts["location"].split("-", 1)[1]
    train = read_manifest(demo_manifests["train"])
    evaluate = read_manifest(demo_manifests["evaluate"])
    assert Counter(c.device for c in train) == {"a": 20, "b": 10, "c": 10, "s1": 10, "s2": 10, "s3": 10}
    assert Counter(c.device for c in evaluate) == {d: 10 for d in DEVICES}
    assert Counter(c.scene for c in train) == {s: 7 for s in SCENES}
    assert not {c.location for c in train} & {c.location for c in evaluate}
    # parallel recordings: every non-a clip has the device-a clip of its segment
    ids = {c.id for c in train} | {c.id for c in evaluate}
    for clip in list(train) + list(evaluate):
        assert clip.id.rsplit("-", 1)[0] + "-a" in ids
    info = audio_info(train.audio_path(train.clips[0]))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 1, 441000, "PCM_24")
    assert json.loads((demo_manifests["train"].parent / "fold1_info.json").read_text())["dataset"].startswith("asctool synth")


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


def test_refuses_non_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(AsctoolError, match="not empty"):
        synthesize(tmp_path / "x", clips_per_class=1, duration=1.0, devices="a")
    result = CliRunner().invoke(cli, ["synth", "--out-dir", str(tmp_path / "x"), "--duration", "1"])
    assert result.exit_code == 1 and "not empty (use --force" in result.output
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["keep.txt"]
    synthesize(tmp_path / "x", clips_per_class=1, duration=1.0, devices="a", force=True)
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_plan_is_location_disjoint_and_unseen_devices_only_in_evaluate():
    plan = plan_dataset(12)
    train = [s for s in plan if s.split == "train"]
    evaluate = [s for s in plan if s.split == "evaluate"]
    assert {(s.scene, s.location_id) for s in train}.isdisjoint({(s.scene, s.location_id) for s in evaluate})
    assert len({s.location_id for s in train if s.scene == "park"}) == 6
    assert all(not set(s.devices) & {"s4", "s5", "s6"} for s in train)
    assert sum(len(s.devices) for s in train) == 10 * (12 + 3 * 5)
    assert sum(len(s.devices) for s in evaluate) == 10 * 3 * 9
    with pytest.raises(AsctoolError, match="unknown device"):
        plan_dataset(2, devices=("a", "z9"))


def test_stereo_48k_cli(tmp_path):
    result = CliRunner().invoke(cli, ["-q", "synth", "--out-dir", str(tmp_path / "d"), "--clips-per-class", "2",
                                      "--duration", "1", "--sr", "48000", "--channels", "2", "--devices", "a"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["clips"] == 10 * (2 + 1)
    summary = prepare(tmp_path / "d", tmp_path / "m")
    clip = read_manifest(tmp_path / "m" / "fold1_train.tsv").clips[0]
    y, sr = read_audio(tmp_path / "m" / clip.path)
    assert sr == 48000 and y.shape == (2, 48000)
    assert 0.1 < np.corrcoef(y[0], y[1])[0, 1] < 0.999  # two channels, not a copy
    assert summary["devices"]["evaluate"] == {"a": 10}


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
