"""Bad inputs, table-driven, across every stage (issue 9, "Done when").

Each case of :data:`CASES` runs one ``asctool`` command on a bad input and
asserts what a user of any stage is promised (docs/reliability.md, "Bad
input: one line, nothing written"):

- exit status 1 for a data error, 2 for a usage error (click);
- one ``Error:`` line naming the file (``MANIFEST:LINE`` for a manifest row);
  nothing else on stderr (a usage error also has click's two standard
  ``Usage:``/``Try ...`` lines), nothing on stdout;
- no traceback;
- nothing written: the case's folder (where every output goes, and the
  working directory) and the shared inputs are the same before and after, file
  for file and byte for byte (no new file, no temporary file, no folder).

The commands run in-process through click's ``CliRunner``; a sample
(``sub=True``) also runs through the real ``asctool`` console script of this
checkout, where a traceback would really be printed. Positive oddities (CRLF,
a byte-order mark, classes as an HDF5 string array) are at the end, outside
the table.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from asctool.shards import combine_features
from asctool.cli import cli
from helpers import (CONFIG, COARSE, FINE, FUSE_IDS, FUSE_REF, P_COARSE, P_FINE, make_features, poke, trained_run,
                     write_example_scores, write_probs, write_raw_scores)

REPO = Path(__file__).resolve().parents[1]
HEADER = ("id", "path", "scene", "device", "city", "location")


# --------------------------------------------------------------------------
# the shared inputs
# --------------------------------------------------------------------------
def tsv(path: Path, rows, header=HEADER, *, newline: str = "\n", bom: bool = False) -> Path:
    """A tab-separated file: ``header`` then ``rows`` (sequences of fields), as given."""
    lines = ["\t".join(header), *("\t".join(str(v) for v in row) for row in rows)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (newline.join(lines) + newline).encode("utf-8"))
    return path


def clip_row(clip_id: str, audio: Path | str, scene: str = "airport", device: str = "a") -> tuple:
    return (clip_id, audio, scene, device, "barcelona", f"{scene}-barcelona-1")


@pytest.fixture(scope="module")
def world(tmp_path_factory, demo_dataset):
    """Every input the cases read, made once: manifests, audio, features, scores, models, reports."""
    w = tmp_path_factory.mktemp("robust_world")
    run = trained_run(tmp_path_factory)
    audio = demo_dataset / "audio"
    good_a, good_b = audio / "airport-barcelona-1-1-a.wav", audio / "bus-london-3-4-a.wav"
    paths = {"w": w, "ds": demo_dataset, "model": run["run"] / "model.keras", "good": good_a}

    # manifests
    tsv(w / "good.tsv", [clip_row("airport-barcelona-1-1-a", good_a),
                         clip_row("bus-london-3-4-a", good_b, "bus")])
    tsv(w / "one.tsv", [clip_row("airport-barcelona-1-1-a", good_a)])
    tsv(w / "escape.tsv", [clip_row("airport-barcelona-1-1-a", good_a), clip_row("../../ESCAPED", good_b, "bus")])
    tsv(w / "dash_id.tsv", [clip_row("airport-barcelona-1-1-a", good_a), clip_row("-rf", good_b, "bus")])
    tsv(w / "ctrl_id.tsv", [clip_row("bad\x1bid", good_a)])
    tsv(w / "dup.tsv", [clip_row("airport-barcelona-1-1-a", good_a), clip_row("airport-barcelona-1-1-a", good_b)])
    tsv(w / "typo.tsv", [clip_row("airport-barcelona-1-1-a", good_a), clip_row("bus-london-3-4-a", good_b, "airprot")])
    tsv(w / "quote.tsv", [clip_row("airport-barcelona-1-1-a", good_a), clip_row('"bus-london-3-4-a', good_b, "bus")])
    tsv(w / "nopath.tsv", [clip_row("airport-barcelona-1-1-a", good_a), clip_row("bus-london-3-4-a", "", "bus")])
    tsv(w / "nocol.tsv", [("airport-barcelona-1-1-a", "airport")], header=("id", "scene"))
    # (an extra column is kept since issue 14; a column named twice is still refused)
    tsv(w / "dupcol.tsv", [(*clip_row("airport-barcelona-1-1-a", good_a), "x")], header=(*HEADER, "city"))
    tsv(w / "toomany.tsv", [clip_row("airport-barcelona-1-1-a", good_a), (*clip_row("b", good_b), "x", "y", "z")])
    tsv(w / "header_only.tsv", [])
    (w / "empty.tsv").write_bytes(b"")
    (w / "latin1.tsv").write_bytes("\t".join(HEADER).encode() + b"\ncaf\xe9\t" + str(good_a).encode() + b"\n")
    tsv(w / "nolabel.tsv", [clip_row("airport-barcelona-1-1-a", good_a, ""), clip_row("bus-london-3-4-a", good_b, "")])
    tsv(w / "noloc.tsv", [("clip1", good_a, "airport", "a", "", ""), ("clip2", good_b, "bus", "a", "", "")])
    tsv(w / "oneloc.tsv", [clip_row("airport-barcelona-1-1-a", good_a), clip_row("bus-london-3-4-a", good_b, "bus")])

    # audio
    bad = w / "audio"
    bad.mkdir()
    (bad / "text.wav").write_text("this is not audio\n")
    rng = np.random.default_rng(0)
    sf.write(bad / "sr48k.wav", 0.1 * rng.standard_normal(480000).astype(np.float32), 48000, subtype="PCM_16")
    sf.write(bad / "short.wav", 0.1 * rng.standard_normal(88200).astype(np.float32), 44100, subtype="PCM_16")
    sf.write(bad / "mono48k.wav", 0.1 * rng.standard_normal(480000).astype(np.float32), 48000, subtype="PCM_16")
    nan = 0.1 * rng.standard_normal(441000).astype(np.float32)
    nan[1000] = np.nan
    sf.write(bad / "nan.wav", nan, 44100, subtype="FLOAT")
    whole = good_a.read_bytes()
    (bad / "trunc.wav").write_bytes(whole[: len(whole) // 2])
    (bad / "empty.wav").write_bytes(b"")
    for name in ("text", "sr48k", "short", "nan", "trunc", "empty"):
        tsv(w / f"audio_{name}.tsv", [clip_row("airport-barcelona-1-1-a", bad / f"{name}.wav")])
    tsv(w / "audio_missing.tsv", [clip_row("airport-barcelona-1-1-a", bad / "missing.wav")])
    tsv(w / "audio_mono48k.tsv", [clip_row("airport-barcelona-1-1-a", bad / "mono48k.wav")])
    tsv(w / "audio_folder.tsv", [clip_row("airport-barcelona-1-1-a", bad)])

    # front-end configs
    (w / "bad_yaml.yaml").write_text("n_mels: [64\nn_fft: 1024\n")
    (w / "unknown_key.yaml").write_text("n_mel: 64\n")
    (w / "empty_filters.yaml").write_text("n_fft: 512\nwin_length: 512\nn_mels: 256\n")
    (w / "list.yaml").write_text("- n_mels\n- 64\n")
    (w / "bad_value.yaml").write_text("n_mels: many\n")
    (w / "bad_base.yaml").write_text("base: 2c\n")
    (w / "classes_empty.txt").write_text("# nothing\n\n")
    (w / "classes_dup.txt").write_text("airport\nbus\nairport\n")

    # features
    make_features(w / "feats.h5", 12, seed=5)
    make_features(w / "feats_other.h5", 12, seed=6, config={"preset": "other", "n_mels": 32})
    make_features(w / "feats_shape.h5", 12, seed=7, shape=(16, 40, 3))
    poke(make_features(w / "feats_nan.h5", 12, seed=8), "features", (0, 0, 0, 0), np.nan)
    poke(make_features(w / "feats_inf.h5", 12, seed=9, dtype="float32"), "features", (3, 1, 2, 0), np.inf)
    make_features(w / "feats_typo.h5", 12, seed=10,
                  scenes=["airport", "bus", "park", "tram"] * 2 + ["airprot", "bus", "park", "tram"])
    make_features(w / "feats_one_class.h5", 8, seed=11, scenes=["bus"] * 8)
    make_features(w / "feats_overlap.h5", 12, seed=5)  # the same ids as feats.h5
    make_features(w / "feats_empty.h5", 0, seed=12)
    (w / "comb").mkdir()
    shards = [make_features(w / "comb" / f"s{k}.h5", 6, seed=20 + k) for k in (1, 2)]
    combine_features(shards, w / "comb" / "all.h5")
    shards[1].unlink()
    (w / "text.h5").write_text("a text file, not HDF5\n")
    (w / "trunc.h5").write_bytes((w / "feats.h5").read_bytes()[:3000])
    with h5py.File(w / "plain.h5", "w") as handle:
        handle["x"] = np.arange(3)
    with h5py.File(w / "nofeat.h5", "w") as handle:
        handle.attrs.update({"asctool_kind": "features", "schema_version": 1})
    with h5py.File(w / "v9.h5", "w") as handle:
        handle.attrs.update({"asctool_kind": "scores", "schema_version": 9})

    # scores
    write_example_scores(w / "scores.h5")
    ids6 = ["c1", "c2", "c3", "c4", "c5", "c6"]
    probs6 = np.full((6, 3), 1 / 3)
    write_raw_scores(w / "scores_dup.h5", ["c1", "c2", "c3", "c4", "c5", "c5"], probs6, ["bus", "park", "tram"])
    write_raw_scores(w / "scores_empty.h5", [], np.zeros((0, 3)), ["bus", "park", "tram"])
    nan_probs = probs6.copy()
    nan_probs[2, 1] = np.nan
    write_raw_scores(w / "scores_nan.h5", ids6, nan_probs, ["bus", "park", "tram"])
    write_raw_scores(w / "scores_sum.h5", ids6, np.full((6, 3), 0.5), ["bus", "park", "tram"])
    write_raw_scores(w / "scores_ids.h5", ["c1", "c2", "c3", "c4", "c5", "c9"], probs6, ["bus", "park", "tram"])
    write_raw_scores(w / "scores_cls.h5", ids6, probs6, ["bus", "park", "metro"])
    write_raw_scores(w / "scores_nolab.h5", ids6, probs6, ["bus", "park", "tram"])
    write_raw_scores(w / "scores_noclasses.h5", ids6, probs6, ["bus", "park", "tram"], classes_attr="not json [")
    write_probs(w / "fine.h5", FUSE_IDS, P_FINE, FINE, scenes=FUSE_REF)
    write_probs(w / "coarse.h5", FUSE_IDS, P_COARSE, COARSE)
    write_raw_scores(w / "coarse_dup.h5", ["f1", "f2", "f3", "f3"], P_COARSE, COARSE)
    tsv(w / "hier.tsv", [("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B")], header=("fine", "coarse"))
    tsv(w / "hier_partial.tsv", [("a1", "A"), ("a2", "A"), ("b1", "B")], header=("fine", "coarse"))
    (w / "hier_bad.tsv").write_text("fine\tcoarse\na1\tA\na2 A\n")
    tsv(w / "labels_map.tsv", [("bus", "x")], header=("scene", "label"))

    # reports, sizes, groups
    from asctool.stages.score import run as score

    score(w / "scores.h5", json_path=w / "report.json")
    (w / "report_list.json").write_text("[1, 2, 3]\n")
    (w / "report_groups.json").write_text('{"groups": [1, 2], "overall": {"accuracy": 0.5}}\n')
    (w / "not.json").write_text("{not json\n")
    (w / "report_text.json").write_text('{"groups": {"A": {"accuracy": "high"}}, "overall": {"accuracy": 0.5}}\n')
    (w / "sizes").mkdir()
    (w / "sizes" / "size.json").write_text(
        '{"file": "m.tflite", "bytes": 4096, "parameters": 1000, "bits_per_parameter": 8, '
        '"parameter_bytes": 1000, "mode": "dynamic"}\n')
    (w / "sizes" / "size_nobytes.json").write_text('{"file": "m.tflite", "parameters": 1000, "mode": "dynamic"}\n')
    (w / "sizes" / "size_list.json").write_text("[4096]\n")
    (w / "groups_bad.yaml").write_text("A: [a\n")
    (w / "groups_list.yaml").write_text("- a\n- b\n")

    # models
    (w / "textmodel").mkdir()
    (w / "textmodel" / "model.keras").write_text("not a zip archive\n")
    (w / "tfl").mkdir()
    (w / "tfl" / "m.tflite").write_bytes(b"TFL3" + bytes(range(256)) * 8)
    (w / "tfl" / "size.json").write_text('{"file": "m.tflite", "sha256": "' + "0" * 64 + '"}\n')
    (w / "garbage").mkdir()
    (w / "garbage" / "m.tflite").write_bytes(b"\x00garbage" * 50)
    shutil.copy(w / "feats.h5", w / "model.h5")
    (w / "tfl_badjson").mkdir()
    shutil.copy(w / "tfl" / "m.tflite", w / "tfl_badjson" / "m.tflite")
    (w / "tfl_badjson" / "size.json").write_text("{not json\n")
    _rezip(paths["model"], w / "badmeta" / "model.keras", replace={"asctool.json": b"{not json"})
    _rezip(paths["model"], w / "nometa" / "model.keras", replace={"asctool.json": None})
    _rezip(paths["model"], w / "zipmodel" / "model.keras", keep=("asctool.json",))
    with zipfile.ZipFile(paths["model"]) as archive:
        weights = {n: archive.read(n)[:1000] for n in archive.namelist() if n.endswith(".h5")}
    _rezip(paths["model"], w / "badweights" / "model.keras", replace=weights)
    meta = json.loads(zipfile.ZipFile(paths["model"]).read("asctool.json"))
    for name, change in (("classes", {"classes": 5}), ("frontend", {"frontend_config": "1a"}),
                         ("shape", {"input_shape": "big"}), ("labelmap", {"label_map": ["bus"]})):
        _rezip(paths["model"], w / f"meta_{name}" / "model.keras",
               replace={"asctool.json": json.dumps({**meta, **change}).encode()})
    with h5py.File(w / "noconfig.h5", "w") as handle:
        handle.attrs.update({"asctool_kind": "features", "schema_version": 1})
        handle["features"] = np.zeros((2, 32, 40, 3), dtype=np.float16)
        handle.create_dataset("id", data=["x1", "x2"], dtype=h5py.string_dtype())
    _raw_h5(w / "intids.h5", "features", config=True, features=np.zeros((2, 32, 40, 3), np.float16), id=np.arange(2))
    _raw_h5(w / "f3d.h5", "features", config=True, features=np.zeros((2, 32, 40), np.float16), id=["x1", "x2"])
    _raw_h5(w / "strscores.h5", "scores", scores=[["x", "y"]], id=["c1"])
    _raw_h5(w / "intidscores.h5", "scores", scores=np.array([[0.5, 0.5]], np.float32), id=np.arange(1))
    with _raw_h5(w / "scoresgroup.h5", "scores", id=["c1"], keep_open=True) as handle:
        handle.create_group("scores")
    (w / "sizes" / "size_text.json").write_text('{"file": "m.tflite", "bytes": "big", "parameter_bytes": "big"}\n')
    return paths


def _raw_h5(path: Path, kind: str, *, config: bool = False, keep_open: bool = False, **datasets):
    """An HDF5 file written as a user's h5py script would: kind and schema attributes, then ``datasets`` as given
    (lists of str as UTF-8 strings); features ``config`` of helpers.make_features when asked."""
    handle = h5py.File(path, "w")
    handle.attrs.update({"asctool_kind": kind, "schema_version": 1})
    if kind == "scores":
        handle.attrs["classes"] = json.dumps(["a", "b"])
    if config:
        handle.attrs["config"] = json.dumps(CONFIG, sort_keys=True)
    for name, data in datasets.items():
        if isinstance(data, list) and isinstance(np.asarray(data).flat[0], str):
            handle.create_dataset(name, data=data, dtype=h5py.string_dtype())
        else:
            handle[name] = data
    if keep_open:
        return handle
    handle.close()
    return path


def _rezip(source: Path, target: Path, *, replace=None, keep=None) -> Path:
    """A copy of the zip archive ``source``: entries replaced (None: dropped), or only ``keep``."""
    replace = replace or {}
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            if keep is not None and name not in keep:
                continue
            if name in replace:
                if replace[name] is not None:
                    new.writestr(name, replace[name])
                continue
            new.writestr(name, old.read(name))
    return target


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Bad:
    """One bad input: ``asctool STAGE ARGS...`` must fail with ``code`` and one line holding ``names``.

    ``args`` and ``names`` may hold ``{w}`` (the shared inputs), ``{d}`` (this
    case's folder: outputs, working directory), ``{model}`` (a trained
    ``model.keras``), ``{ds}`` (the synthesized TAU dataset), ``{good}`` (a good
    clip). ``setup(d, paths)`` makes what only this case needs, in ``d``.
    """

    stage: str
    name: str
    args: tuple[str, ...]
    code: int = 1
    names: tuple[str, ...] = ()
    setup: Callable[[Path, dict], None] | None = None
    sub: bool = False  # also run through the real console script
    logs: bool = False  # the error is found mid-run: asctool's log records may precede it

    @property
    def id(self) -> str:
        return f"{self.stage}-{self.name}"


def _openl3_weights(d: Path, paths: dict) -> None:
    """Setup: an OpenL3 weight file in the official layout (random values; tests/test_embeddings_openl3.py)."""
    from test_embeddings_openl3 import write_weight_file

    write_weight_file(d / "openl3_audio_mel256_music-v0_4_0.h5")


def _existing(*names: str, content: bytes = b"keep me\n") -> Callable[[Path, dict], None]:
    """Setup: files that already exist where an output goes (they must stay byte-identical)."""
    def make(d: Path, paths: dict) -> None:
        for name in names:
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            (d / name).write_bytes(content)
    return make


def _file_at(name: str) -> Callable[[Path, dict], None]:
    """Setup: a plain file where a folder is expected."""
    return _existing(name, content=b"a file, not a folder\n")


def _tau_layout(*, train=None, evaluate=None, test=None, meta=None) -> Callable[[Path, dict], None]:
    """Setup: ``d/ds``, a copy of the demo dataset's CSV files (no audio), some replaced: by text or bytes, or by
    what a function of the copied file returns."""
    def make(d: Path, paths: dict) -> None:
        root = d / "ds"
        (root / "evaluation_setup").mkdir(parents=True)
        files = {"meta.csv": meta, **{f"evaluation_setup/fold1_{split}.csv": text
                                      for split, text in (("train", train), ("evaluate", evaluate), ("test", test))}}
        for name, text in files.items():
            shutil.copy(paths["ds"] / name, root / name)
            if text is not None:
                content = text(root / name) if callable(text) else text
                (root / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return make


def _edit_line(lineno: int, old: str, new: str):
    """A text transform: replace ``old`` by ``new`` in line ``lineno`` (1-based) of the file."""
    def edit(path: Path) -> str:
        lines = path.read_text().splitlines(keepends=True)
        assert old in lines[lineno - 1], (path, lines[lineno - 1])
        lines[lineno - 1] = lines[lineno - 1].replace(old, new)
        return "".join(lines)
    return edit


def _valid_pair(*, labelled: bool = True) -> Callable[[Path, dict], None]:
    """Setup: ``d/vf.h5`` and ``d/vc.h5``, validation scores of the two fusion stages (labelled or not)."""
    def make(d: Path, paths: dict) -> None:
        write_probs(d / "vf.h5", ["v1", "v2"], P_FINE[:2], FINE, scenes=["a1", "b2"] if labelled else None)
        write_probs(d / "vc.h5", ["v1", "v2"], P_COARSE[:2], COARSE)
    return make


def _ro_folder(name: str) -> Callable[[Path, dict], None]:
    """Setup: ``d/NAME``, a read-only file system (root ignores file modes)."""
    def make(d: Path, paths: dict) -> None:
        folder = d / name
        folder.mkdir()
        if os.geteuid() != 0:
            folder.chmod(0o555)
            return
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip("root here cannot mount a read-only tmpfs")
        _MOUNTS.append(folder)
    return make


_MOUNTS: list[Path] = []

M = "{w}/good.tsv"  # a good manifest
F = "{w}/feats.h5"  # good features (the trained model's front end)
S = "{w}/scores.h5"  # good scores, labelled
AUG = ("--out-dir", "{d}/a/b/aug", "--out-manifest", "{d}/a/b/aug.tsv")
FEAT_OUT = ("--out", "{d}/f.h5")
EMB_OPENL3 = ("--extractor", "openl3", "--weights", "{d}/openl3_audio_mel256_music-v0_4_0.h5", "--out", "{d}/e.h5")
OUT_S = ("--out", "{d}/s.h5")
RUN = ("--model", "fcnn", "--out-dir", "{d}/run")
SPLIT = ("--out-train", "{d}/t.tsv", "--out-valid", "{d}/v.tsv")
PREP = ("--dataset-root", "{d}/ds", "--out-dir", "{d}/m", "--no-check-audio")
QUANT = ("--out", "{d}/q/m.tflite")
FUSE = ("--fine", "{w}/fine.h5", "--coarse", "{w}/coarse.h5", "--hierarchy", "{w}/hier.tsv", "--out", "{d}/f.h5")

CASES: list[Bad] = [
    # ---------------------------------------------------------------- prepare
    Bad("prepare", "root-missing", ("--dataset-root", "{d}/nowhere", "--out-dir", "{d}/m"),
        names=("{d}/nowhere",), sub=True),
    Bad("prepare", "root-is-file", ("--dataset-root", "{w}/good.tsv", "--out-dir", "{d}/m"),
        code=2, names=("{w}/good.tsv",)),
    Bad("prepare", "out-dir-is-file", PREP,
        code=2, names=("{d}/m",), setup=lambda d, p: (_tau_layout()(d, p), _file_at("m")(d, p))),
    Bad("prepare", "setup-traversal", ("--dataset-root", "{d}/ds", "--out-dir", "{d}/m", "--setup", "../fold1"),
        names=("--setup", "../fold1"), setup=_tau_layout()),
    Bad("prepare", "setup-missing", ("--dataset-root", "{d}/ds", "--out-dir", "{d}/m", "--setup", "fold9"),
        names=("fold9_train.csv",), setup=_tau_layout()),
    Bad("prepare", "typo-label", PREP,
        names=("{d}/ds/evaluation_setup/fold1_train.csv", "line 3", "airprot"),
        setup=_tau_layout(train=_edit_line(3, "airport", "airprot"))),
    Bad("prepare", "missing-column", PREP,
        names=("{d}/ds/evaluation_setup/fold1_train.csv", "scene_label"),
        setup=_tau_layout(train=_edit_line(1, "scene_label", "label"))),
    Bad("prepare", "stray-quote", PREP,
        names=("{d}/ds/evaluation_setup/fold1_evaluate.csv:4", "quote"),
        setup=_tau_layout(evaluate=_edit_line(4, "audio/", '"audio/'))),
    Bad("prepare", "traversal-in-split", PREP,
        names=("{d}/ds/evaluation_setup/fold1_train.csv:2", ".."),
        setup=_tau_layout(train=_edit_line(2, "audio/airport", "audio/..airport"))),
    Bad("prepare", "missing-audio", ("--dataset-root", "{d}/ds", "--out-dir", "{d}/m"),
        names=("{d}/ds",), setup=_tau_layout()),
    Bad("prepare", "classes-missing", (*PREP, "--classes", "{d}/none.txt"),
        names=("{d}/none.txt",), setup=_tau_layout()),
    Bad("prepare", "existing-manifest", PREP,
        names=("{d}/m/fold1_train.tsv", "--force"),
        setup=lambda d, p: (_tau_layout()(d, p), _existing("m/fold1_train.tsv")(d, p))),
    Bad("prepare", "existing-info", PREP,
        names=("{d}/m/fold1_info.json", "--force"),
        setup=lambda d, p: (_tau_layout()(d, p), _existing("m/fold1_info.json")(d, p))),
    Bad("prepare", "out-dir-in-sys", ("--dataset-root", "{d}/ds", "--out-dir", "/sys/asctool-robustness",
                                      "--no-check-audio"), names=("/sys",), setup=_tau_layout()),
    Bad("prepare", "meta-extra-column", PREP,
        names=("{d}/ds/meta.csv", "colour"),
        setup=_tau_layout(meta=_edit_line(1, "source_label", "source_label\tcolour"))),
    Bad("prepare", "split-not-utf8", PREP,
        names=("{d}/ds/evaluation_setup/fold1_test.csv",),
        setup=_tau_layout(test=lambda path: b"filename\n\xe9t\xe9.wav\n")),
    Bad("prepare", "classes-not-covering", (*PREP, "--classes", "{d}/c.txt"),
        names=("{d}/ds/", "line 2"), setup=lambda d, p: (_tau_layout()(d, p), (d / "c.txt").write_text("bus\npark\n"))),
    # ---------------------------------------------------------------- synth
    Bad("synth", "negative-seed", ("--out-dir", "{d}/s", "--seed", "-1"), code=2, names=("--seed",), sub=True),
    Bad("synth", "channels-3", ("--out-dir", "{d}/s", "--channels", "3"), code=2, names=("--channels",)),
    Bad("synth", "sr-too-low", ("--out-dir", "{d}/s", "--sr", "100"), code=2, names=("--sr",)),
    Bad("synth", "one-clip-per-class", ("--out-dir", "{d}/s", "--clips-per-class", "1"),
        code=2, names=("--clips-per-class",)),
    Bad("synth", "out-dir-not-empty", ("--out-dir", "{d}/s", "--clips-per-class", "2"),
        names=("{d}/s", "--force"), setup=_existing("s/mine.txt")),
    Bad("synth", "out-dir-under-file", ("--out-dir", "{d}/f.txt/s"), names=("{d}/f.txt",), setup=_file_at("f.txt")),
    Bad("synth", "unknown-device", ("--out-dir", "{d}/s", "--devices", "a,zz"), names=("zz",)),
    Bad("synth", "no-device", ("--out-dir", "{d}/s", "--devices", ","), names=("--devices",)),
    Bad("synth", "nj-0", ("--out-dir", "{d}/s", "--nj", "0"), code=2, names=("--nj",)),
    Bad("synth", "out-dir-in-proc", ("--out-dir", "/proc/asctool-robustness"), names=("/proc",)),
    Bad("synth", "no-device-at-all", ("--out-dir", "{d}/s", "--devices", ""), names=("--devices",)),
    Bad("synth", "simulated-without-a", ("--out-dir", "{d}/s", "--devices", "b,s1"), names=("s1",)),
    Bad("synth", "duration-half-second", ("--out-dir", "{d}/s", "--duration", "0.5"), code=2, names=("--duration",)),
    # ---------------------------------------------------------------- augment
    Bad("augment", "unknown-method", ("chorus", "--manifest", M, *AUG), code=2, names=("chorus",)),
    Bad("augment", "id-traversal", ("noise", "--manifest", "{w}/escape.tsv", *AUG),
        names=("{w}/escape.tsv:3", "../../ESCAPED"), sub=True),
    Bad("augment", "id-absolute", ("noise", "--manifest", "{d}/abs.tsv", *AUG),
        names=("{d}/abs.tsv:2", "absolute"),
        setup=lambda d, p: tsv(d / "abs.tsv", [clip_row(str(d / "esc" / "ESCAPED"), p["good"])])),
    Bad("augment", "id-leading-dash", ("noise", "--manifest", "{w}/dash_id.tsv", *AUG),
        names=("{w}/dash_id.tsv:3", "'-rf'")),
    Bad("augment", "id-control-char", ("noise", "--manifest", "{w}/ctrl_id.tsv", *AUG),
        names=("{w}/ctrl_id.tsv:2", "control")),
    Bad("augment", "duplicate-id", ("noise", "--manifest", "{w}/dup.tsv", *AUG), names=("{w}/dup.tsv:3", "duplicate")),
    Bad("augment", "typo-label", ("noise", "--manifest", "{w}/typo.tsv", *AUG), names=("{w}/typo.tsv:3", "airprot")),
    Bad("augment", "stray-quote", ("noise", "--manifest", "{w}/quote.tsv", *AUG), names=("{w}/quote.tsv:3", "quote")),
    Bad("augment", "empty-path", ("noise", "--manifest", "{w}/nopath.tsv", *AUG), names=("{w}/nopath.tsv:3", "path")),
    Bad("augment", "missing-column", ("noise", "--manifest", "{w}/nocol.tsv", *AUG), names=("{w}/nocol.tsv", "path")),
    Bad("augment", "repeated-column", ("noise", "--manifest", "{w}/dupcol.tsv", *AUG),
        names=("{w}/dupcol.tsv", "city named twice")),
    Bad("augment", "too-many-fields", ("noise", "--manifest", "{w}/toomany.tsv", *AUG), names=("{w}/toomany.tsv:3",)),
    Bad("augment", "not-utf8", ("noise", "--manifest", "{w}/latin1.tsv", *AUG), names=("{w}/latin1.tsv",)),
    Bad("augment", "manifest-missing", ("noise", "--manifest", "{d}/none.tsv", *AUG), names=("{d}/none.tsv",)),
    Bad("augment", "unreadable-audio", ("noise", "--manifest", "{w}/audio_text.tsv", *AUG),
        names=("{w}/audio/text.wav",), logs=True),
    Bad("augment", "truncated-audio", ("noise", "--manifest", "{w}/audio_trunc.tsv", *AUG),
        names=("{w}/audio/trunc.wav",), logs=True),
    Bad("augment", "missing-audio", ("noise", "--manifest", "{w}/audio_missing.tsv", *AUG),
        names=("{w}/audio/missing.wav", "{w}/audio_missing.tsv")),
    Bad("augment", "mix-one-clip", ("mix", "--manifest", "{w}/one.tsv", *AUG), names=("{w}/one.tsv",), logs=True),
    Bad("augment", "param-unknown", ("noise", "--manifest", M, *AUG, "--param", "loudness=2"), names=("loudness",)),
    Bad("augment", "param-not-number", ("noise", "--manifest", M, *AUG, "--param", "noise_std=lots"),
        names=("noise_std",)),
    Bad("augment", "param-no-equals", ("noise", "--manifest", M, *AUG, "--param", "noise_std"), names=("noise_std",)),
    Bad("augment", "param-nan", ("noise", "--manifest", M, *AUG, "--param", "noise_std=nan"), names=("noise_std",)),
    Bad("augment", "param-negative", ("noise", "--manifest", M, *AUG, "--param", "noise_std=-1"), names=("noise_std",)),
    Bad("augment", "param-min-over-max", ("speed", "--manifest", M, *AUG, "--param", "rate_min=3"),
        names=("rate_min",)),
    Bad("augment", "param-int", ("pitch", "--manifest", M, *AUG, "--param", "bins_per_octave=1.5"),
        names=("bins_per_octave",)),
    Bad("augment", "rir-dir-for-noise", ("noise", "--manifest", M, *AUG, "--rir-dir", "{d}"), names=("--rir-dir",)),
    Bad("augment", "existing-out-manifest", ("noise", "--manifest", M, *AUG),
        names=("{d}/a/b/aug.tsv", "--force"), setup=_existing("a/b/aug.tsv")),
    Bad("augment", "out-dir-foreign-files", ("noise", "--manifest", M, *AUG),
        names=("{d}/a/b/aug",), setup=_existing("a/b/aug/mine.txt")),
    Bad("augment", "out-manifest-is-input", ("noise", "--manifest", "{d}/m.tsv", "--out-dir", "{d}/aug",
                                             "--out-manifest", "{d}/m.tsv", "--force"),
        names=("{d}/m.tsv",), setup=lambda d, p: shutil.copy(p["w"] / "good.tsv", d / "m.tsv")),
    Bad("augment", "exclude-missing", ("noise", "--manifest", M, *AUG, "--exclude-locations", "{d}/eval.tsv"),
        names=("{d}/eval.tsv",)),
    Bad("augment", "negative-seed", ("noise", "--manifest", M, *AUG, "--seed", "-1"), code=2, names=("--seed",)),
    Bad("augment", "bad-format", ("noise", "--manifest", M, *AUG, "--format", "mp3"), code=2, names=("--format",)),
    Bad("augment", "out-dir-in-proc", ("noise", "--manifest", M, "--out-dir", "/proc/asctool-aug", "--out-manifest",
                                       "{d}/a.tsv"), names=("/proc",)),
    Bad("augment", "no-source-device", ("noise", "--manifest", M, *AUG, "--devices", "zz"),
        names=("{w}/good.tsv", "zz")),
    Bad("augment", "per-device-for-noise", ("noise", "--manifest", M, *AUG, "--per-device"), names=("--per-device",)),
    Bad("augment", "two-reference-devices", ("spectrum-correction", "--manifest", M, *AUG, "--devices", "a,b"),
        names=("--devices",)),
    Bad("augment", "reverb-without-rirs", ("reverb", "--manifest", M, *AUG), names=("--rir-dir",)),
    Bad("augment", "reverb-empty-rir-dir", ("reverb", "--manifest", M, *AUG, "--rir-dir", "{d}/rirs"),
        names=("{d}/rirs",), setup=lambda d, p: (d / "rirs").mkdir()),
    Bad("augment", "exclude-not-manifest", ("noise", "--manifest", M, *AUG, "--exclude-locations", "{w}/not.json"),
        names=("{w}/not.json",)),
    Bad("augment", "no-parallel-recordings", ("spectrum-correction", "--manifest", M, *AUG), names=("{w}/good.tsv",)),
    Bad("augment", "unreadable-impulse-response", ("reverb", "--manifest", M, *AUG, "--rir-dir", "{d}/rirs"),
        names=("{d}/rirs/x.wav",), setup=_existing("rirs/x.wav", content=b"hi\n")),
    Bad("augment", "audio-is-folder", ("noise", "--manifest", "{w}/audio_folder.tsv", *AUG), names=("{w}/audio",)),
    # ---------------------------------------------------------------- embed, download (docs/embed.md)
    Bad("embed", "unknown-extractor", ("--manifest", M, "--extractor", "vggish", "--out", "{d}/e.h5"),
        names=("unknown extractor 'vggish'",), sub=True),
    Bad("embed", "openl3-without-weights", ("--manifest", M, "--extractor", "openl3", "--out", "{d}/e.h5"),
        names=("--weights", "asctool download openl3")),
    Bad("embed", "openl3-sample-rate", ("--manifest", M, "--extractor", "openl3", "--sample-rate", "44100",
                                        "--out", "{d}/e.h5"), names=("--sample-rate 44100",)),
    Bad("embed", "weights-not-openl3", ("--manifest", M, "--extractor", "openl3", "--weights", F, "--out", "{d}/e.h5"),
        names=("{w}/feats.h5",)),
    Bad("embed", "model-front-end-invalid", ("--manifest", M, "--extractor", "keras", "--model", "{model}", "--layer",
                                             "features_out", "--out", "{d}/e.h5"),
        names=("{model} (the front end in its asctool metadata)",)),
    Bad("embed", "manifest-missing", ("--manifest", "{d}/none.tsv", *EMB_OPENL3), names=("{d}/none.tsv",),
        setup=_openl3_weights),
    Bad("embed", "existing-output", ("--manifest", M, *EMB_OPENL3), names=("{d}/e.h5", "--force"),
        setup=lambda d, p: (_openl3_weights(d, p), _existing("e.h5")(d, p))),
    Bad("download", "existing-output", ("openl3", "--out-dir", "{d}/w"),
        names=("{d}/w/openl3_audio_mel256_music-v0_4_0.h5.gz", "--force"),
        setup=_existing("w/openl3_audio_mel256_music-v0_4_0.h5.gz"), sub=True),
    # ---------------------------------------------------------------- tag (docs/tag.md), pseudo-label (docs/adversarial.md)
    Bad("tag", "unknown-tagger", ("--manifest", M, "--tagger", "nosuch", "--out", "{d}/t.h5"),
        names=("unknown tagger 'nosuch'",), sub=True),
    Bad("tag", "run-not-a-tagger", ("--manifest", M, "--tagger", "asctool", "--run", "{d}", "--out", "{d}/t.h5"),
        names=("{d}/model.keras", "--task tagging")),
    Bad("pseudo-label", "not-tri-training", ("--model", "{d}", "--features", F, "--out", "{d}/p.h5"),
        names=("{d}", "no labellers.keras", "--tri-training"), sub=True),
    # ---------------------------------------------------------------- featurize
    Bad("featurize", "manifest-missing", ("--manifest", "{d}/none.tsv", *FEAT_OUT), names=("{d}/none.tsv",), sub=True),
    Bad("featurize", "manifest-empty", ("--manifest", "{w}/empty.tsv", *FEAT_OUT), names=("{w}/empty.tsv",)),
    Bad("featurize", "manifest-no-rows", ("--manifest", "{w}/header_only.tsv", *FEAT_OUT),
        names=("{w}/header_only.tsv",)),
    Bad("featurize", "manifest-is-features", ("--manifest", F, *FEAT_OUT), names=("{w}/feats.h5",)),
    Bad("featurize", "id-traversal", ("--manifest", "{w}/escape.tsv", *FEAT_OUT), names=("{w}/escape.tsv:3",)),
    Bad("featurize", "typo-label", ("--manifest", "{w}/typo.tsv", *FEAT_OUT), names=("{w}/typo.tsv:3", "airprot")),
    Bad("featurize", "wrong-sample-rate", ("--manifest", "{w}/audio_sr48k.tsv", *FEAT_OUT),
        names=("{w}/audio/sr48k.wav", "48000")),
    Bad("featurize", "mono-for-stereo", ("--manifest", "{w}/audio_mono48k.tsv", "--preset", "1b", *FEAT_OUT),
        names=("{w}/audio/mono48k.wav", "channel")),
    Bad("featurize", "too-short", ("--manifest", "{w}/audio_short.tsv", *FEAT_OUT), names=("{w}/audio/short.wav",)),
    Bad("featurize", "nan-audio", ("--manifest", "{w}/audio_nan.tsv", *FEAT_OUT), names=("{w}/audio/nan.wav", "NaN")),
    Bad("featurize", "truncated-audio", ("--manifest", "{w}/audio_trunc.tsv", *FEAT_OUT),
        names=("{w}/audio/trunc.wav",)),
    Bad("featurize", "empty-audio", ("--manifest", "{w}/audio_empty.tsv", *FEAT_OUT), names=("{w}/audio/empty.wav",)),
    Bad("featurize", "text-audio", ("--manifest", "{w}/audio_text.tsv", "--nj", "2", *FEAT_OUT),
        names=("{w}/audio/text.wav",)),
    Bad("featurize", "bad-yaml", ("--manifest", M, "--config", "{w}/bad_yaml.yaml", *FEAT_OUT),
        names=("{w}/bad_yaml.yaml", "line")),
    Bad("featurize", "unknown-key", ("--manifest", M, "--config", "{w}/unknown_key.yaml", *FEAT_OUT),
        names=("{w}/unknown_key.yaml", "n_mel")),
    Bad("featurize", "empty-mel-filters", ("--manifest", M, "--config", "{w}/empty_filters.yaml", *FEAT_OUT),
        names=("{w}/empty_filters.yaml", "n_mels", "n_fft")),
    Bad("featurize", "yaml-list", ("--manifest", M, "--config", "{w}/list.yaml", *FEAT_OUT), names=("{w}/list.yaml",)),
    Bad("featurize", "yaml-bad-value", ("--manifest", M, "--config", "{w}/bad_value.yaml", *FEAT_OUT),
        names=("{w}/bad_value.yaml", "n_mels")),
    Bad("featurize", "yaml-bad-base", ("--manifest", M, "--config", "{w}/bad_base.yaml", *FEAT_OUT),
        names=("{w}/bad_base.yaml", "base")),
    Bad("featurize", "config-and-preset", ("--manifest", M, "--config", "{w}/unknown_key.yaml", "--preset", "1a",
                                           *FEAT_OUT), names=("{w}/unknown_key.yaml",)),
    Bad("featurize", "unknown-preset", ("--manifest", M, "--preset", "2c", *FEAT_OUT), code=2, names=("--preset",)),
    Bad("featurize", "shard-over", ("--manifest", M, "--shard", "3/2", *FEAT_OUT), code=2, names=("--shard",)),
    Bad("featurize", "shard-text", ("--manifest", M, "--shard", "half", *FEAT_OUT), code=2, names=("--shard",)),
    Bad("featurize", "no-manifest", FEAT_OUT, code=2, names=("--manifest",)),
    Bad("featurize", "existing-out", ("--manifest", M, *FEAT_OUT),
        names=("{d}/f.h5", "--force"), setup=_existing("f.h5")),
    Bad("featurize", "out-under-file", ("--manifest", M, "--out", "{d}/some.tsv/x.h5"),
        names=("{d}/some.tsv",), setup=_file_at("some.tsv"), sub=True),
    Bad("featurize", "out-is-folder", ("--manifest", M, "--out", "{d}/folder"),
        code=2, names=("{d}/folder",), setup=lambda d, p: (d / "folder").mkdir()),
    Bad("featurize", "out-read-only", ("--manifest", M, "--out", "{d}/RO/f.h5"),
        names=("{d}/RO",), setup=_ro_folder("RO")),
    Bad("featurize", "out-is-manifest", ("--manifest", "{d}/m.tsv", "--out", "{d}/m.tsv", "--force"),
        names=("{d}/m.tsv",), setup=lambda d, p: shutil.copy(p["w"] / "good.tsv", d / "m.tsv")),
    Bad("featurize", "classes-empty", ("--manifest", M, "--classes", "{w}/classes_empty.txt", *FEAT_OUT),
        names=("{w}/classes_empty.txt",)),
    Bad("featurize", "classes-twice", ("--manifest", M, "--classes", "{w}/classes_dup.txt", *FEAT_OUT),
        names=("{w}/classes_dup.txt", "line 3")),
    Bad("featurize", "combine-missing-shard", ("--combine", "{w}/comb/s1.h5", "--combine", "{w}/comb/s2.h5", *FEAT_OUT),
        names=("{w}/comb/s2.h5",)),
    Bad("featurize", "combine-text-shard", ("--combine", F, "--combine", "{w}/text.h5", *FEAT_OUT),
        names=("{w}/text.h5",)),
    Bad("featurize", "combine-mismatched", ("--combine", F, "--combine", "{w}/feats_other.h5", *FEAT_OUT),
        names=("{w}/feats_other.h5",)),
    Bad("featurize", "combine-duplicate-ids", ("--combine", F, "--combine", "{w}/feats_overlap.h5", *FEAT_OUT),
        names=("{d}/f.h5", "duplicate")),
    Bad("featurize", "combine-scores", ("--combine", S, *FEAT_OUT), names=("{w}/scores.h5", "scores")),
    Bad("featurize", "combine-with-shard", ("--combine", F, "--shard", "1/2", *FEAT_OUT), names=("--shard",)),
    Bad("featurize", "audio-is-folder", ("--manifest", "{w}/audio_folder.tsv", *FEAT_OUT), names=("{w}/audio",)),
    Bad("featurize", "out-in-proc", ("--manifest", M, "--out", "/proc/asctool-robustness.h5"), names=("/proc",)),
    Bad("featurize", "config-is-folder", ("--manifest", M, "--config", "{w}/comb", *FEAT_OUT),
        code=2, names=("{w}/comb",)),
    # ---------------------------------------------------------------- train
    Bad("train", "scores-as-features", ("--train", S, *RUN), names=("{w}/scores.h5", "scores")),
    Bad("train", "text-as-features", ("--train", "{w}/text.h5", *RUN), names=("{w}/text.h5",)),
    Bad("train", "truncated-hdf5", ("--train", "{w}/trunc.h5", *RUN), names=("{w}/trunc.h5",)),
    Bad("train", "plain-hdf5", ("--train", "{w}/plain.h5", *RUN), names=("{w}/plain.h5", "no asctool artifact")),
    Bad("train", "no-features-dataset", ("--train", "{w}/nofeat.h5", *RUN), names=("{w}/nofeat.h5",)),
    Bad("train", "features-missing", ("--train", "{d}/none.h5", *RUN), names=("{d}/none.h5",), sub=True),
    Bad("train", "unknown-model", ("--train", F, "--model", "resnet9000", "--out-dir", "{d}/run"),
        names=("resnet9000",)),
    Bad("train", "unknown-option", ("--train", F, *RUN, "--option", "colour=3"), names=("colour",)),
    Bad("train", "option-no-equals", ("--train", F, *RUN, "--option", "base_filters"), names=("base_filters",)),
    Bad("train", "option-not-number", ("--train", F, *RUN, "--option", "filters=many"), names=("filters", "many")),
    Bad("train", "option-out-of-range", ("--train", F, *RUN, "--option", "dropout=1.5"), names=("dropout", "1.5")),
    Bad("train", "negative-seed", ("--train", F, *RUN, "--seed", "-1"), code=2, names=("--seed",)),
    Bad("train", "valid-other-frontend", ("--train", F, "--valid", "{w}/feats_other.h5", *RUN),
        names=("{w}/feats_other.h5",)),
    Bad("train", "valid-other-shape", ("--train", F, "--valid", "{w}/feats_shape.h5", *RUN),
        names=("{w}/feats_shape.h5",)),
    Bad("train", "mixed-frontends", ("--train", F, "--train", "{w}/feats_other.h5", *RUN),
        names=("{w}/feats_other.h5",)),
    Bad("train", "nan-features", ("--train", "{w}/feats_nan.h5", *RUN), names=("{w}/feats_nan.h5", "NaN")),
    Bad("train", "inf-features", ("--train", "{w}/feats_inf.h5", *RUN), names=("{w}/feats_inf.h5", "row 3")),
    Bad("train", "typo-label", ("--train", "{w}/feats_typo.h5", *RUN), names=("{w}/feats_typo.h5", "airprot")),
    Bad("train", "one-class", ("--train", "{w}/feats_one_class.h5", *RUN), names=("{w}/feats_one_class.h5",)),
    Bad("train", "no-clips", ("--train", "{w}/feats_empty.h5", *RUN), names=("{w}/feats_empty.h5",)),
    Bad("train", "shard-missing", ("--train", "{w}/comb/all.h5", *RUN), names=("{w}/comb/all.h5", "s2.h5")),
    Bad("train", "labels-missing", ("--train", F, *RUN, "--labels", "{d}/map.tsv"), names=("{d}/map.tsv",)),
    Bad("train", "labels-not-covering", ("--train", F, *RUN, "--labels", "{w}/labels_map.tsv"),
        names=("{w}/feats.h5",)),
    Bad("train", "unknown-augment", ("--train", F, *RUN, "--augment", "wobble"), names=("wobble",)),
    Bad("train", "valid-and-split", ("--train", F, *RUN, "--valid", F, "--valid-split", "0.2"),
        names=("--valid-split",)),
    Bad("train", "valid-split-too-big", ("--train", F, *RUN, "--valid-split", "0.95"),
        code=2, names=("--valid-split",)),
    Bad("train", "valid-same-clips", ("--train", F, "--valid", "{w}/feats_overlap.h5", *RUN),
        names=("{w}/feats_overlap.h5",)),
    Bad("train", "resume-config-not-json", ("--train", F, *RUN, "--resume"),
        names=("{d}/run/config.json",), setup=_existing("run/config.json", content=b"{not json")),
    Bad("train", "resume-config-a-list", ("--train", F, *RUN, "--resume"),
        names=("{d}/run/config.json",), setup=_existing("run/config.json", content=b"[]")),
    Bad("train", "out-dir-in-proc", ("--train", F, "--model", "fcnn", "--out-dir", "/proc/asctool-robustness"),
        names=("/proc",)),
    Bad("train", "resume-nothing", ("--train", F, *RUN, "--resume"), names=("{d}/run",)),
    Bad("train", "run-exists", ("--train", F, *RUN), names=("{d}/run", "--force"), setup=_existing("run/config.json")),
    Bad("train", "out-dir-is-file", ("--train", F, *RUN), code=2, names=("{d}/run",), setup=_file_at("run")),
    Bad("train", "out-dir-under-file", ("--train", F, "--model", "fcnn", "--out-dir", "{d}/f.txt/run"),
        names=("{d}/f.txt",), setup=_file_at("f.txt")),
    Bad("train", "classes-not-covering", ("--train", F, *RUN, "--classes", "{d}/c.txt"),
        names=("{w}/feats.h5",), setup=lambda d, p: (d / "c.txt").write_text("airport\nbus\n")),
    Bad("train", "crop-too-long", ("--train", F, *RUN, "--crop", "1000"), names=("--crop",)),
    Bad("train", "width-0", ("--train", F, *RUN, "--width", "0"), code=2, names=("--width",)),
    Bad("train", "width-as-option", ("--train", F, *RUN, "--option", "width=2"), names=("--width",)),
    Bad("train", "features-folder", ("--train", "{w}/comb", *RUN), code=2, names=("{w}/comb",)),
    Bad("train", "ids-not-strings", ("--train", "{w}/intids.h5", *RUN), names=("{w}/intids.h5", "'id'")),
    Bad("train", "features-3d", ("--train", "{w}/f3d.h5", *RUN), names=("{w}/f3d.h5", "4-D")),
    Bad("train", "no-config", ("--train", "{w}/noconfig.h5", *RUN), names=("{w}/noconfig.h5", "config")),
    # ---------------------------------------------------------------- backend
    Bad("backend", "model-missing", ("svm", "--model", "{d}/none.keras", "--train", F, "--valid", F, "--out",
                                     "{d}/b.h5"), names=("{d}/none.keras",), sub=True),
    Bad("backend", "scores-as-train", ("svm", "--model", "{model}", "--train", S, "--valid", F, "--out", "{d}/b.h5"),
        names=("{w}/scores.h5",)),
    Bad("backend", "kernel-linear", ("svm", "--model", "{model}", "--train", F, "--valid", F, "--kernel", "linear",
                                     "--out", "{d}/b.h5"), code=2, names=("--kernel",)),
    # ---------------------------------------------------------------- predict
    Bad("predict", "model-text", ("--model", "{w}/textmodel/model.keras", "--features", F, *OUT_S),
        names=("{w}/textmodel/model.keras", "Keras"), sub=True),
    Bad("predict", "model-missing", ("--model", "{d}/none.keras", "--features", F, *OUT_S), names=("{d}/none.keras",)),
    Bad("predict", "model-wrong-suffix", ("--model", "{w}/model.h5", "--features", F, *OUT_S), names=("{w}/model.h5",)),
    Bad("predict", "tflite-corrupted", ("--model", "{w}/tfl/m.tflite", "--features", F, *OUT_S),
        names=("{w}/tfl/m.tflite", "{w}/tfl/size.json")),
    Bad("predict", "tflite-garbage", ("--model", "{w}/garbage/m.tflite", "--features", F, *OUT_S),
        names=("{w}/garbage/m.tflite",)),
    Bad("predict", "scores-as-features", ("--model", "{model}", "--features", S, *OUT_S), names=("{w}/scores.h5",)),
    Bad("predict", "other-frontend", ("--model", "{model}", "--features", "{w}/feats_other.h5", *OUT_S),
        names=("{w}/feats_other.h5", "preset")),
    Bad("predict", "other-shape", ("--model", "{model}", "--features", "{w}/feats_shape.h5", *OUT_S),
        names=("{w}/feats_shape.h5",)),
    Bad("predict", "nan-features", ("--model", "{model}", "--features", "{w}/feats_nan.h5", *OUT_S),
        names=("{w}/feats_nan.h5", "NaN"), logs=True),
    Bad("predict", "shard-missing", ("--model", "{model}", "--features", "{w}/comb/all.h5", *OUT_S),
        names=("{w}/comb/all.h5", "s2.h5")),
    Bad("predict", "no-clips", ("--model", "{model}", "--features", "{w}/feats_empty.h5", *OUT_S),
        names=("{w}/feats_empty.h5",)),
    Bad("predict", "existing-out", ("--model", "{model}", "--features", F, *OUT_S),
        names=("{d}/s.h5", "--force"), setup=_existing("s.h5")),
    Bad("predict", "out-is-features", ("--model", "{model}", "--features", "{d}/f.h5", "--out", "{d}/f.h5", "--force"),
        names=("{d}/f.h5",), setup=lambda d, p: shutil.copy(p["w"] / "feats.h5", d / "f.h5")),
    Bad("predict", "batch-size-0", ("--model", "{model}", "--features", F, *OUT_S, "--batch-size", "0"),
        code=2, names=("--batch-size",)),
    Bad("predict", "zip-not-keras", ("--model", "{w}/zipmodel/model.keras", "--features", F, *OUT_S),
        names=("{w}/zipmodel/model.keras",)),
    Bad("predict", "metadata-not-json", ("--model", "{w}/badmeta/model.keras", "--features", F, *OUT_S),
        names=("{w}/badmeta/model.keras", "asctool.json")),
    Bad("predict", "metadata-classes-not-list", ("--model", "{w}/meta_classes/model.keras", "--features", F, *OUT_S),
        names=("{w}/meta_classes/model.keras", "classes")),
    Bad("predict", "metadata-frontend-not-object",
        ("--model", "{w}/meta_frontend/model.keras", "--features", F, *OUT_S),
        names=("{w}/meta_frontend/model.keras", "frontend_config")),
    Bad("predict", "metadata-shape-text", ("--model", "{w}/meta_shape/model.keras", "--features", F, *OUT_S),
        names=("{w}/meta_shape/model.keras", "input_shape")),
    Bad("predict", "weights-truncated", ("--model", "{w}/badweights/model.keras", "--features", F, *OUT_S),
        names=("{w}/badweights/model.keras",)),
    Bad("predict", "no-metadata", ("--model", "{w}/nometa/model.keras", "--features", F, *OUT_S),
        names=("{w}/nometa/model.keras",)),
    Bad("predict", "size-json-not-json", ("--model", "{w}/tfl_badjson/m.tflite", "--features", F, *OUT_S),
        names=("{w}/tfl_badjson/size.json",)),
    Bad("predict", "out-in-sys", ("--model", "{model}", "--features", F, "--out", "/sys/asctool-robustness.h5"),
        names=("/sys",)),
    # ---------------------------------------------------------------- quantize
    Bad("quantize", "int8-no-calibration", ("--model", "{model}", *QUANT, "--mode", "int8"), names=("--calibration",)),
    Bad("quantize", "calibration-not-int8", ("--model", "{model}", *QUANT, "--calibration", F),
        names=("--calibration",)),
    Bad("quantize", "not-tflite", ("--model", "{model}", "--out", "{d}/q/m.bin"), names=("{d}/q/m.bin",), sub=True),
    Bad("quantize", "model-text", ("--model", "{w}/textmodel/model.keras", *QUANT),
        names=("{w}/textmodel/model.keras", "Keras")),
    Bad("quantize", "model-missing", ("--model", "{d}/none.keras", *QUANT), names=("{d}/none.keras",)),
    Bad("quantize", "calibration-nan", ("--model", "{model}", *QUANT, "--mode", "int8", "--calibration",
                                        "{w}/feats_nan.h5"), names=("{w}/feats_nan.h5", "NaN")),
    Bad("quantize", "calibration-shape", ("--model", "{model}", *QUANT, "--mode", "int8", "--calibration",
                                          "{w}/feats_shape.h5"), names=("{w}/feats_shape.h5",)),
    Bad("quantize", "calibration-scores", ("--model", "{model}", *QUANT, "--mode", "int8", "--calibration", S),
        names=("{w}/scores.h5",)),
    Bad("quantize", "existing-out", ("--model", "{model}", *QUANT),
        names=("{d}/q/m.tflite", "--force"), setup=_existing("q/m.tflite")),
    Bad("quantize", "size-json-of-another", ("--model", "{model}", *QUANT),
        names=("{d}/q/size.json",),
        setup=_existing("q/other.tflite", "q/size.json", content=b'{"file": "other.tflite"}\n')),
    Bad("quantize", "max-bytes-0", ("--model", "{model}", *QUANT, "--max-bytes", "0"), code=2, names=("--max-bytes",)),
    Bad("quantize", "bad-mode", ("--model", "{model}", *QUANT, "--mode", "int4"), code=2, names=("--mode",)),
    Bad("quantize", "zip-not-keras", ("--model", "{w}/zipmodel/model.keras", *QUANT),
        names=("{w}/zipmodel/model.keras",)),
    Bad("quantize", "tflite-as-model", ("--model", "{w}/tfl/m.tflite", *QUANT), names=("{w}/tfl/m.tflite", ".keras")),
    Bad("quantize", "metadata-label-map-list", ("--model", "{w}/meta_labelmap/model.keras", *QUANT),
        names=("{w}/meta_labelmap/model.keras", "label_map")),
    Bad("quantize", "hdf5-as-model", ("--model", "{w}/model.h5", *QUANT), names=("{w}/model.h5", ".keras")),
    # ---------------------------------------------------------------- check-size
    Bad("check-size", "missing", ("{d}/size.json", "--budget-kb", "10"), names=("{d}/size.json",), sub=True),
    Bad("check-size", "not-json", ("{w}/not.json", "--budget-kb", "10"), names=("{w}/not.json",)),
    Bad("check-size", "json-list", ("{w}/sizes/size_list.json", "--budget-kb", "10"),
        names=("{w}/sizes/size_list.json", "JSON object")),
    Bad("check-size", "json-string", ("{d}/size.json", "--budget-kb", "10"),
        names=("{d}/size.json", "JSON object"), setup=lambda d, p: (d / "size.json").write_text('"4096"\n')),
    Bad("check-size", "no-bytes", ("{w}/sizes/size_nobytes.json", "--budget-kb", "10", "--size-rule", "file"),
        names=("{w}/sizes/size_nobytes.json", "bytes")),
    Bad("check-size", "over-budget", ("{w}/sizes/size.json", "--budget-kb", "0.5"),
        names=("{w}/sizes/size.json", "OVER")),
    Bad("check-size", "budget-0", ("{w}/sizes/size.json", "--budget-kb", "0"), code=2, names=("--budget-kb",)),
    Bad("check-size", "hdf5-as-json", (S, "--budget-kb", "10"), names=("{w}/scores.h5",)),
    Bad("check-size", "bytes-text", ("{w}/sizes/size_text.json", "--budget-kb", "10"),
        names=("{w}/sizes/size_text.json",)),
    # ---------------------------------------------------------------- ensemble
    Bad("ensemble", "duplicate-ids", (S, "{w}/scores_dup.h5", "--out", "{d}/e.h5"),
        names=("{w}/scores_dup.h5", "duplicate"), sub=True),
    Bad("ensemble", "empty-member", ("{w}/scores_empty.h5", "{w}/scores_empty.h5", "--out", "{d}/e.h5"),
        names=("{w}/scores_empty.h5", "no clips")),
    Bad("ensemble", "nan-member", (S, "{w}/scores_nan.h5", "--out", "{d}/e.h5"), names=("{w}/scores_nan.h5", "c3")),
    Bad("ensemble", "rows-not-summing", (S, "{w}/scores_sum.h5", "--out", "{d}/e.h5"), names=("{w}/scores_sum.h5",)),
    Bad("ensemble", "other-ids", (S, "{w}/scores_ids.h5", "--out", "{d}/e.h5"), names=("{w}/scores_ids.h5", "c9")),
    Bad("ensemble", "other-classes", (S, "{w}/scores_cls.h5", "--out", "{d}/e.h5"), names=("{w}/scores_cls.h5",)),
    Bad("ensemble", "features-as-scores", (S, F, "--out", "{d}/e.h5"), names=("{w}/feats.h5", "features")),
    Bad("ensemble", "scores-a-group", (S, "{w}/scoresgroup.h5", "--out", "{d}/e.h5"),
        names=("{w}/scoresgroup.h5", "group")),
    Bad("ensemble", "text-as-scores", (S, "{w}/text.h5", "--out", "{d}/e.h5"), names=("{w}/text.h5",)),
    Bad("ensemble", "schema-9", (S, "{w}/v9.h5", "--out", "{d}/e.h5"), names=("{w}/v9.h5", "schema_version")),
    Bad("ensemble", "classes-not-json", (S, "{w}/scores_noclasses.h5", "--out", "{d}/e.h5"),
        names=("{w}/scores_noclasses.h5", "classes")),
    Bad("ensemble", "member-missing", (S, "{d}/none.h5", "--out", "{d}/e.h5"), names=("{d}/none.h5",)),
    Bad("ensemble", "weights-text", (S, S, "--out", "{d}/e.h5", "--weights", "1,x"), names=("--weights",)),
    Bad("ensemble", "weights-count", (S, S, "--out", "{d}/e.h5", "--weights", "1,2,3"), names=("--weights",)),
    Bad("ensemble", "weights-negative", (S, S, "--out", "{d}/e.h5", "--weights", "1,-2"), names=("--weights",)),
    Bad("ensemble", "weights-zero", (S, S, "--out", "{d}/e.h5", "--weights", "0,0"), names=("--weights",)),
    Bad("ensemble", "weights-nan", (S, S, "--out", "{d}/e.h5", "--weights", "nan,1"), names=("--weights",)),
    Bad("ensemble", "unknown-method", (S, S, "--out", "{d}/e.h5", "--method", "median"), code=2, names=("median",)),
    Bad("ensemble", "fit-with-mean", (S, S, "--out", "{d}/e.h5", "--fit", S), names=("--fit",)),
    Bad("ensemble", "logreg-no-fit", (S, S, "--out", "{d}/e.h5", "--method", "logreg"), names=("--fit",)),
    Bad("ensemble", "out-is-member", ("{d}/s.h5", S, *OUT_S, "--force"),
        names=("{d}/s.h5",), setup=lambda d, p: shutil.copy(p["w"] / "scores.h5", d / "s.h5")),
    Bad("ensemble", "out-in-proc", (S, S, "--out", "/proc/asctool-robustness.h5"), names=("/proc",)),
    Bad("ensemble", "existing-out", (S, S, "--out", "{d}/e.h5"),
        names=("{d}/e.h5", "--force"), setup=_existing("e.h5")),
    Bad("ensemble", "labels-missing", (S, S, "--out", "{d}/e.h5", "--labels", "{d}/map.tsv"), names=("{d}/map.tsv",)),
    Bad("ensemble", "labels-coarse-for-fine", (S, S, "--out", "{d}/e.h5", "--labels", "coarse"),
        names=("{w}/scores.h5",)),
    # ---------------------------------------------------------------- fuse
    Bad("fuse", "coarse-duplicate-ids", ("--fine", "{w}/fine.h5", "--coarse", "{w}/coarse_dup.h5", "--hierarchy",
                                         "{w}/hier.tsv", "--out", "{d}/f.h5"),
        names=("{w}/coarse_dup.h5", "duplicate"), sub=True),
    Bad("fuse", "hierarchy-partial", ("--fine", "{w}/fine.h5", "--coarse", "{w}/coarse.h5", "--hierarchy",
                                      "{w}/hier_partial.tsv", "--out", "{d}/f.h5"),
        names=("{w}/hier_partial.tsv", "b2")),
    Bad("fuse", "hierarchy-bad-line", ("--fine", "{w}/fine.h5", "--coarse", "{w}/coarse.h5", "--hierarchy",
                                       "{w}/hier_bad.tsv", "--out", "{d}/f.h5"), names=("{w}/hier_bad.tsv", "line 3")),
    Bad("fuse", "hierarchy-missing", ("--fine", "{w}/fine.h5", "--coarse", "{w}/coarse.h5", "--hierarchy", "{d}/h.tsv",
                                      "--out", "{d}/f.h5"), names=("{d}/h.tsv",)),
    Bad("fuse", "default-hierarchy", ("--fine", "{w}/fine.h5", "--coarse", "{w}/coarse.h5", "--out", "{d}/f.h5"),
        names=("a1", "{w}/fine.h5")),
    Bad("fuse", "swapped", ("--fine", "{w}/coarse.h5", "--coarse", "{w}/fine.h5", "--hierarchy", "{w}/hier.tsv",
                            "--out", "{d}/f.h5"), names=("{w}/hier.tsv", "{w}/coarse.h5")),
    Bad("fuse", "negative-weight", (*FUSE, "--coarse-weight", "-1"), code=2, names=("--coarse-weight",)),
    Bad("fuse", "weight-and-choose", (*FUSE, "--coarse-weight", "1", "--choose-weight-on", "{w}/fine.h5",
                                      "{w}/coarse.h5"), names=("--coarse-weight",)),
    Bad("fuse", "choose-on-same-files", (*FUSE, "--choose-weight-on", "{w}/fine.h5", "{w}/coarse.h5"),
        names=("{w}/fine.h5",)),
    Bad("fuse", "weight-grid-text", (*FUSE, "--choose-weight-on", "{d}/vf.h5", "{d}/vc.h5", "--weight-grid", "a,b"),
        names=("--weight-grid",), setup=_valid_pair()),
    Bad("fuse", "weight-grid-empty", (*FUSE, "--choose-weight-on", "{d}/vf.h5", "{d}/vc.h5", "--weight-grid", ","),
        names=("--weight-grid",), setup=_valid_pair()),
    Bad("fuse", "weight-grid-negative",
        (*FUSE, "--choose-weight-on", "{d}/vf.h5", "{d}/vc.h5", "--weight-grid", "1,-1"),
        names=("--weight-grid",), setup=_valid_pair()),
    Bad("fuse", "out-in-sys", ("--fine", "{w}/fine.h5", "--coarse", "{w}/coarse.h5", "--hierarchy", "{w}/hier.tsv",
                               "--out", "/sys/asctool-robustness.h5"), names=("/sys",)),
    Bad("fuse", "unknown-method", (*FUSE, "--method", "sum"), code=2, names=("sum",)),
    Bad("fuse", "features-as-coarse", ("--fine", "{w}/fine.h5", "--coarse", F, "--out", "{d}/f.h5"),
        names=("{w}/feats.h5",)),
    Bad("fuse", "choose-on-unlabelled", (*FUSE, "--choose-weight-on", "{d}/vf.h5", "{d}/vc.h5"),
        names=("{d}/vf.h5",), setup=_valid_pair(labelled=False)),
    Bad("fuse", "existing-out", FUSE, names=("{d}/f.h5", "--force"), setup=_existing("f.h5")),
    # ---------------------------------------------------------------- score
    Bad("score", "no-clips", ("{w}/scores_empty.h5", "--json", "{d}/r.json"), names=("{w}/scores_empty.h5",), sub=True),
    Bad("score", "features-as-scores", (F, "--json", "{d}/r.json"), names=("{w}/feats.h5", "features")),
    Bad("score", "truncated-hdf5", ("{w}/trunc.h5", "--json", "{d}/r.json"), names=("{w}/trunc.h5",)),
    Bad("score", "plain-hdf5", ("{w}/plain.h5", "--json", "{d}/r.json"), names=("{w}/plain.h5", "no asctool artifact")),
    Bad("score", "missing", ("{d}/none.h5", "--json", "{d}/r.json"), names=("{d}/none.h5",)),
    Bad("score", "nan-scores", ("{w}/scores_nan.h5", "--json", "{d}/r.json"), names=("{w}/scores_nan.h5",)),
    Bad("score", "scores-are-strings", ("{w}/strscores.h5", "--json", "{d}/r.json"),
        names=("{w}/strscores.h5", "'scores'")),
    Bad("score", "ids-not-strings", ("{w}/intidscores.h5", "--json", "{d}/r.json"),
        names=("{w}/intidscores.h5", "'id'")),
    Bad("score", "json-under-file", (S, "--submission", "{d}/s.csv", "--json", "{d}/FILE/r.json"),
        names=("{d}/FILE",), setup=_file_at("FILE")),
    Bad("score", "plot-read-only", (S, "--json", "{d}/r.json", "--plot", "{d}/RO/c.png"),
        names=("{d}/RO",), setup=_ro_folder("RO")),
    Bad("score", "existing-json", (S, "--json", "{d}/r.json"),
        names=("{d}/r.json", "--force"), setup=_existing("r.json")),
    Bad("score", "same-output-twice", (S, "--json", "{d}/r.json", "--submission", "{d}/r.json"), names=("{d}/r.json",)),
    Bad("score", "json-is-input", (S, "--json", S, "--force"), names=("{w}/scores.h5",)),
    Bad("score", "plot-unlabelled", ("{w}/scores_nolab.h5", "--plot", "{d}/c.png"), names=("{w}/scores_nolab.h5",)),
    Bad("score", "groups-bad-yaml", (S, "--groups", "{w}/groups_bad.yaml", "--json", "{d}/r.json"),
        names=("{w}/groups_bad.yaml",)),
    Bad("score", "groups-list", (S, "--groups", "{w}/groups_list.yaml", "--json", "{d}/r.json"),
        names=("{w}/groups_list.yaml",)),
    Bad("score", "labels-missing", (S, "--labels", "{d}/map.tsv", "--json", "{d}/r.json"), names=("{d}/map.tsv",)),
    Bad("score", "labels-not-covering", (S, "--labels", "{w}/labels_map.tsv", "--json", "{d}/r.json"),
        names=("{w}/scores.h5",)),
    Bad("score", "json-in-sys", (S, "--submission", "{d}/s.csv", "--json", "/sys/asctool-robustness.json"),
        names=("/sys",)),
    # ---------------------------------------------------------------- results
    Bad("results", "not-name-file", ("{w}/report.json", "--out", "{d}/R.md"), names=("{w}/report.json",), sub=True),
    Bad("results", "report-missing", ("a={d}/none.json", "--out", "{d}/R.md"), names=("{d}/none.json",)),
    Bad("results", "report-not-json", ("a={w}/not.json", "--out", "{d}/R.md"), names=("{w}/not.json",)),
    Bad("results", "report-list", ("a={w}/report_list.json", "--out", "{d}/R.md"), names=("{w}/report_list.json",)),
    Bad("results", "report-groups-list", ("a={w}/report_groups.json", "--out", "{d}/R.md"),
        names=("{w}/report_groups.json",)),
    Bad("results", "report-accuracy-text", ("a={w}/report_text.json", "--out", "{d}/R.md"),
        names=("{w}/report_text.json", "accuracy")),
    Bad("results", "out-in-proc", ("a={w}/report.json", "--out", "/proc/asctool-robustness.md"), names=("/proc",)),
    Bad("results", "report-is-hdf5", ("a=" + S, "--out", "{d}/R.md"), names=("{w}/scores.h5",)),
    Bad("results", "name-twice", ("a={w}/report.json", "a={w}/report.json", "--out", "{d}/R.md"), names=("'a'",)),
    Bad("results", "size-no-bytes", ("a={w}/report.json", "--size", "a={w}/sizes/size_nobytes.json", "--out",
                                     "{d}/R.md"), names=("{w}/sizes/size_nobytes.json",)),
    Bad("results", "size-list", ("a={w}/report.json", "--size", "a={w}/sizes/size_list.json", "--out", "{d}/R.md"),
        names=("{w}/sizes/size_list.json",)),
    Bad("results", "fusion-summary-not-json", ("a={w}/report.json", "--fusion-summary", "{w}/not.json", "--out",
                                               "{d}/R.md"), names=("{w}/not.json",)),
    Bad("results", "existing-out", ("a={w}/report.json", "--out", "{d}/R.md"),
        names=("{d}/R.md", "--force"), setup=_existing("R.md")),
    Bad("results", "budget-0", ("a={w}/report.json", "--out", "{d}/R.md", "--budget-kb", "0"),
        code=2, names=("--budget-kb",)),
    # ---------------------------------------------------------------- cam
    Bad("cam", "id-traversal", ("--model", "{model}", "--features", F, "--ids", "../../ESCAPED", "--out-dir",
                                "{d}/a/b/cam"), names=("--ids", "../../ESCAPED"), sub=True),
    Bad("cam", "id-absolute", ("--model", "{model}", "--features", F, "--ids", "{d}/ESCAPED", "--out-dir", "{d}/cam"),
        names=("--ids", "{d}/ESCAPED")),
    Bad("cam", "id-unknown", ("--model", "{model}", "--features", F, "--ids", "nosuchclip", "--out-dir", "{d}/cam"),
        names=("{w}/feats.h5", "nosuchclip")),
    Bad("cam", "id-twice", ("--model", "{model}", "--features", F, "--ids", "airport-lyon-0-50-a,airport-lyon-0-50-a",
                            "--out-dir", "{d}/cam"), names=("--ids",)),
    Bad("cam", "no-ids", ("--model", "{model}", "--features", F, "--ids", ",", "--out-dir", "{d}/cam"),
        names=("--ids",)),
    Bad("cam", "nan-clip", ("--model", "{model}", "--features", "{w}/feats_nan.h5", "--ids", "airport-lyon-0-80-a",
                            "--out-dir", "{d}/cam"), names=("{w}/feats_nan.h5", "NaN")),
    Bad("cam", "model-text", ("--model", "{w}/textmodel/model.keras", "--features", F, "--ids", "airport-lyon-0-50-a",
                              "--out-dir", "{d}/cam"), names=("{w}/textmodel/model.keras",)),
    Bad("cam", "other-frontend", ("--model", "{model}", "--features", "{w}/feats_other.h5", "--ids",
                                  "airport-lyon-0-60-a", "--out-dir", "{d}/cam"), names=("{w}/feats_other.h5",)),
    Bad("cam", "scores-as-features", ("--model", "{model}", "--features", S, "--ids", "c1", "--out-dir", "{d}/cam"),
        names=("{w}/scores.h5",)),
    Bad("cam", "existing-png", ("--model", "{model}", "--features", F, "--ids", "airport-lyon-0-50-a", "--out-dir",
                                "{d}/cam"),
        names=("{d}/cam/airport-lyon-0-50-a.png", "--force"), setup=_existing("cam/airport-lyon-0-50-a.png")),
    Bad("cam", "out-dir-is-file", ("--model", "{model}", "--features", F, "--ids", "airport-lyon-0-50-a", "--out-dir",
                                   "{d}/cam"), code=2, names=("{d}/cam",), setup=_file_at("cam")),
    Bad("cam", "zip-not-keras", ("--model", "{w}/zipmodel/model.keras", "--features", F, "--ids", "airport-lyon-0-50-a",
                                 "--out-dir", "{d}/cam"), names=("{w}/zipmodel/model.keras",)),
    Bad("cam", "other-shape", ("--model", "{model}", "--features", "{w}/feats_shape.h5", "--ids", "airport-lyon-0-70-a",
                               "--out-dir", "{d}/cam"), names=("{w}/feats_shape.h5",)),
    Bad("cam", "out-dir-in-proc", ("--model", "{model}", "--features", F, "--ids", "airport-lyon-0-50-a", "--out-dir",
                                   "/proc/asctool-robustness"), names=("/proc",)),
    Bad("cam", "metadata-classes-not-list", ("--model", "{w}/meta_classes/model.keras", "--features", F, "--ids",
                                             "airport-lyon-0-50-a", "--out-dir", "{d}/cam"),
        names=("{w}/meta_classes/model.keras", "classes")),
    Bad("cam", "metadata-frontend-not-object", ("--model", "{w}/meta_frontend/model.keras", "--features", F, "--ids",
                                                "airport-lyon-0-50-a", "--out-dir", "{d}/cam"),
        names=("{w}/meta_frontend/model.keras", "frontend_config")),
    Bad("cam", "features-3d", ("--model", "{model}", "--features", "{w}/f3d.h5", "--ids", "x1", "--out-dir", "{d}/cam"),
        names=("{w}/f3d.h5", "4-D")),
    Bad("cam", "min-freq-bins-0", ("--model", "{model}", "--features", F, "--ids", "airport-lyon-0-50-a", "--out-dir",
                                   "{d}/cam", "--min-freq-bins", "0"), code=2, names=("--min-freq-bins",)),
    # ---------------------------------------------------------------- inspect
    Bad("inspect", "missing", ("{d}/none.h5",), names=("{d}/none.h5",), sub=True),
    Bad("inspect", "text-as-hdf5", ("{w}/text.h5",), names=("{w}/text.h5",)),
    Bad("inspect", "truncated-hdf5", ("{w}/trunc.h5",), names=("{w}/trunc.h5",)),
    Bad("inspect", "plain-hdf5", ("{w}/plain.h5",), names=("{w}/plain.h5",)),
    Bad("inspect", "schema-9", ("{w}/v9.h5",), names=("{w}/v9.h5",)),
    Bad("inspect", "unknown-suffix", ("{w}/not.json",), names=("{w}/not.json",)),
    Bad("inspect", "keras-text", ("{w}/textmodel/model.keras",), names=("{w}/textmodel/model.keras",)),
    Bad("inspect", "tflite-garbage", ("{w}/garbage/m.tflite",), names=("{w}/garbage/m.tflite", "FlatBuffer")),
    Bad("inspect", "tsv-not-utf8", ("{w}/latin1.tsv",), names=("{w}/latin1.tsv",)),
    Bad("inspect", "tsv-stray-quote", ("{w}/quote.tsv",), names=("{w}/quote.tsv:3",)),
    Bad("inspect", "scores-nan", ("{w}/scores_nan.h5",), names=("{w}/scores_nan.h5",)),
    Bad("inspect", "features-shard-missing", ("{w}/comb/all.h5",), names=("{w}/comb/all.h5", "s2.h5")),
    Bad("inspect", "metadata-classes-not-list", ("{w}/meta_classes/model.keras",),
        names=("{w}/meta_classes/model.keras", "classes")),
    Bad("inspect", "ids-not-strings", ("{w}/intids.h5",), names=("{w}/intids.h5", "'id'")),
    Bad("inspect", "features-3d", ("{w}/f3d.h5",), names=("{w}/f3d.h5", "4-D")),
    Bad("inspect", "folder", ("{w}/comb",), code=2, names=("{w}/comb",)),
    Bad("inspect", "keras-zip-without-config", ("{w}/zipmodel/model.keras",), names=("{w}/zipmodel/model.keras",)),
    Bad("inspect", "features-without-config", ("{w}/noconfig.h5",), names=("{w}/noconfig.h5",)),
    # ---------------------------------------------------------------- models
    Bad("models", "shape-text", ("--input", "big"), code=2, names=("big",), sub=True),
    Bad("models", "shape-2d", ("--input", "128x423"), code=2, names=("128x423",)),
    Bad("models", "shape-zero", ("--input", "0x423x3"), code=2, names=("0x423x3",)),
    Bad("models", "shape-negative", ("--input", "128x-4x3"), code=2, names=("128x-4x3",)),
    Bad("models", "one-class", ("--classes", "1"), code=2, names=("--classes",)),
    # ---------------------------------------------------------------- split
    Bad("split", "unlabelled", ("--manifest", "{w}/nolabel.tsv", *SPLIT), names=("{w}/nolabel.tsv",), sub=True),
    # (without locations the split is stratified by class since issue 14: one clip per class cannot be split)
    Bad("split", "no-location", ("--manifest", "{w}/noloc.tsv", *SPLIT),
        names=("{w}/noloc.tsv", "no class has two clips to split")),
    Bad("split", "one-location-per-class", ("--manifest", "{w}/oneloc.tsv", *SPLIT), names=("{w}/oneloc.tsv",)),
    Bad("split", "same-outputs", ("--manifest", M, "--out-train", "{d}/t.tsv", "--out-valid", "{d}/t.tsv"),
        names=("{d}/t.tsv",)),
    Bad("split", "out-is-input", ("--manifest", "{d}/m.tsv", "--out-train", "{d}/m.tsv", "--out-valid", "{d}/v.tsv",
                                  "--force"),
        names=("{d}/m.tsv",), setup=lambda d, p: shutil.copy(p["w"] / "good.tsv", d / "m.tsv")),
    Bad("split", "fraction-1", ("--manifest", M, *SPLIT, "--valid-split", "1"), code=2, names=("--valid-split",)),
    Bad("split", "labels-missing", ("--manifest", M, *SPLIT, "--labels", "{d}/x.tsv"), names=("{d}/x.tsv",)),
    Bad("split", "typo-label", ("--manifest", "{w}/typo.tsv", *SPLIT), names=("{w}/typo.tsv:3", "airprot")),
    Bad("split", "id-traversal", ("--manifest", "{w}/escape.tsv", *SPLIT), names=("{w}/escape.tsv:3",)),
    Bad("split", "classes-not-covering", ("--manifest", M, *SPLIT, "--classes", "{d}/c.txt"),
        names=("{w}/good.tsv:3", "bus"), setup=lambda d, p: (d / "c.txt").write_text("airport\npark\n")),
    Bad("split", "duplicate-id", ("--manifest", "{w}/dup.tsv", *SPLIT), names=("{w}/dup.tsv:3", "line 2")),
    Bad("split", "out-in-sys", ("--manifest", M, "--out-train", "{d}/t.tsv", "--out-valid", "/sys/asctool-v.tsv"),
        names=("/sys",)),
    Bad("split", "existing-out", ("--manifest", M, *SPLIT), names=("{d}/v.tsv", "--force"), setup=_existing("v.tsv")),
]


# --------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------
def _fill(text: str, paths: dict, d: Path) -> str:
    return text.format(d=d, **paths)


def _snapshot(folder: Path, *, contents: bool = True) -> dict[str, object]:
    """Every path under ``folder``: a folder, a link, or a file's SHA-256 (or size and mtime)."""
    found: dict[str, object] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = "folder"
            elif contents:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                stat = path.stat()
                found[rel] = (stat.st_size, stat.st_mtime_ns)
    return found


