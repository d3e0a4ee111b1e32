"""The end of a process's log, as `dsmt logs` gets it: live file, rotated file, limits."""

from __future__ import annotations

from actors.process.logread import tail
from actors.process.rotating import LogSpec, copytruncate


def write(spec: LogSpec, text: bytes, stream: str = "out") -> None:
    with open(spec.path(stream), "ab") as f:
        f.write(text)


def test_the_last_lines_of_the_live_file_and_whether_earlier_ones_were_left_out(tmp_path):
    spec = LogSpec(tmp_path, "web-0")
    write(spec, b"".join(b"line %d\n" % i for i in range(10)))
    assert tail(spec, "out", 3, 8192)[:2] == (["line 7", "line 8", "line 9"], True)
    assert tail(spec, "out", 10, 8192)[:2] == ([f"line {i}" for i in range(10)], False)
    write(spec, b"oops\n", "err")
    assert tail(spec, "err", 5, 8192)[:2] == (["oops"], False)


def test_just_after_a_rotation_the_lines_before_it_come_from_the_first_backup(tmp_path):
    spec = LogSpec(tmp_path, "web-0")
    write(spec, b"a\nb\nc\n")
    copytruncate(spec.path("out"), backups=2)
    write(spec, b"d\n")
    assert tail(spec, "out", 3, 8192)[:2] == (["b", "c", "d"], True)
    assert tail(spec, "out", 9, 8192)[:2] == (["a", "b", "c", "d"], False)


def test_at_most_max_bytes_are_read_and_a_line_cut_by_the_limit_is_left_out(tmp_path):
    spec = LogSpec(tmp_path, "web-0")
    write(spec, b"x" * 100 + b"\nshort\n")
    assert tail(spec, "out", 5, 20)[:2] == (["short"], True)


def test_bytes_that_are_not_utf8_are_replaced_and_a_missing_log_is_empty(tmp_path):
    spec = LogSpec(tmp_path, "web-0")
    assert tail(spec, "out", 5, 8192)[:2] == ([], False)
    write(spec, b"caf\xe9\n")
    assert tail(spec, "out", 5, 8192)[:2] == (["caf\ufffd"], False)
