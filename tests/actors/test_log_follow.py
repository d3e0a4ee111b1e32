"""Following a log across rotations, as `dsmt logs --follow` does: real files, real copytruncate."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.process.logread import Cursor, since, tail
from actors.process.rotating import LogSpec, backup, copytruncate


def write(spec: LogSpec, text: bytes) -> None:
    with open(spec.path("out"), "ab") as f:
        f.write(text)


def rotate(spec: LogSpec) -> None:
    copytruncate(spec.path("out"), spec.backups)


def start(spec: LogSpec) -> Cursor:
    return tail(spec, "out", 10, 8192, whole=True).cursor


def test_new_lines_after_the_cursor_and_a_line_being_written_waits_until_it_is_whole(
        tmp_path):
    spec = LogSpec(tmp_path, "web-0")
    write(spec, b"old\n")
    cursor = start(spec)
    write(spec, b"one\ntw")
    chunk = since(spec, "out", cursor, 8192)
    assert (chunk.lines, chunk.more, chunk.lost, chunk.skipped) == (["one"], False, False, 0)
    assert since(spec, "out", chunk.cursor, 8192).lines == []
    write(spec, b"o\n")
    assert since(spec, "out", chunk.cursor, 8192).lines == ["two"]


def test_the_first_read_leaves_a_line_being_written_to_the_follower(tmp_path):
    spec = LogSpec(tmp_path, "web-0")
    write(spec, b"a\nb\nhalf")
    first = tail(spec, "out", 10, 8192, whole=True)
    assert first.lines == ["a", "b"]
    write(spec, b" done\n")
    assert since(spec, "out", first.cursor, 8192).lines == ["half done"]
    assert tail(spec, "out", 10, 8192).lines == ["a", "b", "half done"]


def test_after_one_rotation_the_rest_comes_from_the_first_backup_then_the_live_file(tmp_path):
    spec = LogSpec(tmp_path, "web-0", backups=3)
    write(spec, b"a\n")
    cursor = start(spec)
    write(spec, b"b\nc\n")
    rotate(spec)
    write(spec, b"d\n")
    chunk = since(spec, "out", cursor, 8192)
    assert (chunk.lines, chunk.lost) == (["b", "c", "d"], False)
    write(spec, b"e\n")
    rotate(spec)
    chunk = since(spec, "out", chunk.cursor, 8192)
    assert (chunk.lines, chunk.lost) == (["e"], False)


def test_two_rotations_between_reads_are_told_and_the_live_file_is_read_from_its_start(
        tmp_path):
    spec = LogSpec(tmp_path, "web-0", backups=3)
    write(spec, b"a\n")
    cursor = start(spec)
    for text in (b"b\n", b"c\n"):
        write(spec, text)
        rotate(spec)
    write(spec, b"d\n")
    chunk = since(spec, "out", cursor, 8192)
    assert (chunk.lines, chunk.lost) == (["d"], True)


def test_a_log_truncated_in_place_is_read_from_its_start_and_told(tmp_path):
    spec = LogSpec(tmp_path, "web-0", backups=0)
    write(spec, b"a long first line\n")
    cursor = start(spec)
    rotate(spec)
    write(spec, b"b\n")
    chunk = since(spec, "out", cursor, 8192)
    assert (chunk.lines, chunk.lost) == (["b"], True)


def test_at_most_max_bytes_per_read_and_more_says_to_read_again(tmp_path):
    spec = LogSpec(tmp_path, "web-0")
    cursor = start(spec)
    lines = [f"line {i:03d}" for i in range(100)]  # 9 bytes each, newline included
    write(spec, "".join(f"{line}\n" for line in lines).encode())
    got, reads = [], 0
    while True:
        chunk = since(spec, "out", cursor, 95)
        got += chunk.lines
        cursor, reads = chunk.cursor, reads + 1
        assert sum(len(line) + 1 for line in chunk.lines) <= 95
        if not chunk.more:
            break
    assert got == lines and reads == 10


def test_a_line_longer_than_max_bytes_is_shown_cut_rather_than_never(tmp_path):
    spec = LogSpec(tmp_path, "web-0")
    cursor = start(spec)
    write(spec, b"x" * 50)
    chunk = since(spec, "out", cursor, 20)
    assert chunk.lines == ["x" * 20] and chunk.more


def test_a_follower_too_far_behind_skips_to_the_end_and_is_told_how_much(tmp_path):
    spec = LogSpec(tmp_path, "web-0", max_bytes=None)
    cursor = start(spec)
    write(spec, b"".join(b"%05d\n" % i for i in range(1000)))  # 6,000 bytes
    chunk = since(spec, "out", cursor, 100, backlog=1000)
    assert chunk.lines == [f"{i:05d}" for i in range(984, 1000)]
    assert chunk.skipped == 6000 - 16 * 6 and not chunk.more
    assert since(spec, "out", chunk.cursor, 100, backlog=1000).lines == []


def test_a_cursor_from_the_wire_is_checked(tmp_path):
    assert Cursor.from_wire({"offset": 3, "rotation": None}) == Cursor(3, None)
    assert Cursor.from_wire(Cursor(7, "1.2").to_wire()) == Cursor(7, "1.2")
    for bad in (None, [], {"offset": 1}, {"offset": -1, "rotation": None},
                {"offset": True, "rotation": None}, {"offset": 1.5, "rotation": None},
                {"offset": 1, "rotation": 5}, {"offset": 1, "rotation": "x" * 65},
                {"offset": 1, "rotation": None, "more": 1}):
        with pytest.raises(ValueError, match="cursor"):
            Cursor.from_wire(bad)


def test_a_cursor_past_the_end_of_a_log_that_is_gone_reads_nothing_and_fails_nothing(tmp_path):
    spec = LogSpec(tmp_path, "web-0")
    chunk = since(spec, "out", Cursor(10**9, "12.34"), 8192)
    assert chunk.lines == [] and chunk.lost and not chunk.more


# What the follower shows is what was written, line for line: any writes (a line may be
# written in two pieces), any reads in between, at most one rotation between two reads, and
# any read size above the longest line.
steps = st.lists(st.one_of(
    st.tuples(st.just("write"), st.lists(st.text("abc xyz", max_size=12), max_size=4),
              st.booleans()),
    st.tuples(st.just("read"), st.integers(20, 64)),
    st.tuples(st.just("rotate"))), max_size=40)


@settings(max_examples=300, deadline=None)
@given(steps=steps, backups=st.integers(1, 3))
def test_a_follower_sees_every_line_once_in_order_across_rotations(tmp_path_factory, steps,
                                                                   backups):
    spec = LogSpec(tmp_path_factory.mktemp("follow"), "app", backups=backups)
    spec.path("out").touch()
    cursor = start(spec)
    written, seen, partial, rotated = [], [], "", False

    def read(size: int) -> Cursor:  # as the CLI does: again at once while more is waiting
        nonlocal rotated
        at = cursor
        while True:
            chunk = since(spec, "out", at, size)
            assert not chunk.lost and chunk.skipped == 0
            seen.extend(chunk.lines)
            at = chunk.cursor
            if not chunk.more:
                rotated = False
                return at

    for step in steps:
        if step[0] == "write":
            lines, finish = step[1], step[2] or bool(partial)  # lines stay under 20 bytes
            text = "".join(f"{line}\n" for line in lines) + ("" if finish else "part")
            write(spec, text.encode())
            joined = (partial + text).split("\n")
            written += joined[:-1]
            partial = joined[-1]
        elif step[0] == "read":
            cursor = read(step[1])
        elif not rotated:  # at most one rotation between two reads
            if partial:  # the rotation makes the backup's last line whole
                written.append(partial)
                partial = ""
            rotate(spec)
            rotated = True
    if partial:
        write(spec, b"\n")
        written.append(partial)
    while True:
        chunk = since(spec, "out", cursor, 64)
        assert not chunk.lost
        seen += chunk.lines
        cursor = chunk.cursor
        if not chunk.more:
            break
    assert seen == written
    assert backup(spec.path("out"), 1).exists() or not any(s[0] == "rotate" for s in steps)
