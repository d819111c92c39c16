"""Manifests, TAU file names, CSV reading and label maps."""
from __future__ import annotations

from dataclasses import replace

import pytest

from asctool.errors import ManifestError
from asctool.manifest import (
    Clip,
    column_values,
    device_of,
    location_of,
    parse_stem,
    read_csv_rows,
    read_manifest,
    segment_of,
    write_manifest,
)


def test_parse_stem():
    stem = "street_traffic-barcelona-161-4901-s5"
    assert parse_stem(stem) == {
        "scene": "street_traffic", "city": "barcelona", "location": "street_traffic-barcelona-161",
        "segment": "street_traffic-barcelona-161-4901", "device": "s5",
    }
    assert location_of(stem) == "street_traffic-barcelona-161"
    assert segment_of(stem) == "street_traffic-barcelona-161-4901"
    assert device_of(stem) == "s5"
    for bad in ("airport-lisbon-1000-a", "airport--1000-1-a", "0"):
        with pytest.raises(ManifestError, match="TAU pattern"):
            parse_stem(bad)


@pytest.mark.parametrize(
    "data",
    [
        b"filename\tscene_label\na.wav\tpark\nb.wav\tbus",          # LF, no final newline
        b"filename\tscene_label\r\na.wav\tpark\r\nb.wav\tbus\r\n",  # CRLF
        b"\xef\xbb\xbffilename\tscene_label\r\na.wav\tpark\r\n\r\nb.wav\tbus",  # BOM, blank line
    ],
)
def test_read_csv_rows_line_endings(tmp_path, data):
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    header, rows = read_csv_rows(path, required=("filename",))
    assert header == ["filename", "scene_label"]
    assert rows == [{"filename": "a.wav", "scene_label": "park"}, {"filename": "b.wav", "scene_label": "bus"}]


def test_read_csv_rows_errors(tmp_path):
    with pytest.raises(ManifestError, match="file not found"):
        read_csv_rows(tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ManifestError, match="empty file"):
        read_csv_rows(tmp_path / "empty.csv")
    (tmp_path / "wide.csv").write_text("filename\na.wav\textra\n")
    with pytest.raises(ManifestError, match=r"wide\.csv:2: 2 fields, the header has 1"):
        read_csv_rows(tmp_path / "wide.csv")


def test_manifest_round_trip_and_checks(tmp_path):
    clips = [Clip("park-paris-3-3-a", "../audio/park-paris-3-3-a.wav", "park", "a", "paris", "park-paris-3"),
             Clip("x-aug", "/abs/x.flac", "bus", "a", "", "", source_id="x", augmentation="pitch")]
    path = write_manifest(tmp_path / "m" / "train.tsv", clips)
    manifest = read_manifest(path)
    assert manifest.clips == clips and manifest.is_augmented
    assert manifest.audio_path(clips[0]) == (tmp_path / "m" / "../audio/park-paris-3-3-a.wav")
    assert str(manifest.audio_path(clips[1])) == "/abs/x.flac"
    with pytest.raises(ManifestError, match="duplicate id"):
        write_manifest(tmp_path / "dup.tsv", [clips[0], clips[0]])
    (tmp_path / "twice.tsv").write_text("id\tpath\tfold\tfold\nx\tx.wav\t1\t2\n")
    with pytest.raises(ManifestError, match=r"twice.tsv: column\(s\) fold named twice in the header"):
        read_manifest(tmp_path / "twice.tsv")
    (tmp_path / "none.tsv").write_text("id\tpath\n")
    with pytest.raises(ManifestError, match="lists no clips"):
        read_manifest(tmp_path / "none.tsv")
    assert len(read_manifest(tmp_path / "none.tsv", allow_empty=True)) == 0


# --------------------------------------------------------------------------
# bad rows name the manifest and its line (issue 9, items 1 and 17)
# --------------------------------------------------------------------------
HEADER = "id\tpath\tscene\n"


def _bad_manifest(tmp_path, row: str):
    """A manifest whose bad row is on line 4 (a blank line before it counts too)."""
    path = tmp_path / "m.tsv"
    path.write_text(HEADER + "ok-1\ta.wav\tpark\n\n" + row + "\nok-2\tb.wav\tbus\n")
    return path


