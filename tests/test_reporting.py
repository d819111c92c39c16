"""asctool.reporting: the results table and size budgets as pure functions."""
from __future__ import annotations

import pytest

from asctool.errors import ArtifactError, ConfigError
from asctool.reporting import format_size_budget, results_markdown, size_budget, size_bytes

REPORT = {"n": 4, "classes": list("abcdefghij"), "overall": {"accuracy": 0.25}, "groups": {"B&C": {"accuracy": 1.0}}}
SIZE = {"bytes": 94_500, "parameter_bytes": 6_100, "parameters": 6_100, "mode": "dynamic"}


def test_results_markdown_columns_and_blocks():
    text = results_markdown([("m", REPORT), ("m-tflite", REPORT)], title="T", sizes={"m-tflite": SIZE},
                            budget_kb=500, size_rule="dcase",
                            fusion_summary={"oracle": {"accuracy": 0.9}}, published="1a")
    lines = text.splitlines()
    assert lines[0] == "# T" and lines[-1].startswith("| two-stage ensemble, as published")
    assert "| m | 10 |  | 100.0 |  |  | 25.0 |  |  | 4 |  |  |" in lines
    assert "| m-tflite | 10 |  | 100.0 |  |  | 25.0 |  |  | 4 | 92.3 | 6.0 |" in lines
    assert ("All quantised models together: files 94500 bytes (92.3 KB), parameters x bits 6100 bytes "
            "(6.0 KB); within the budget of 500 KB (rule dcase).") in text
    assert "Oracle gating (true coarse class given to the fusion): oracle.accuracy 90.0 %." in text
    with pytest.raises(ConfigError, match="published figures exist for 1a, 1b"):
        results_markdown([], title="T", published="2a")


def test_size_budget_and_rules():
    assert size_bytes(SIZE, "dcase") == 6_100 and size_bytes(SIZE, "file") == 94_500
    with pytest.raises(ConfigError, match="size rule"):
        size_bytes(SIZE, "bits")
    with pytest.raises(ArtifactError, match="x.json: no readable 'bytes'"):
        size_bytes({}, "file", where="x.json")
    summary = size_budget({"x": SIZE, "y": SIZE}, budget_kb=184, rule="file")
    assert summary["total_bytes"] == 189_000 and not summary["within"]
    assert format_size_budget(summary).splitlines()[-1] == \
        "total: 189000 bytes (184.6 KB), OVER the budget of 184 KB (rule file)"
    with pytest.raises(ConfigError, match="must be positive"):
        size_budget({"x": SIZE}, budget_kb=0)


def test_results_without_device_groups_has_no_empty_group_columns():
    """(issue 14) a data set without devices: the table has no A, B&C, s1-s3, s4-s6 columns."""
    plain = {"n": 6, "classes": ["dog", "rain"], "overall": {"accuracy": 0.5, "macro_accuracy": 0.5, "log_loss": 0.7},
             "groups": {}}
    text = results_markdown([("cnn", plain)], title="T")
    assert text.splitlines()[2] == "| system | classes | all (micro) | all (macro) | log loss | n |"
    assert text.splitlines()[4] == "| cnn | 2 | 50.0 | 50.0 | 0.700 | 6 |"
    with_groups = results_markdown([("cnn", plain), ("other", REPORT)], title="T")
    assert "| A | B&C | s1-s3 | s4-s6 |" in with_groups.splitlines()[2]


def test_mean_std_is_the_sample_standard_deviation():
    import statistics

    from asctool.reporting import mean_std

    values = [0.2, 0.5, 0.45, 0.9]
    mean, std = mean_std(values)
    assert mean == pytest.approx(statistics.mean(values)) and std == pytest.approx(statistics.stdev(values))
    assert mean_std([0.3]) == (0.3, None)


def test_the_note_on_mapped_labels_follows_the_reports():
    """(found on ESC-50-style data) "3-class systems are scored against the coarse labels" closed every table,
    also one without any mapped system, and named 3 classes for a map of any size."""
    from asctool.reporting import fold_statistics, folds_markdown

    plain = {"n": 6, "classes": ["dog", "rain"], "overall": {"accuracy": 0.5, "macro_accuracy": 0.5, "log_loss": 0.7},
             "groups": {}}
    note = "Accuracies in %: micro = fraction of clips right, macro = mean of the per-class accuracies"
    last = results_markdown([("cnn", plain)], title="T").splitlines()[-1]
    assert last.startswith(note) and last.endswith("log loss normalised (rows sum to 1).")
    mapped = {**plain, "labels": "map.tsv", "classes": ["animal", "weather", "other", "x", "y"]}
    last = results_markdown([("cnn", plain), ("coarse_cnn", mapped)], title="T").splitlines()[-1]
    assert last.endswith("(rows sum to 1). Systems trained with a label map (--labels FILE) are scored against "
                         "the labels it maps to.")
    dcase = {**plain, "labels": "coarse"}
    assert results_markdown([("c", dcase)], title="T").splitlines()[-1].endswith(
        " 3-class systems are scored against the coarse labels.")
    stats = fold_statistics([("cnn", [plain, plain]), ("coarse_cnn", [mapped, mapped])], ["1", "2"])
    assert stats["coarse_cnn"]["labels"] == "map.tsv" and "labels" not in stats["cnn"]
    assert folds_markdown(stats, ["1", "2"], title="T").splitlines()[-1].endswith(
        "n = clips over all folds. Systems trained with a label map (--labels FILE) are scored against the labels "
        "it maps to.")
    only_plain = folds_markdown(fold_statistics([("cnn", [plain, plain])], ["1", "2"]), ["1", "2"], title="T")
    assert only_plain.splitlines()[-1].endswith("n = clips over all folds.")
