"""asctool.registry: the name -> entry table of every extension point."""
from __future__ import annotations

import doctest

import pytest

import asctool.registry
from asctool.errors import AsctoolError, ConfigError
from asctool.registry import Registry


def _filled(**kwargs) -> Registry[int]:
    table: Registry[int] = Registry("toy", **kwargs)
    for value, name in enumerate(["beta", "alpha", "gamma"]):
        table.add(name, value)
    return table


def test_entries_in_registration_order():
    table = _filled()
    assert table.names() == ["beta", "alpha", "gamma"] == list(table)
    assert table.values() == [0, 1, 2]
    assert table.items() == [("beta", 0), ("alpha", 1), ("gamma", 2)]
    assert len(table) == 3 and "alpha" in table and "delta" not in table
    assert table.get("gamma") == 2


def test_sorted_names_keep_entries_in_registration_order():
    table = _filled(sort=True)
    assert table.names() == ["alpha", "beta", "gamma"] == list(table)
    assert table.values() == [0, 1, 2]


def test_a_name_registered_twice_is_refused_and_the_first_entry_kept():
    table = _filled()
    with pytest.raises(ValueError, match="^toy 'alpha' registered twice$"):
        table.add("alpha", 9)
    with pytest.raises(ValueError, match="^toy 'beta' registered twice$"):
        table.check_new("beta")
    table.check_new("delta")
    assert table.get("alpha") == 1 and len(table) == 3


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"^unknown toy 'delta'; known: beta, alpha, gamma$"):
        _filled().get("delta")


def test_the_message_and_error_type_are_the_kinds():
    table = _filled(unknown="--method {name!r}: unknown {kind}; known: {known}", error=AsctoolError, sort=True)
    with pytest.raises(AsctoolError, match=r"^--method 'delta': unknown toy; known: alpha, beta, gamma$") as info:
        table.get("delta")
    assert not isinstance(info.value, ConfigError)


def test_remove_takes_a_toy_entry_out_again():
    table = _filled()
    table.add("toy", 7)
    assert table.remove("toy") == 7
    assert "toy" not in table and table.names() == ["beta", "alpha", "gamma"]
    table.add("toy", 8)   # free again
    assert table.get("toy") == 8
    with pytest.raises(KeyError):
        table.remove("nope")


def test_the_docstring_example():
    result = doctest.testmod(asctool.registry)
    assert result.attempted > 0 and result.failed == 0