@pytest.mark.parametrize("row, message", [
    ('c1\t"audio/c1.wav\tpark', r"m\.tsv:4: stray quote in column 'path' \('\"audio/c1\.wav'\)"),  # the issue's
    ('c1\taudio/c1.wav\tpark"', r"m\.tsv:4: stray quote in column 'scene'"),
    ("c1\t\tpark", r"m\.tsv:4: clip 'c1' has an empty path"),                                      # the issue's
    ("c1", r"m\.tsv:4: clip 'c1' has an empty path"),
    ("../../ESCAPED\tx.wav\tpark", r"m\.tsv:4: clip id '\.\./\.\./ESCAPED' contains a path separator"),  # the issue's
    ("/tmp/ESCAPED\tx.wav\tpark", r"m\.tsv:4: clip id '/tmp/ESCAPED' is an absolute path"),
    ("c1\x1b[2J\tx.wav\tpark", r"m\.tsv:4: clip id 'c1\\x1b\[2J' contains a control character"),
    ("-c1\tx.wav\tpark", r"m\.tsv:4: clip id '-c1' starts with '-'"),
])
def test_bad_rows_name_the_manifest_and_line(tmp_path, row, message):
    path = _bad_manifest(tmp_path, row)
    with pytest.raises(ManifestError, match=message) as caught:
        read_manifest(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_a_stray_quote_does_not_swallow_the_next_rows(tmp_path):
    """Fields are never quoted: a quote is refused on its own line, not joined with the lines after it."""
    path = tmp_path / "q.tsv"
    path.write_text('filename\tscene_label\na.wav\tpark\n"b.wav\tbus\nc.wav\tbus\n')
    with pytest.raises(ManifestError, match=r"q\.tsv:3: stray quote in column 'filename'"):
        read_csv_rows(path)


def test_records_know_their_line(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("filename\n\na.wav\n\n\nb.wav\n")
    _, rows = read_csv_rows(path)
    assert rows == [{"filename": "a.wav"}, {"filename": "b.wav"}] and [r.lineno for r in rows] == [3, 6]


def test_write_manifest_refuses_ids_unfit_for_file_names(tmp_path):
    with pytest.raises(ManifestError, match=r"out\.tsv: clip id '\.\./x' contains a path separator"):
        write_manifest(tmp_path / "out.tsv", [Clip("../x", "x.wav")])
    assert not (tmp_path / "out.tsv").exists()


def test_extra_columns_are_kept_and_written_back(tmp_path):
    """(issue 14) a manifest with a `fold` column was refused: "unexpected column(s) fold"."""
    path = tmp_path / "m.tsv"
    path.write_bytes("\ufeffid\tpath\tscene\tfold\tsrc\r\n1-100-A-0\ta/1.wav\tdog\t1\t100\r\n"
                     "2-200-A-1\ta/2.wav\train\t2\r\n".encode("utf-8"))
    manifest = read_manifest(path)
    assert [c.extra for c in manifest] == [{"fold": "1", "src": "100"}, {"fold": "2", "src": ""}]
    assert manifest.clips[0].get("fold") == "1" and manifest.clips[0].get("scene") == "dog"
    assert column_values(manifest, "fold") == ["1", "2"] and column_values(manifest, "device") == ["", ""]
    with pytest.raises(ManifestError, match=r"m\.tsv: no column 'take'; it has id, path, .*, fold, src"):
        column_values(manifest, "take")
    out = write_manifest(tmp_path / "out.tsv", manifest.clips)
    lines = out.read_text().splitlines()
    assert lines[0] == "id\tpath\tscene\tdevice\tcity\tlocation\tfold\tsrc"
    assert lines[2] == "2-200-A-1\ta/2.wav\train\t\t\t\t2\t"
    assert read_manifest(out).clips == manifest.clips
    augmented = [replace(manifest.clips[0], id="x_pitch", source_id="1-100-A-0", augmentation="pitch")]
    assert read_manifest(write_manifest(tmp_path / "aug.tsv", augmented)).columns[6:] == [
        "source_id", "augmentation", "fold", "src"]
    for bad, message in (({"scene": "x"}, "extra column named 'scene'"), ({"a\tb": "1"}, "extra column named"),
                         ({"note": "a\tb"}, "column 'note' holds a tab")):
        with pytest.raises(ManifestError, match=message):
            write_manifest(tmp_path / "bad.tsv", [Clip("x", "x.wav", extra=bad)])
    assert not (tmp_path / "bad.tsv").exists()
