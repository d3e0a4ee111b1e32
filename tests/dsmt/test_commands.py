"""Signed commands: canonical body, sign/verify, every rejection reason, replay cache, key files."""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from dsmt import commands
from dsmt.cli import cli
from dsmt.commands import CommandRejected, ReplayCache

KEY = bytes(range(32))
NOW = 1_700_000_000.0


def sealed(key=KEY, **overrides):
    body = commands.new_body("demo", "s1", "inspect", {"path": "/s1/app"}, now=NOW)
    data = {**body.to_dict(), **overrides}
    return commands.seal(key, data), data


def reason_of(signed, key=KEY, now=NOW, replay=None, slice="demo"):
    with pytest.raises(CommandRejected) as caught:
        commands.verify(key, signed, slice=slice, now=now, replay=replay)
    return caught.value.reason


def test_a_signed_command_verifies_and_returns_its_body():
    signed, data = sealed()
    body = commands.verify(KEY, signed, slice="demo", now=NOW + 1, replay=ReplayCache())
    assert body.to_dict() == data


def test_the_canonical_body_is_sorted_compact_json():
    raw = commands.canonical({"b": 1, "a": {"y": [1, 2], "x": "é"}})
    assert raw == '{"a":{"x":"é","y":[1,2]},"b":1}'.encode()


def test_a_payload_without_signature_or_body_is_unsigned():
    signed, _ = sealed()
    assert reason_of({"body": signed["body"]}) == commands.UNSIGNED
    assert reason_of({"body": signed["body"], "sig": ""}) == commands.UNSIGNED
    assert reason_of({"command": "restart"}) == commands.UNSIGNED
    assert reason_of("restart everything") == commands.UNSIGNED


def test_a_changed_body_or_signature_is_forged():
    signed, _ = sealed()
    tampered = signed["body"].replace('"inspect"', '"restart"')
    assert reason_of({"body": tampered, "sig": signed["sig"]}) == commands.FORGED
    assert reason_of({"body": signed["body"], "sig": "00" * 32}) == commands.FORGED
    assert reason_of({"body": signed["body"], "sig": "not hex"}) == commands.FORGED


def test_a_command_signed_with_another_key_is_forged():
    signed, _ = sealed(key=b"k" * 32)
    assert reason_of(signed) == commands.FORGED


def test_a_verifier_without_a_key_rejects_everything():
    signed, _ = sealed()
    assert reason_of(signed, key=None) == commands.NO_KEY


def test_a_stale_command_is_rejected():
    signed, _ = sealed()
    assert reason_of(signed, now=NOW + 31) == commands.STALE


def test_a_command_from_beyond_the_window_in_the_future_is_rejected():
    signed, _ = sealed()
    assert reason_of(signed, now=NOW - 31) == commands.STALE


def test_a_replayed_nonce_is_rejected_within_the_window():
    replay = ReplayCache()
    signed, _ = sealed()
    commands.verify(KEY, signed, slice="demo", now=NOW, replay=replay)
    assert reason_of(signed, now=NOW + 5, replay=replay) == commands.REPLAYED


def test_a_command_for_another_slice_is_rejected():
    signed, _ = sealed(slice="other")
    assert reason_of(signed) == commands.WRONG_SLICE


@pytest.mark.parametrize("change", [
    {"ts": "yesterday"}, {"ts": float("nan")}, {"args": [1]}, {"target": ""},
    {"nonce": "ab"}, {"request": "a/b"}, {"extra": 1},
])
def test_a_signed_body_that_breaks_the_spec_is_malformed(change):
    body = commands.new_body("demo", "s1", "inspect", now=NOW).to_dict()
    body.update(change)
    raw = json.dumps(body)  # not canonical: the signature covers the text as sent
    signed = {"body": raw, "sig": commands._mac(KEY, raw.encode())}
    assert reason_of(signed) == commands.MALFORMED


def test_signed_non_json_is_malformed():
    signed = {"body": "{nope", "sig": commands._mac(KEY, b"{nope")}
    assert reason_of(signed) == commands.MALFORMED


def test_a_rejection_names_the_request_of_the_body_even_when_forged():
    signed, data = sealed()
    with pytest.raises(CommandRejected) as caught:
        commands.verify(KEY, {**signed, "sig": "00"}, slice="demo", now=NOW)
    assert caught.value.request == data["request"]


