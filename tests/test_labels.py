"""asctool.labels: the packaged hierarchy, TSV label maps and the --labels resolver."""
from __future__ import annotations

import pytest

from asctool.errors import ConfigError, ManifestError, MismatchError
from asctool.labels import (
    COARSE_CLASSES,
    SCENES,
    map_labels,
    packaged_hierarchy,
    read_label_map,
    resolve_label_map,
)


def test_label_maps(tmp_path):
    hierarchy = packaged_hierarchy()
    assert sorted(hierarchy) == list(SCENES) and set(hierarchy.values()) == set(COARSE_CLASSES)
    assert hierarchy["metro_station"] == "indoor" and hierarchy["tram"] == "transportation"
    (tmp_path / "map.tsv").write_text("scene\tlabel\npark\tgreen\nbus\tgrey\n")
    assert read_label_map(tmp_path / "map.tsv") == {"park": "green", "bus": "grey"}
    (tmp_path / "twice.tsv").write_text("park\tgreen\npark\tgrey\n")
    with pytest.raises(ManifestError, match="mapped twice"):
        read_label_map(tmp_path / "twice.tsv")


def test_resolve_label_map_means_the_same_everywhere(tmp_path):
    assert resolve_label_map(None) is None and resolve_label_map("scene") is None
    assert resolve_label_map("coarse") == packaged_hierarchy()
    (tmp_path / "map.tsv").write_text("park\tgreen\nbus\tgrey\n")
    assert resolve_label_map(tmp_path / "map.tsv") == {"park": "green", "bus": "grey"}
    with pytest.raises(ConfigError, match="not 'scene', 'coarse' or an existing TSV"):
        resolve_label_map(tmp_path / "missing.tsv")
    (tmp_path / "bad.tsv").write_text("park\n")
    with pytest.raises(ConfigError, match=r"bad\.tsv: line 1"):
        resolve_label_map(tmp_path / "bad.tsv")


def test_map_labels_keeps_unlabelled_and_names_unknown_scenes():
    mapped = map_labels(["park", "", "bus"], {"park": "green", "bus": "grey"}, "x.h5")
    assert list(mapped) == ["green", "", "grey"]
    with pytest.raises(MismatchError, match=r"x\.h5: reference scene\(s\) tram not in the label map"):
        map_labels(["tram"], {"park": "green"}, "x.h5")