def _changes(before: dict, after: dict) -> list[str]:
    return sorted([f"new {p}" for p in after.keys() - before.keys()]
                  + [f"gone {p}" for p in before.keys() - after.keys()]
                  + [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]])


#: What TensorFlow's C++ runtime prints on stderr when it is imported (before asctool can say anything).
_TF_STARTUP = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
                         r"|[IWE]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\]|To enable the following instructions:)")
#: A record of asctool's own logging (``LEVEL logger: message``), allowed before the error only with ``logs``.
_LOG_RECORD = re.compile(r"^(DEBUG|INFO|WARNING) asctool[.\w]*: ")


def check_failure(case: Bad, code: int, stdout: str, stderr: str, paths: dict, d: Path) -> None:
    """Exit status, one error line naming the file, nothing on stdout, no traceback."""
    shown = f"exit {code}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    assert "Traceback" not in stdout + stderr, shown
    assert code == case.code, shown
    assert not stdout.strip(), shown
    lines = [line for line in stderr.splitlines() if line.strip() and not _TF_STARTUP.match(line)]
    assert lines and lines[-1].startswith("Error: "), shown
    line, before = lines[-1], lines[:-1]
    if case.code == 2 and before:  # click's usage (maybe wrapped) and help hint come first
        assert before[0].startswith(f"Usage: asctool {case.stage} ") and before[-1].startswith("Try 'asctool "), shown
        assert all(text.startswith(" ") for text in before[1:-1]), shown
        before = []
    if case.logs:  # found in the middle of the work: its log records may come first
        before = [text for text in before if not _LOG_RECORD.match(text)]
    assert before == [], shown
    for needle in case.names:
        assert _fill(needle, paths, d) in line, shown


