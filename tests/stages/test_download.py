"""Tests of ``asctool download`` (asctool.stages.download): the network is mocked, never used."""
from __future__ import annotations

import hashlib
import io
from urllib.error import URLError

import pytest
from click.testing import CliRunner

from asctool.cli import cli
from asctool.embeddings import fetch, openl3
from test_embeddings_openl3 import write_weight_file

URL = "https://github.com/marl/openl3/raw/models/openl3_audio_mel128_env-v0_4_0.h5.gz"


@pytest.fixture()
def served(tmp_path, monkeypatch):
    """``served(body)``: urlopen answers ``body`` (bytes) and records the URLs asked for."""
    asked = []

    def serve(body):
        def urlopen(url, timeout=None):
            asked.append(url)
            if isinstance(body, Exception):
                raise body
            return io.BytesIO(body)
        monkeypatch.setattr(fetch, "urlopen", urlopen)
        return asked
    return serve


def test_download_writes_the_official_file(tmp_path, served):
    source = tmp_path / "src.h5.gz"
    write_weight_file(source, gz=True, seed=2)
    asked = served(source.read_bytes())
    result = CliRunner().invoke(cli, ["download", "openl3", "--input-repr", "mel128", "--content-type", "env",
                                      "--out-dir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    assert asked == [URL] == [openl3.weight_url("mel128", "env")]
    out = tmp_path / "w" / "openl3_audio_mel128_env-v0_4_0.h5.gz"
    assert out.read_bytes() == source.read_bytes()
    assert hashlib.sha256(source.read_bytes()).hexdigest() in result.output
    assert "CC BY 4.0" in result.output
    assert len(openl3.read_weight_file(out)) == 16
    again = CliRunner().invoke(cli, ["download", "openl3", "--input-repr", "mel128", "--content-type", "env",
                                     "--out-dir", str(tmp_path / "w")])
    assert again.exit_code == 1 and "already exists (use --force to overwrite)" in again.output


def test_bad_download_leaves_nothing(tmp_path, served, one_line_error, tree):
    served(b"<html>not found</html>")
    result = CliRunner().invoke(cli, ["download", "openl3", "--out-dir", str(tmp_path / "w")])
    one_line_error(result, "openl3_audio_mel256_music-v0_4_0.h5.gz: the download is not a whole OpenL3 weight file")
    assert tree(tmp_path / "w") == []
    served(URLError("no route to host"))
    result = CliRunner().invoke(cli, ["download", "openl3", "--out-dir", str(tmp_path / "w")])
    one_line_error(result, "download failed (no route to host)")
    assert tree(tmp_path / "w") == []