def test_the_replay_cache_forgets_nonces_once_their_commands_are_stale():
    replay = ReplayCache(max_age=30)
    for i in range(100):
        replay.add(f"{i:032x}", NOW, NOW)
    assert len(replay) == 100
    replay.evict(NOW + 31)
    assert len(replay) == 0


def test_a_full_replay_cache_refuses_rather_than_forgets():
    replay = ReplayCache(max_age=30, capacity=2)
    replay.add("a" * 32, NOW, NOW)
    replay.add("b" * 32, NOW, NOW)
    with pytest.raises(CommandRejected) as caught:
        replay.add("c" * 32, NOW, NOW + 1)
    assert caught.value.reason == commands.OVERLOADED


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12)


@given(args=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
       command=st.text(min_size=1, max_size=12), target=st.sampled_from(["*", "s1", "é-2"]),
       ts=st.floats(min_value=0, max_value=4e9))
def test_every_body_round_trips_through_its_canonical_encoding_and_verifies(args, command,
                                                                             target, ts):
    body = commands.new_body("demo", target, command, args, now=ts)
    signed = commands.seal(KEY, body)
    assert commands.canonical(json.loads(signed["body"])) == signed["body"].encode()
    assert commands.verify(KEY, signed, slice="demo", now=ts) == body
    assert commands.sign(KEY, body) == signed["sig"]


def test_write_key_makes_a_private_file_that_load_key_reads(tmp_path):
    path = tmp_path / "slice.key"
    key = commands.write_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 32 and commands.load_key(path) == key


def test_write_key_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "slice.key"
    first = commands.write_key(path)
    with pytest.raises(commands.KeyFileError, match="exists"):
        commands.write_key(path)
    assert commands.load_key(path) == first
    second = commands.write_key(path, force=True)
    assert second != first and commands.load_key(path) == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_load_key_refuses_a_group_or_world_readable_file(tmp_path):
    path = tmp_path / "slice.key"
    commands.write_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(commands.KeyFileError, match="readable by group or others"):
        commands.load_key(path)


def test_load_key_refuses_what_is_not_a_key(tmp_path):
    path = tmp_path / "slice.key"
    path.write_text("hello\n")
    path.chmod(0o600)
    with pytest.raises(commands.KeyFileError, match="not a hex key"):
        commands.load_key(path)
    with pytest.raises(commands.KeyFileError, match="cannot read"):
        commands.load_key(tmp_path / "missing.key")


def test_dsmt_keys_init_writes_a_key_and_refuses_to_overwrite_it(tmp_path):
    path = tmp_path / "slice.key"
    result = CliRunner().invoke(cli, ["keys", "init", str(path)])
    assert result.exit_code == 0, result.output
    key = commands.load_key(path)
    again = CliRunner().invoke(cli, ["keys", "init", str(path)])
    assert again.exit_code != 0 and commands.load_key(path) == key
    forced = CliRunner().invoke(cli, ["keys", "init", "--force", str(path)])
    assert forced.exit_code == 0 and commands.load_key(path) != key


def test_a_replay_cache_on_a_database_remembers_nonces_across_a_restart_until_they_expire(
        tmp_path):
    import time

    db = tmp_path / "state.db"
    now = time.time()
    first = ReplayCache(max_age=30, path=db)
    first.add("a" * 32, now, now)
    first.add("b" * 32, now - 29.5, now)   # expires in half a second
    assert first.persisted
    first.close()

    second = ReplayCache(max_age=30, path=db)  # a new node process opening the same file
    assert "a" * 32 in second
    with pytest.raises(CommandRejected) as caught:
        second.add("a" * 32, now, now + 1)
    assert caught.value.reason == commands.REPLAYED
    second.evict(now + 31)
    second.close()
    assert len(ReplayCache(max_age=30, path=db)) == 0  # expired ones are gone from the file


def test_an_unusable_replay_database_is_reported_and_the_cache_keeps_working_in_memory(
        tmp_path):
    bad = tmp_path / "state.db"
    bad.write_bytes(b"this is not an SQLite database" * 100)
    replay = ReplayCache(max_age=30, path=bad)
    replay.add("a" * 32, NOW, NOW)
    assert not replay.persisted and "state.db" in replay.persist_error
    with pytest.raises(CommandRejected):
        replay.add("a" * 32, NOW, NOW)
