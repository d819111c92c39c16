"""Fixtures the stage tests share: the one-line error check (``read_only_dir`` is in tests/conftest.py)."""
from __future__ import annotations


import pytest


def _one_line(result, *needles: str, code: int = 1) -> str:
    """The CLI ``result`` failed with exit ``code`` and one ``Error:`` line holding every needle."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture()
def one_line_error():
    """``one_line_error(result, *needles, code=1)``: see :func:`_one_line`."""
    return _one_line


@pytest.fixture()
def tree():
    """``tree(folder)``: every path under ``folder`` (to assert that nothing new was written)."""
    return lambda folder: sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