@pytest.fixture()
def case_dir(tmp_path, monkeypatch):
    d = tmp_path / "case"
    d.mkdir()
    monkeypatch.chdir(d)  # a stray relative write would land here, and be seen
    yield d
    while _MOUNTS:
        subprocess.run(["umount", str(_MOUNTS.pop())], check=True)


def _run_case(case: Bad, paths: dict, d: Path, invoke) -> None:
    if case.setup is not None:
        case.setup(d, paths)
    args = [case.stage, *(_fill(a, paths, d) for a in case.args)]
    # the case's folder byte for byte (an escaped id lands in it: outputs go to d/a/b/...), and the inputs
    watched = [(d, True), (paths["w"], False), (paths["model"].parent.parent, False), (paths["ds"], False)]
    before = [_snapshot(folder, contents=contents) for folder, contents in watched]
    code, stdout, stderr = invoke(args)
    check_failure(case, code, stdout, stderr, paths, d)
    for (folder, contents), old in zip(watched, before):
        assert _changes(old, _snapshot(folder, contents=contents)) == [], (folder, stderr)


def _in_process(args):
    result = CliRunner().invoke(cli, args, prog_name="asctool")
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        "".join(__import__("traceback").format_exception(result.exception)))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case, world, case_dir):
    _run_case(case, world, case_dir, _in_process)


