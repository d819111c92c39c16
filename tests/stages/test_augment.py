"""asctool augment (the stage): ids, leakage guard, nj, resume, peaks, the command line."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from asctool.audio import read_audio, write_audio
from asctool.cli import cli
from asctool.errors import AsctoolError, ConfigError, ManifestError
from asctool.manifest import Clip, read_manifest, write_manifest
from asctool.stages.augment import MARKER, run

SR = 16000
N = 8000  # 0.5 s


def make_corpus(root, stems, *, sr=SR, n=N, seed=0):
    """Write noise clips named by TAU stems and a manifest listing them."""
    rng = np.random.default_rng(seed)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    clips = []
    for stem in stems:
        y = (0.1 * rng.standard_normal((1, n))).astype(np.float32)
        write_audio(root / "audio" / f"{stem}.wav", y, sr)
        scene, city, loc, _seg, device = stem.split("-")
        clips.append(Clip(id=stem, path=f"audio/{stem}.wav", scene=scene, device=device, city=city,
                          location=f"{scene}-{city}-{loc}"))
    return write_manifest(root / "train.tsv", clips)


STEMS = [
    "airport-lisbon-1-10-a", "airport-lisbon-1-11-a", "airport-paris-2-20-a",
    "bus-lisbon-3-30-a", "bus-lisbon-3-31-a", "bus-lisbon-3-30-b",
]


@pytest.fixture()
def corpus(tmp_path):
    return make_corpus(tmp_path / "data", STEMS)


# --------------------------------------------------------------------------
# the run loop
# --------------------------------------------------------------------------
def test_noise_run_writes_clips_and_manifest(corpus, tmp_path, caplog):
    out_manifest = tmp_path / "aug" / "noise.tsv"
    with caplog.at_level(logging.WARNING, logger="asctool"):
        summary = run("noise", corpus, out_dir=tmp_path / "aug" / "noise", out_manifest=out_manifest, seed=1)
    assert "no leakage guard set" in caplog.text
    assert summary["written"] == len(STEMS) and summary["output_clips"] == len(STEMS)
    out = read_manifest(out_manifest)
    src = {c.id: c for c in read_manifest(corpus)}
    for clip in out:
        source = src[clip.source_id]
        assert clip.id == f"{clip.source_id}_noise" and clip.augmentation == "noise"
        assert (clip.scene, clip.device, clip.city, clip.location) == (
            source.scene, source.device, source.city, source.location)
        y, sr = read_audio(out.audio_path(clip))
        x, _ = read_audio(read_manifest(corpus).audio_path(source))
        assert sr == SR and y.shape == x.shape
        assert 0.005 < np.std(y - x) < 0.015
        assert sf.info(str(out.audio_path(clip))).format == "FLAC"
        assert not out.audio_path(clip).is_absolute() or True
    assert not any(c.path.startswith("/") for c in out)


def test_devices_option_and_wav_format(corpus, tmp_path):
    summary = run("noise", corpus, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv", devices="b",
                  audio_format="wav")
    assert summary["sources"] == 1
    (clip,) = read_manifest(tmp_path / "o.tsv").clips
    assert clip.id == "bus-lisbon-3-30-b_noise" and clip.path.endswith(".wav")
    with pytest.raises(ManifestError, match="no source clips of device"):
        run("noise", corpus, out_dir=tmp_path / "p", out_manifest=tmp_path / "p.tsv", devices="s9")
    assert not (tmp_path / "p").exists()


def test_mix_is_identical_for_nj_1_and_2_and_skips_lonely_scenes(corpus, tmp_path):
    # airport-paris-2-20-a has partners; bus-lisbon-3-30-b's only other bus clips are
    # bus-lisbon-3-31-a (ok) and its parallel recording 3-30-a (excluded as a partner)
    results = {}
    for nj in (1, 2):
        summary = run("mix", corpus, out_dir=tmp_path / f"mix{nj}", out_manifest=tmp_path / f"mix{nj}.tsv",
                      nj=nj, seed=7)
        results[nj] = {p.name: p.read_bytes() for p in sorted((tmp_path / f"mix{nj}").glob("*.flac"))}
        assert summary["output_clips"] == len(STEMS)
    assert results[1] == results[2] and len(results[1]) == len(STEMS)
    lonely = make_corpus(tmp_path / "lonely", ["park-oslo-1-1-a", "tram-oslo-2-2-a", "tram-oslo-2-3-a"])
    summary = run("mix", lonely, out_dir=tmp_path / "l", out_manifest=tmp_path / "l.tsv")
    assert summary["skipped"] == {"no_partner": 1} and summary["output_clips"] == 2


def test_mix_changes_the_clip_with_a_same_scene_partner(corpus, tmp_path):
    run("mix", corpus, out_dir=tmp_path / "m", out_manifest=tmp_path / "m.tsv", params=["f_min=1", "f_max=1"])
    man = read_manifest(tmp_path / "m.tsv")
    src = read_manifest(corpus)
    clip = next(c for c in man if c.source_id == "airport-paris-2-20-a")
    y, _ = read_audio(man.audio_path(clip))
    x, _ = read_audio(src.audio_path(next(c for c in src if c.id == clip.source_id)))
    partners = [read_audio(src.audio_path(c))[0] for c in src if c.scene == "airport" and c.id != clip.source_id]
    assert min(np.abs(y - x - p).max() for p in partners) < 1e-5


def test_leakage_guard_drops_evaluation_locations(corpus, tmp_path):
    evaluation = tmp_path / "eval.tsv"
    evaluation.write_text("filename\tscene_label\r\naudio/airport-lisbon-1-99-c.wav\tairport\r\n")
    summary = run("noise", corpus, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv",
                  exclude_locations=evaluation)
    assert summary["excluded_by_location"] == 2 and summary["output_clips"] == len(STEMS) - 2
    assert not any(c.location == "airport-lisbon-1" for c in read_manifest(tmp_path / "o.tsv"))
    (tmp_path / "bad.tsv").write_text("id\tpath\nfoo\tfoo.wav\n")
    with pytest.raises(ManifestError, match="no recording locations"):
        run("noise", corpus, out_dir=tmp_path / "q", out_manifest=tmp_path / "q.tsv",
            exclude_locations=tmp_path / "bad.tsv")


def test_resume_keeps_written_clips_and_refuses_foreign_folders(corpus, tmp_path):
    out_dir, out_manifest = tmp_path / "o", tmp_path / "o.tsv"
    run("noise", corpus, out_dir=out_dir, out_manifest=out_manifest, seed=2)
    before = {p.name: p.read_bytes() for p in out_dir.glob("*.flac")}
    victim = sorted(out_dir.glob("*.flac"))[0]
    victim.unlink()
    (out_dir / "x.tmp-123.flac").write_bytes(b"half written")
    out_manifest.unlink()
    summary = run("noise", corpus, out_dir=out_dir, out_manifest=out_manifest, seed=2)
    assert summary["written"] == 1 and summary["kept_existing"] == len(STEMS) - 1
    assert {p.name: p.read_bytes() for p in out_dir.glob("*.flac")} == before
    assert not (out_dir / "x.tmp-123.flac").exists() and out_manifest.exists()
    # a finished run (its manifest written) is not redone without --force (issue 9)
    with pytest.raises(AsctoolError, match="o.tsv: already exists \\(use --force to overwrite\\)"):
        run("noise", corpus, out_dir=out_dir, out_manifest=out_manifest, seed=2)
    out_manifest.unlink()
    with pytest.raises(AsctoolError, match="holds a run with other settings \\(seed\\)"):
        run("noise", corpus, out_dir=out_dir, out_manifest=out_manifest, seed=3)
    (out_dir / "notes.txt").write_text("mine")
    with pytest.raises(AsctoolError, match="holds files not from this run: notes.txt"):
        run("noise", corpus, out_dir=out_dir, out_manifest=out_manifest, seed=2)
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.wav").write_bytes(b"")
    with pytest.raises(AsctoolError, match=f"not empty and holds no augment run \\({MARKER} missing\\)"):
        run("noise", corpus, out_dir=other, out_manifest=tmp_path / "x.tsv")


def test_peaks_above_full_scale_are_scaled(corpus, tmp_path):
    summary = run("noise", corpus, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv", params=["noise_std=1"])
    assert summary["peak_scaled"] == len(STEMS)
    man = read_manifest(tmp_path / "o.tsv")
    peaks = [np.abs(read_audio(man.audio_path(c))[0]).max() for c in man]
    np.testing.assert_allclose(peaks, 0.99, atol=1e-4)


def test_pitch_and_speed_runs_preserve_length(corpus, tmp_path):
    for method in ("pitch", "speed"):
        summary = run(method, corpus, out_dir=tmp_path / method, out_manifest=tmp_path / f"{method}.tsv",
                      devices="b")
        assert summary["written"] == 1
        man = read_manifest(tmp_path / f"{method}.tsv")
        y, sr = read_audio(man.audio_path(man.clips[0]))
        assert y.shape == (1, N) and sr == SR


def test_option_misuse_is_reported(corpus, tmp_path):
    with pytest.raises(ConfigError, match="only for reverb and reverb-drc"):
        run("noise", corpus, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv", simulate_rooms=2)
    with pytest.raises(ConfigError, match="--per-device is only for spectrum-correction"):
        run("noise", corpus, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv", per_device=True)
    with pytest.raises(ConfigError, match="exactly one of --rir-dir and --simulate-rooms"):
        run("reverb", corpus, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv")
    assert not (tmp_path / "o").exists()


def test_cli_augment(corpus, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["-q", "augment", "noise", "--manifest", str(corpus), "--out-dir",
                                 str(tmp_path / "o"), "--out-manifest", str(tmp_path / "o.tsv"), "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == len(STEMS)
    result = runner.invoke(cli, ["augment", "noise", "--manifest", str(corpus), "--out-dir", str(tmp_path / "p"),
                                 "--out-manifest", str(tmp_path / "p.tsv"), "--param", "sigma=1"])
    assert result.exit_code == 1
    assert "unknown parameter 'sigma'; known: noise_std" in result.output


def test_leakage_guard_with_the_real_tau_split(shared_data, tmp_path):
    split = shared_data / "tau2020_fold1"
    train = [line.split("\t")[0] for line in (split / "fold1_train.csv").read_text().splitlines()[1:4]]
    evaluate = [line.split("\t")[0] for line in (split / "fold1_evaluate.csv").read_text().splitlines()[1:3]]
    # a device-a recording made at an evaluation location, on a segment the split does not list
    stems = [p.rsplit("/", 1)[-1][:-4] for p in train]
    scene, city, loc, _seg, _dev = evaluate[0].rsplit("/", 1)[-1][:-4].split("-")
    stems.append(f"{scene}-{city}-{loc}-999999-a")
    manifest = make_corpus(tmp_path / "d", stems, n=400)
    summary = run("noise", manifest, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv",
                  exclude_locations=split / "fold1_evaluate.csv")
    assert summary["excluded_by_location"] == 1 and summary["output_clips"] == 3


@pytest.mark.slow
def test_killed_run_resumes_to_identical_output(tmp_path):
    """Kill a real `asctool augment` process mid-run, restart it, compare with an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    stems = [f"tram-oslo-{k}-{k}-a" for k in range(40)]
    manifest = make_corpus(tmp_path / "d", stems, n=SR * 2)
    out_dir = tmp_path / "killed"
    command = [sys.executable, "-c", "from asctool.cli import main; main()", "-q", "augment", "pitch",
               "--manifest", str(manifest), "--seed", "5", "--nj", "2",
               "--out-dir", str(out_dir), "--out-manifest", str(tmp_path / "k.tsv")]
    # its own process group, so the kill reaches the workers too
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out_dir.glob("*.flac"))) < 5:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(list(out_dir.glob("*.flac")))
    assert 0 < n_before < len(stems) and not (tmp_path / "k.tsv").exists()
    summary = run("pitch", manifest, out_dir=out_dir, out_manifest=tmp_path / "k.tsv", seed=5, nj=2)
    assert summary["kept_existing"] >= n_before - 2 and summary["output_clips"] == len(stems)
    run("pitch", manifest, out_dir=tmp_path / "clean", out_manifest=tmp_path / "c.tsv", seed=5, nj=1)
    clean = {p.name: p.read_bytes() for p in (tmp_path / "clean").glob("*.flac")}
    assert {p.name: p.read_bytes() for p in out_dir.glob("*.flac")} == clean


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pitch", "speed", "reverb-drc"])
def test_nj_does_not_change_the_output(corpus, tmp_path, method):
    extra = {"simulate_rooms": 2} if method == "reverb-drc" else {}
    outputs = []
    for nj in (1, 2):
        run(method, corpus, out_dir=tmp_path / f"o{nj}", out_manifest=tmp_path / f"o{nj}.tsv", nj=nj, seed=11, **extra)
        outputs.append({p.name: p.read_bytes() for p in (tmp_path / f"o{nj}").glob("*.flac")})
    assert outputs[0] == outputs[1] and outputs[0]


