"""The dsmt command line: user errors are one clear line and a non-zero exit."""

from __future__ import annotations

import pytest

from dsmt.cli import COMMANDS, cli, main


def test_every_listed_command_loads_and_has_a_help_line():
    for name in COMMANDS:
        command = cli.get_command(None, name)
        assert command is not None and command.help, name


def test_status_without_a_slice_says_what_to_do_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DSMT_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as info:
        main(["status"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dsmt up" in err[0] and "--router" in err[0]


def test_a_bad_node_config_names_file_and_key(tmp_path, capsys):
    config = tmp_path / "node.toml"
    config.write_text('slice = "demo"\nsliver = "a/b"\nworkspace = "ws"\n')
    with pytest.raises(SystemExit) as info:
        main(["node", "--config", str(config)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dsmt: error:") and f"{config}: sliver:" in err and "\n" not in err


def test_debug_shows_the_traceback_instead(tmp_path, monkeypatch):
    monkeypatch.setenv("DSMT_HOME", str(tmp_path))
    from dsmt.errors import DsmtError
    with pytest.raises(DsmtError):
        main(["--debug", "status"])
