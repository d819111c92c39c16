"""asctool.layouts: metadata tables and layout detection (the prepare stage's tests use whole trees)."""
from __future__ import annotations

import pytest

from asctool.errors import ManifestError
from asctool.layouts import detect_layout, read_table


def test_read_table_comma_or_tab_bom_crlf_quotes(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b'\xef\xbb\xbffilename,category\r\n\r\na.wav,"crow, cawing"\r\nb.wav,dog')
    header, records = read_table(path)
    assert header == ["filename", "category"]
    assert [dict(r) for r in records] == [{"filename": "a.wav", "category": "crow, cawing"},
                                          {"filename": "b.wav", "category": "dog"}]
    assert [r.lineno for r in records] == [3, 4]
    path.write_text("filename\tcategory\na.wav\tdog,cat\nb.wav\n")
    assert [dict(r) for r in read_table(path)[1]] == [{"filename": "a.wav", "category": "dog,cat"},
                                                      {"filename": "b.wav", "category": ""}]
    for text, message in (("a,a\n1,2\n", r"m\.csv: column\(s\) a named twice"),
                          ("a,b\n1,2,3\n", r"m\.csv:2: 3 fields, the header has 2"),
                          ("\n\n", r"m\.csv: empty file")):
        path.write_text(text)
        with pytest.raises(ManifestError, match=message):
            read_table(path)


def test_detect_layout(tmp_path):
    (tmp_path / "tau" / "evaluation_setup").mkdir(parents=True)
    assert detect_layout(tmp_path / "tau") == "tau"                       # no split file: TAU says which is missing
    (tmp_path / "tau" / "evaluation_setup" / "fold1_test.csv").write_text("filename\n")
    assert detect_layout(tmp_path / "tau") == "eval"
    assert detect_layout(tmp_path / "tau", setup="fold2") == "tau"
    (tmp_path / "csv" / "meta").mkdir(parents=True)
    (tmp_path / "csv" / "meta" / "m.csv").write_text("filename,label\n")
    assert detect_layout(tmp_path / "csv") == "metadata"
    for name in ("a/x.wav", "b/y.flac"):
        (tmp_path / "dirs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "dirs" / name).write_text("")
    assert detect_layout(tmp_path / "dirs") == "folders"
    (tmp_path / "dirs" / "audio").mkdir()
    (tmp_path / "dirs" / "audio" / "z.wav").write_text("")
    assert detect_layout(tmp_path / "dirs") == "eval"                     # an audio/ folder: an evaluation set
    with pytest.raises(ManifestError, match="dataset root not found"):
        detect_layout(tmp_path / "nowhere")
