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
