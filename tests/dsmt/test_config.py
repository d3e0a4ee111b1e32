"""Configuration errors name the file, the key and what is wrong."""

from __future__ import annotations

import pytest

from dsmt import config
from dsmt.errors import ConfigError


def test_a_wrong_type_names_file_key_and_value(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text('[limits]\nmemory = "lots"\n')
    with pytest.raises(ConfigError) as info:
        config.load(path).table("limits").number("memory")
    assert str(info.value) == f"{path}: limits.memory: expected a number, got 'lots'"


def test_bad_toml_is_a_config_error_not_a_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("slice = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(path)


def test_a_missing_file_is_reported_by_name(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "nope.toml")


def test_infinity_is_none_and_durations_are_floats():
    table = config.loads('a = "infinity"\nb = 3\n')
    assert table.duration("a") is None
    assert table.duration("b") == 3.0
    assert table.duration("c", 5.0) == 5.0


def test_an_unknown_key_is_refused_as_a_typo():
    table = config.loads("slice = 'x'\nsliver_nmae = 'y'\n")
    table.str("slice")
    with pytest.raises(ConfigError, match="sliver_nmae: unknown key"):
        table.done()


def test_booleans_are_not_accepted_as_numbers():
    with pytest.raises(ConfigError, match="expected an integer"):
        config.loads("replicas = true").int("replicas")


def test_choices_and_minimums_are_enforced():
    table = config.loads('restart = "sometimes"\nreplicas = -1\n')
    with pytest.raises(ConfigError, match="expected one of"):
        table.str("restart", choices=("permanent", "transient", "temporary"))
    with pytest.raises(ConfigError, match="must be >= 0"):
        table.int("replicas", min=0)


def test_relative_paths_are_taken_from_the_files_folder(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text('key_file = "slice.key"\n')
    assert config.load(path).path("key_file") == tmp_path / "slice.key"