# --------------------------------------------------------------------------
# ids that would leave the output folder; outputs never overwritten without --force (issue 9, items 1, 16, 19)
# --------------------------------------------------------------------------
def _with_id(corpus, line: int, new_id: str):
    lines = corpus.read_text().splitlines()
    fields = lines[line - 1].split("\t")
    lines[line - 1] = "\t".join([new_id, *fields[1:]])
    corpus.write_text("\n".join(lines) + "\n")
    return corpus


@pytest.mark.parametrize("bad_id, problem", [
    ("../../ESCAPED", "contains a path separator"),   # the example: it wrote work/ESCAPED_noise.wav
    ("/tmp/ESCAPED", "is an absolute path"),
    ("-ESCAPED", "starts with '-'"),
])
def test_ids_that_would_leave_the_output_folder_are_refused(corpus, tmp_path, one_line_error, tree, bad_id, problem):
    work = tmp_path / "work"
    _with_id(corpus, 3, bad_id)
    before = tree(tmp_path)
    done = CliRunner().invoke(cli, ["augment", "noise", "--manifest", str(corpus), "--out-dir",
                                    str(work / "out" / "aug"), "--out-manifest", str(work / "aug.tsv")])
    one_line_error(done, f"{corpus}:3: clip id {bad_id!r} {problem}")
    assert tree(tmp_path) == before and not list(tmp_path.parent.glob("ESCAPED*"))