def _console_script(args):
    script = Path(sys.executable).with_name("asctool")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=120)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("case", [c for c in CASES if c.sub], ids=lambda c: c.id)
def test_bad_input_console_script(case, world, case_dir):
    if not Path(sys.executable).with_name("asctool").exists():
        pytest.skip("no asctool console script beside this Python")
    _run_case(case, world, case_dir, _console_script)


def test_the_table_covers_every_stage():
    """At least 60 cases, and every subcommand of the CLI has some."""
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.stage for c in CASES} == set(cli.commands)
    assert {c.stage for c in CASES if c.sub} == set(cli.commands)


# --------------------------------------------------------------------------
# what goes with a bad input: the checks happen before the expensive imports
# --------------------------------------------------------------------------
def test_cam_refuses_a_bad_id_before_importing_tensorflow(world, tmp_path):
    """A traversal id is one line in a fraction of a second: TensorFlow is imported after the options are checked."""
    code = ("import sys\nfrom asctool.cli import cli\n"
            "try:\n cli(['cam', '--model', sys.argv[1], '--features', sys.argv[2], '--ids', '../x', '--out-dir',"
            " sys.argv[3]], prog_name='asctool')\n"
            "except SystemExit as exc:\n print(exc.code, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code, str(world["model"]), str(world["w"] / "feats.h5"),
                           str(tmp_path / "cam")], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.split() == ["1", "False", "False"], done.stdout + done.stderr
    assert not (tmp_path / "cam").exists()


