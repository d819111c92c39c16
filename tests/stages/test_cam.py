"""asctool cam: Grad-CAM maps on the features_out layer, PNG per clip."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from asctool.artifacts import FeaturesWriter
from asctool.cli import cli
from asctool.errors import AsctoolError

FRONTEND = {"name": "cam-test"}
FINE = ["airport", "bus", "metro", "park"]
COARSE = ["indoor", "outdoor", "transportation"]


def _save_run(folder, model, classes, input_shape):
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    (folder / "config.json").write_text(json.dumps({
        "model": model.name, "classes": classes, "labels": "scene", "frontend_config": FRONTEND,
        "input_shape": list(input_shape),
    }))
    return folder / "model.keras"


def _features(path, shape, n=3, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"clip-{i}" for i in range(n)]
    with FeaturesWriter(path, n=n, feature_shape=shape, config=FRONTEND, ids=ids,
                        scenes=["bus"] * n, dtype="float32") as writer:
        for i in range(n):
            writer.write(i, rng.uniform(0, 1, size=shape))
    return ids


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import keras

    from asctool.models import build

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("cam")
    big, small = (64, 32, 3), (32, 32, 3)
    out = {"root": root, "big": big, "small": small}
    out["coarse"] = _save_run(root / "coarse", build("fcnn", 3, big, width=1 / 48), COARSE, big)
    out["fine"] = _save_run(root / "fine", build("fsfcnn", 4, big, width=1 / 32), FINE, big)
    out["tiny"] = _save_run(root / "tiny", build("fcnn", 3, small, width=1 / 48), COARSE, small)
    out["ids"] = _features(root / "big.h5", big)
    _features(root / "small.h5", small)
    return out


def test_two_models_give_three_panels(runs, tmp_path):
    from asctool.saliency import grad_cam
    from asctool.stages.cam import run as cam
    from asctool.models import load_model

    out = tmp_path / "png"
    summary = cam([runs["coarse"], runs["fine"]], runs["root"] / "big.h5", runs["ids"][:2], out)
    assert [c["id"] for c in summary["clips"]] == runs["ids"][:2]
    assert summary["warnings"] == []
    for clip in summary["clips"]:
        png = out / f"{clip['id']}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert [m["predicted"] in (COARSE if i == 0 else FINE) for i, m in enumerate(clip["models"])] == [True, True]
    # 64 mel bins pooled 8 times by FCNN: an 8-bin map; fsFCNN pools frequency 4 times: 16 bins
    assert summary["models"][0]["map_shape"][0] == 8 and summary["models"][0]["meaningful"]
    assert summary["models"][1]["map_shape"][0] == 16
    # the map itself: non-negative, scaled to [0, 1], for the predicted class
    x = np.random.default_rng(0).uniform(0, 1, size=(2, *runs["big"])).astype(np.float32)
    maps, probs = grad_cam(load_model(runs["fine"]), x)
    assert maps.shape[:2] == (2, 16) and probs.shape == (2, len(FINE))
    assert maps.min() >= 0 and maps.max() <= 1 and np.isclose(maps.max(axis=(1, 2)), 1).any()

    # PNG height grows with the number of panels
    import matplotlib.image as mpimg

    two = mpimg.imread(out / f"{runs['ids'][0]}.png").shape[0]
    one = cam([runs["fine"]], runs["root"] / "big.h5", runs["ids"][:1], tmp_path / "one")
    assert mpimg.imread(one["clips"][0]["png"]).shape[0] < two

    # a coarse map next to a fine one: drawn, with a warning naming the model
    mixed = cam([runs["coarse"], runs["fine"]], runs["root"] / "big.h5", runs["ids"][:1], tmp_path / "mixed",
                min_freq_bins=10)
    assert len(mixed["warnings"]) == 1 and "coarse" in mixed["warnings"][0] and "8 frequency bins" in mixed["warnings"][0]
    assert [m["meaningful"] for m in mixed["models"]] == [False, True]


def test_unknown_ids_are_named(runs, tmp_path):
    result = CliRunner().invoke(cli, ["cam", "--model", str(runs["fine"]), "--features", str(runs["root"] / "big.h5"),
                                      "--ids", f"{runs['ids'][0]},nope-1,nope-2", "--out-dir", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "nope-1, nope-2" in result.output
    assert not (tmp_path / "x").exists()


def test_small_maps_warn_or_fail(runs, tmp_path):
    from asctool.stages.cam import run as cam

    # 32 bins pooled 8 times: a 4-bin map, too coarse on its own
    with pytest.raises(AsctoolError, match="nothing written"):
        cam([runs["tiny"]], runs["root"] / "small.h5", ["clip-0"], tmp_path / "none")
    assert not (tmp_path / "none").exists()
    summary = cam([runs["tiny"]], runs["root"] / "small.h5", ["clip-0"], tmp_path / "coarse", min_freq_bins=4)
    assert summary["warnings"] == [] and (tmp_path / "coarse" / "clip-0.png").is_file()


def test_mismatched_features_are_refused(runs, tmp_path):
    from asctool.stages.cam import run as cam

    with pytest.raises(AsctoolError, match="do not fit"):
        cam([runs["fine"]], runs["root"] / "small.h5", ["clip-0"], tmp_path / "m")


# --------------------------------------------------------------------------
# ids become file names; PNGs never overwritten without --force (issue 9, items 1, 17, 19)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("bad_id, problem", [
    ("../../ESCAPED", "contains a path separator"),    # the example overwrote a PNG outside --out-dir
    ("/tmp/ESCAPED", "is an absolute path"),
    ("clip-0\rError: forged", "contains a control character"),
])
def test_ids_that_would_leave_the_output_folder_are_refused(runs, tmp_path, one_line_error, tree, bad_id, problem):
    """Even when the features file (written by another tool) holds the id."""
    feats = tmp_path / "feats.h5"
    with FeaturesWriter(feats, n=2, feature_shape=runs["big"], config=FRONTEND, ids=["clip-0", bad_id],
                        scenes=["bus"] * 2, dtype="float32") as writer:
        for i in range(2):
            writer.write(i, np.random.default_rng(i).uniform(0, 1, size=runs["big"]))
    work = tmp_path / "work"
    (work / "ESCAPED.png").parent.mkdir()
    (work / "ESCAPED.png").write_bytes(b"someone else's picture")
    before = tree(tmp_path)
    done = CliRunner().invoke(cli, ["cam", "--model", str(runs["fine"]), "--features", str(feats),
                                    "--ids", f"clip-0,{bad_id}", "--out-dir", str(work / "cam")])
    one_line_error(done, f"--ids: clip id {bad_id!r} {problem}")
    assert tree(tmp_path) == before and (work / "ESCAPED.png").read_bytes() == b"someone else's picture"


def test_existing_pngs_need_force(runs, tmp_path, one_line_error):
    out = tmp_path / "png"
    out.mkdir()
    (out / "clip-1.png").write_bytes(b"earlier")
    args = ["cam", "--model", str(runs["fine"]), "--features", str(runs["root"] / "big.h5"),
            "--ids", "clip-0,clip-1", "--out-dir", str(out)]
    one_line_error(CliRunner().invoke(cli, args), f"{out / 'clip-1.png'}: already exists (use --force to overwrite)")
    assert sorted(p.name for p in out.iterdir()) == ["clip-1.png"]
    done = CliRunner().invoke(cli, [*args, "--force"])
    assert done.exit_code == 0, done.output
    assert (out / "clip-1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "clip-0.png").is_file()


def test_an_out_dir_below_a_file_is_one_line(runs, tmp_path, one_line_error, tree):
    (tmp_path / "notes.txt").write_text("x")
    before = tree(tmp_path)
    done = CliRunner().invoke(cli, ["cam", "--model", str(runs["fine"]), "--features", str(runs["root"] / "big.h5"),
                                    "--ids", "clip-0", "--out-dir", str(tmp_path / "notes.txt" / "cam")])
    one_line_error(done, "notes.txt/cam: cannot be written:", "notes.txt is not a folder")
    assert tree(tmp_path) == before


def test_a_text_file_named_model_keras_is_not_a_keras_archive(runs, tmp_path, one_line_error):
    """The issue's example said 'File not found'."""
    fake = tmp_path / "run" / "model.keras"
    fake.parent.mkdir()
    fake.write_text("not a model\n")
    done = CliRunner().invoke(cli, ["cam", "--model", str(fake), "--features", str(runs["root"] / "big.h5"),
                                    "--ids", "clip-0", "--out-dir", str(tmp_path / "cam")])
    one_line_error(done, f"{fake}: not a Keras archive")
    assert not (tmp_path / "cam").exists()


def test_a_clip_with_nan_features_is_refused(runs, tmp_path):
    """A NaN clip gave a PNG titled "p = nan" and exit 0."""
    import shutil

    from asctool.stages.cam import run as cam

    from helpers import poke

    feats = poke(shutil.copyfile(runs["root"] / "big.h5", tmp_path / "nan.h5"), "features", (1, 0, 0, 0), np.nan)
    with pytest.raises(AsctoolError, match=r"nan\.h5: features of clip clip-1 \(row 1\) contain NaN or Inf"):
        cam([runs["coarse"]], feats, ["clip-0", "clip-1"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
