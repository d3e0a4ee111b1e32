"""The operator commands' argument errors: one clear line and exit 2, before any connection."""

from __future__ import annotations

import json
import tomllib

import pytest

from actors.coordinator import to_toml
from dsmt.cli import main
from dsmt.cli._command import parse_target
from dsmt.cli.scale import parse_replicas
from dsmt.errors import DsmtError


@pytest.mark.parametrize("text,expected", [
    ("s1:app/demo-app", ("s1", "/s1/app/demo-app")),
    ("s1:/s1/app/demo-app", ("s1", "/s1/app/demo-app")),
    ("s1:/app/demo-app/0", ("s1", "/s1/app/demo-app/0")),
    ("s1:app.demo-app.0", ("s1", "/s1/app/demo-app/0")),
    ("s1:commander", ("s1", "/s1/commander")),
])
def test_sliver_path_accepts_relative_absolute_and_component_forms(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["s1", ":app", "s1:", "s1:/s1", "s1:/s1/", "s1:app//x",
                                  "s1:../s2/app", "a/b:app"])
def test_sliver_path_refuses_what_names_no_actor_under_the_sliver(text):
    with pytest.raises(DsmtError):
        parse_target(text)


def test_replicas_are_a_count_or_all():
    assert parse_replicas("3") == 3 and parse_replicas("0") == 0 and parse_replicas("all") == "all"
    for bad in ("-1", "x", "1.5", ""):
        with pytest.raises(DsmtError):
            parse_replicas(bad)


def _fails(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dsmt: error:"), err
    return err[0]


@pytest.mark.parametrize("argv", [["inspect", "s1"], ["restart", "nocolon"], ["stop", "s1:"]])
def test_a_bad_sliver_path_is_one_line_before_any_key_or_slice(tmp_path, monkeypatch, capsys,
                                                               argv):
    monkeypatch.setenv("DSMT_HOME", str(tmp_path))
    line = _fails(capsys, *argv)
    assert "SLIVER:PATH" in line or "PATH must" in line


def test_a_bad_replica_count_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DSMT_HOME", str(tmp_path))
    assert "expected a count" in _fails(capsys, "scale", "demo-app", "many")


@pytest.mark.parametrize("argv", [["tree"], ["inspect", "s1:app"], ["undeploy", "x"],
                                  ["scale", "x", "2"]])
def test_without_a_slice_or_key_the_commands_say_so_in_one_line(tmp_path, monkeypatch, capsys,
                                                                 argv):
    monkeypatch.setenv("DSMT_HOME", str(tmp_path))
    assert "dsmt up" in _fails(capsys, *argv)


def test_a_missing_key_file_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DSMT_HOME", str(tmp_path))
    (tmp_path / "up.json").write_text(json.dumps({"dir": str(tmp_path / "gone")}))
    assert str(tmp_path / "gone" / "slice.key") in _fails(capsys, "inspect", "s1:app")


def test_deploy_checks_the_plan_file_before_sending_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DSMT_HOME", str(tmp_path))
    plan = tmp_path / "plan.toml"
    plan.write_text("version = 0\n")
    assert str(plan) in _fails(capsys, "deploy", str(plan))


def test_down_without_a_record_or_with_a_dead_pid_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DSMT_HOME", str(tmp_path))
    assert "dsmt up" in _fails(capsys, "down")
    (tmp_path / "up.json").write_text(json.dumps({"dir": "/nowhere", "pid": 2 ** 22 + 1}))
    assert "not running" in _fails(capsys, "down")
    assert not (tmp_path / "up.json").exists()


def test_events_refuses_xml_and_json_together(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DSMT_HOME", str(tmp_path))
    assert "exclude" in _fails(capsys, "events", "--xml", "--json")


def test_the_coordinator_writes_a_plan_back_as_toml_that_reads_the_same():
    plan = {"version": 2, "services": {"demo-app": {
        "package": 'file:///x"y', "sha256": "a" * 64, "replicas": "all", "command": ["a", "b"],
        "backoff": {"min": 0.1, "max": 10}, "env": {"A B": "c"}}, "web": {"replicas": 3}}}
    assert tomllib.loads(to_toml(plan)) == plan