# --------------------------------------------------------------------------
# oddities that must still work (positive cases, outside the table)
# --------------------------------------------------------------------------
def _ok(args):
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="asctool")
    assert result.exit_code == 0, result.output
    return result


def test_crlf_and_bom_text_inputs_are_read_like_plain_ones(world, tmp_path):
    """Windows line ends and a UTF-8 byte-order mark in every kind of text input: manifests, --classes,
    front-end YAML, label maps, hierarchies, the TAU split files."""
    w, good = world["w"], world["good"]
    odd = dict(newline="\r\n", bom=True)
    manifest = tsv(tmp_path / "m.tsv", [clip_row("airport-barcelona-1-1-a", good)], **odd)
    (tmp_path / "classes.txt").write_bytes(b"\xef\xbb\xbfairport\r\nbus\r\n")
    (tmp_path / "fe.yaml").write_bytes(b"\xef\xbb\xbfn_mels: 64\r\nn_fft: 2048\r\n")
    _ok(["featurize", "--manifest", manifest, "--out", tmp_path / "f.h5", "--classes", tmp_path / "classes.txt",
         "--config", tmp_path / "fe.yaml"])
    from asctool.artifacts import open_features

    with open_features(tmp_path / "f.h5") as f:
        assert list(f.ids) == ["airport-barcelona-1-1-a"] and f.classes == ["airport", "bus"]
        assert f.feature_shape[0] == 64

    rows = [(f"{s}-x-{k}-{j}-a", f"audio/{s}{k}{j}.wav", s, "a", "x", f"{s}-x-{k}")
            for s in ("bus", "park") for k in range(4) for j in range(2)]
    split_in = tsv(tmp_path / "split.tsv", rows, **odd)
    _ok(["split", "--manifest", split_in, "--out-train", tmp_path / "t.tsv", "--out-valid", tmp_path / "v.tsv",
         "--valid-split", "0.25"])
    assert len((tmp_path / "v.tsv").read_text().splitlines()) == 1 + 4

    label_map = tsv(tmp_path / "map.tsv", [("bus", "vehicle"), ("park", "outside"), ("tram", "vehicle")],
                    header=("scene", "label"), **odd)
    write_probs(tmp_path / "s2.h5", ["c1", "c2"], [[0.9, 0.1], [0.2, 0.8]], ["outside", "vehicle"],
                scenes=["bus", "park"])
    _ok(["score", tmp_path / "s2.h5", "--labels", label_map, "--json", tmp_path / "r.json"])

    hierarchy = tsv(tmp_path / "hier.tsv", [("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B")],
                    header=("fine", "coarse"), **odd)
    _ok(["fuse", "--fine", w / "fine.h5", "--coarse", w / "coarse.h5", "--hierarchy", hierarchy,
         "--out", tmp_path / "fused.h5"])

    def crlf_bom(path: Path) -> str:
        return "\ufeff" + path.read_text().replace("\n", "\r\n")
    _tau_layout(train=crlf_bom, evaluate=crlf_bom, test=crlf_bom, meta=crlf_bom)(tmp_path, world)
    _ok(["prepare", "--dataset-root", tmp_path / "ds", "--out-dir", tmp_path / "m", "--no-check-audio"])
    plain = tmp_path / "plain"
    _tau_layout()(plain, world)
    _ok(["prepare", "--dataset-root", plain / "ds", "--out-dir", plain / "m", "--no-check-audio"])
    for name in ("fold1_train.tsv", "fold1_evaluate.tsv", "fold1_test.tsv", "meta.tsv"):
        assert (tmp_path / "m" / name).read_bytes() == (plain / "m" / name).read_bytes()


def test_classes_as_an_hdf5_string_array_and_a_final_line_without_newline(world, tmp_path):
    """What h5py scripts write (classes as a string array) and a manifest without its last newline."""
    ids = ["c1", "c2", "c3"]
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    write_raw_scores(tmp_path / "a.h5", ids, probs, ["bus", "park", "tram"], scenes=["bus", "park", "tram"],
                     classes_attr=np.array(["bus", "park", "tram"], dtype=h5py.string_dtype()))
    _ok(["score", tmp_path / "a.h5", "--json", tmp_path / "r.json"])
    text = (world["w"] / "good.tsv").read_text().rstrip("\n")
    (tmp_path / "m.tsv").write_text(text)
    from asctool.manifest import read_manifest

    assert read_manifest(tmp_path / "m.tsv").ids == ["airport-barcelona-1-1-a", "bus-london-3-4-a"]
