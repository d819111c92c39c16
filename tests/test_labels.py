"""asctool.labels: the packaged hierarchy, TSV label maps and the --labels resolver."""
from __future__ import annotations

import pytest

from asctool.errors import ConfigError, ManifestError, MismatchError
from asctool.labels import (
    COARSE_CLASSES,
    SCENES,
    check_known_labels,
    map_labels,
    packaged_hierarchy,
    read_classes,
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


def _line(i: int) -> str:
    return f"m.tsv:{i + 2}"


def test_unknown_labels_are_refused_naming_the_row():
    """Issue 9 item 5: a typo (``airprot``) would silently become an 11th class."""
    check_known_labels(["airport", "", "bus"], None, _line)            # unlabelled rows pass
    check_known_labels(["indoor", "outdoor"], None, _line)             # the 3Class data set
    with pytest.raises(ManifestError, match=r"m\.tsv:3: unknown label 'airprot', not one of the DCASE "
                                            r"scenes \(airport, .*\); .*--classes FILE"):
        check_known_labels(["airport", "airprot", "bus"], None, _line)
    # another instance: a scene among coarse labels
    with pytest.raises(ConfigError, match=r"m\.tsv:4: unknown label 'bus', not one of the coarse"):
        check_known_labels(["indoor", "outdoor", "bus"], None, _line, error=ConfigError)


def test_a_users_own_classes(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# my data set\nbeach\n\nforest \ncave\n")
    classes = read_classes(path)
    assert classes == ["beach", "forest", "cave"] and read_classes(None) is None
    check_known_labels(["cave", "beach"], classes, _line)
    with pytest.raises(ManifestError, match=r"m\.tsv:2: unknown label 'airport', not one of the classes of "
                                            r"--classes \(beach, cave, forest\)$"):
        check_known_labels(["airport"], classes, _line)
    path.write_text("beach\ncave\nbeach\n")
    with pytest.raises(ConfigError, match=r"classes\.txt: line 3: class 'beach' is listed twice"):
        read_classes(path)
    path.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="lists no classes"):
        read_classes(path)


def test_infer_class_set_takes_the_classes_from_the_data():
    """(issue 14) DCASE labels keep the DCASE list (a typo stays a typo); other labels are the data's classes."""
    from asctool.labels import COARSE_CLASSES, SCENES, infer_class_set

    assert infer_class_set(["park", "bus", "airprot", ""]) == ("scene", SCENES)
    assert infer_class_set(["indoor", "outdoor", "bus"]) == ("coarse", COARSE_CLASSES)
    assert infer_class_set(["dog", "rain", "dog", "park"]) == ("data", ("dog", "park", "rain"))
    assert infer_class_set(["", ""]) == ("scene", SCENES)
    assert infer_class_set(["park", "dog"]) == ("data", ("dog", "park"))              # half is not most


def test_classes_text_reads_back(tmp_path):
    from asctool.labels import classes_text, read_classes

    (tmp_path / "c.txt").write_text(classes_text(["crow, cawing", "dog"]))
    assert read_classes(tmp_path / "c.txt") == ["crow, cawing", "dog"]
