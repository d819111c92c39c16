"""train --tags --tag-fusion and predict --tags: tags joined by id, the tagger recorded and checked."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import TAGGER, make_features, write_tags_for

from asctool.errors import AsctoolError, ConfigError, MismatchError
from asctool.stages.predict import run as predict
from asctool.stages.train import run as train

KW = dict(profile="demo", epochs=1, batch_size=8, valid_split=0.25, seed=1, augment="mixup", width=0.25)


@pytest.fixture(scope="module")
def tagged_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagfusion")
    data = make_features(root / "train.h5", 32, seed=0)
    test = make_features(root / "test.h5", 12, seed=1, city="paris")
    tags = write_tags_for(root / "tags.h5", [data, test])
    summary = train([data], "small_fcnn", root / "run", tags_path=tags, tag_fusion="both:2,1", **KW)
    return {"root": root, "data": data, "test": test, "tags": tags, "summary": summary}


def test_train_records_the_tagger_and_predict_uses_the_tags(tagged_run, tmp_path):
    config = json.loads((tagged_run["root"] / "run" / "config.json").read_text())
    assert config["tag_fusion"]["mode"] == "both:2,1,shared"
    assert config["tag_fusion"]["tagger"] == TAGGER
    assert config["tag_fusion"]["tag_names"] == ["dog", "engine", "bird"]
    model = tagged_run["root"] / "run" / "model.keras"
    out = predict(model, tagged_run["test"], tmp_path / "s.h5", tags_path=tagged_run["tags"])
    assert out["clips"] == 12
    # the same tags in another row order give the same scores: joined by id
    other = write_tags_for(tmp_path / "t2.h5", [tagged_run["data"], tagged_run["test"]], seed=0, shuffle=False)
    from asctool.tagsfile import read_tags
    a, b = read_tags(tagged_run["tags"]), read_tags(other)
    assert list(a.ids) != list(b.ids)
    reordered = tmp_path / "t3.h5"
    from asctool.tagsfile import write_tags
    order = np.argsort(a.ids)
    write_tags(reordered, ids=list(a.ids[order]), tags=a.tags[order], tag_names=a.tag_names, tagger=a.tagger)
    out2 = predict(model, tagged_run["test"], tmp_path / "s2.h5", tags_path=reordered)
    from asctool.artifacts import read_scores
    np.testing.assert_allclose(read_scores(tmp_path / "s.h5").scores, read_scores(tmp_path / "s2.h5").scores,
                               rtol=1e-6)
    assert out2["clips"] == 12


def test_predict_refuses_another_tagger_and_missing_tags(tagged_run, tmp_path):
    model = tagged_run["root"] / "run" / "model.keras"
    foreign = write_tags_for(tmp_path / "f.h5", [tagged_run["test"]], tagger={**TAGGER, "sha256": "cd" * 32})
    with pytest.raises(MismatchError, match=r"f\.h5: tags from another tagger than .*model\.keras: sha256"):
        predict(model, tagged_run["test"], tmp_path / "s.h5", tags_path=foreign)
    with pytest.raises(ConfigError, match="was trained with tags: give --tags"):
        predict(model, tagged_run["test"], tmp_path / "s.h5")
    from asctool.artifacts import open_features
    with open_features(tagged_run["test"]) as f:
        first = str(f.ids[3])
    partial = write_tags_for(tmp_path / "p.h5", [tagged_run["test"]], drop=[first])
    with pytest.raises(MismatchError) as err:
        predict(model, tagged_run["test"], tmp_path / "s.h5", tags_path=partial)
    assert str(err.value) == f"{partial}: no tags for clip {first} of {tagged_run['test']}"
    assert not (tmp_path / "s.h5").exists()


def test_train_refuses_missing_tags_before_writing(tagged_run, tmp_path):
    from asctool.artifacts import open_features
    with open_features(tagged_run["data"]) as f:
        first = str(f.ids[5])
    partial = write_tags_for(tmp_path / "p.h5", [tagged_run["data"]], drop=[first])
    with pytest.raises(MismatchError, match=rf"p\.h5: no tags for clip {first} of "):
        train([tagged_run["data"]], "small_fcnn", tmp_path / "run", tags_path=partial, tag_fusion="concat", **KW)
    assert not (tmp_path / "run" / "config.json").exists()
    with pytest.raises(ConfigError, match="--tags and --tag-fusion go together"):
        train([tagged_run["data"]], "small_fcnn", tmp_path / "run", tags_path=partial, **KW)
    with pytest.raises(AsctoolError, match="--tag-fusion 'sum'"):
        train([tagged_run["data"]], "small_fcnn", tmp_path / "run", tags_path=partial, tag_fusion="sum", **KW)