def test_an_existing_output_manifest_needs_force(corpus, tmp_path, one_line_error):
    args = ["augment", "noise", "--manifest", str(corpus), "--out-dir", str(tmp_path / "o"),
            "--out-manifest", str(tmp_path / "o.tsv"), "--seed", "1"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    first = (tmp_path / "o.tsv").read_text()
    one_line_error(CliRunner().invoke(cli, args), f"{tmp_path / 'o.tsv'}: already exists (use --force to overwrite)")
    # --force rewrites every clip, even over a run of other settings
    victim = sorted((tmp_path / "o").glob("*.flac"))[0]
    victim.write_bytes(b"damaged")
    done = CliRunner().invoke(cli, [*args[:-1], "2", "--force"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["written"] == len(STEMS) and (tmp_path / "o.tsv").read_text() == first
    assert read_audio(victim)[0].shape == (1, N)


def test_impossible_outputs_are_refused_before_anything_is_written(corpus, tmp_path, read_only_dir, one_line_error,
                                                                   tree):
    (tmp_path / "some.tsv").write_text("id\tpath\n")
    before = tree(tmp_path)
    base = ["augment", "noise", "--manifest", str(corpus)]
    one_line_error(CliRunner().invoke(cli, [*base, "--out-dir", str(tmp_path / "o"), "--out-manifest",
                                            str(tmp_path / "some.tsv" / "o.tsv")]),
                   "some.tsv/o.tsv: cannot be written:", "some.tsv is not a folder")
    one_line_error(CliRunner().invoke(cli, [*base, "--out-dir", str(tmp_path / "some.tsv" / "aug"), "--out-manifest",
                                            str(tmp_path / "o.tsv")]), "some.tsv/aug: cannot be written:")
    one_line_error(CliRunner().invoke(cli, [*base, "--out-dir", str(read_only_dir / "aug"), "--out-manifest",
                                            str(tmp_path / "o.tsv")]), "RO/aug: cannot be written: no permission")
    assert tree(tmp_path) == before


# --------------------------------------------------------------------------
# silent wrong results refused (issue 9 items 5 and 7)
# --------------------------------------------------------------------------
def test_mix_with_nothing_to_mix_is_an_error_not_an_empty_manifest(tmp_path):
    one = make_corpus(tmp_path / "one", ["park-oslo-1-1-a"])
    with pytest.raises(ManifestError, match=r"train\.tsv: augment mix has no clip to write from its 1 source "
                                            r"clip\(s\) \(1 no partner\)"):
        run("mix", one, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv")
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.tsv").exists()
    # another instance: unlabelled clips (a test set) have no same-scene partner either
    unlabelled = make_corpus(tmp_path / "u", ["park-oslo-1-1-a", "park-oslo-2-2-a"])
    unlabelled.write_text(unlabelled.read_text().replace("\tpark\t", "\t\t"))
    with pytest.raises(ManifestError, match=r"no clip to write from its 2 source clip\(s\) \(2 no scene\)"):
        run("mix", unlabelled, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv")
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.tsv").exists()


def test_a_typo_scene_is_refused_naming_the_line(corpus, tmp_path):
    corpus.write_text(corpus.read_text().replace("bus-lisbon-3-31-a\taudio/bus-lisbon-3-31-a.wav\tbus",
                                                 "bus-lisbon-3-31-a\taudio/bus-lisbon-3-31-a.wav\tbsu"))
    with pytest.raises(ManifestError, match=r"train\.tsv:6: unknown label 'bsu'"):
        run("noise", corpus, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv")
    assert not (tmp_path / "o").exists()
    (tmp_path / "classes.txt").write_text("airport\nbus\nbsu\n")
    summary = run("noise", corpus, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv",
                  classes_path=tmp_path / "classes.txt")
    assert summary["written"] == len(STEMS)
