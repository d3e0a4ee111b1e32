"""The process OS layer with real processes: spawn, exit detection, stop, logs, adoption.

Every test is bounded (pytest-timeout and ``wait_for`` bounds) and leaves no
process behind: the ``reaper`` fixture fails a test whose process groups
still have live members at teardown, and kills them in any case.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from actors.process import (
    Command,
    ExitWatcher,
    LogRotator,
    LogSpec,
    ProcessRecord,
    adopt,
    copytruncate,
    spawn,
    stop,
)
from actors.process.testing import GroupReaper
from dsmt.testing import wait_for

pytestmark = pytest.mark.timeout(30)

PY = sys.executable
BOUND = 5.0


@pytest.fixture
def reaper():
    reaper = GroupReaper()
    yield reaper
    try:
        wait_for(lambda: not reaper.survivors(), 2.0,
                 lambda: f"no process left behind, but {reaper.survivors()} still run")
    finally:
        reaper.kill_all()


def py(code: str, **kwargs) -> Command:
    return Command((PY, "-u", "-c", code), **kwargs)


def start(reaper: GroupReaper, command: Command, logs: LogSpec | None = None, **kw):
    return reaper.track(spawn(command, logs, **kw))


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


WAIT_FOREVER = "import signal; print('ready', flush=True); signal.pause()"


def test_exit_code_is_reported_when_the_process_ends(reaper):
    handle = start(reaper, py("import sys; sys.exit(3)"))
    status = handle.exited.result(BOUND)
    assert (status.code, status.signal, status.returncode) == (3, None, 3)
    assert handle.popen.returncode == 3


def test_kill_minus_nine_is_seen_within_milliseconds(reaper, tmp_path):
    logs = LogSpec(tmp_path, "app")
    handle = start(reaper, py(WAIT_FOREVER), logs)
    wait_for(lambda: "ready" in read(logs.path("out")), BOUND, "the child to be ready")
    killed = time.monotonic()
    os.kill(handle.pid, signal.SIGKILL)
    status = handle.exited.result(BOUND)
    seen = time.monotonic() - killed
    assert status.signal == signal.SIGKILL and str(status) == "killed by SIGKILL"
    assert seen < 0.05, f"exit seen after {seen * 1000:.1f} ms"


def test_spawn_applies_env_and_cwd_and_starts_a_new_process_group(reaper, tmp_path):
    code = ("import os; print(os.environ['GREETING'], os.getcwd(), "
            "os.getpgid(0) == os.getpid(), os.getsid(0) == os.getpid())")
    logs = LogSpec(tmp_path / "logs", "app")
    handle = start(reaper, py(code, env={"GREETING": "hello"}, cwd=tmp_path), logs)
    assert handle.exited.result(BOUND).code == 0
    assert read(logs.path("out")).split() == ["hello", str(tmp_path), "True", "True"]
    assert handle.pgid == handle.pid
    assert handle.record == ProcessRecord(handle.pid, handle.create_time, handle.pid)


def test_an_environment_that_is_not_inherited_is_the_whole_environment(reaper, tmp_path):
    logs = LogSpec(tmp_path, "app")
    command = Command((PY, "-c", "import os; print(sorted(os.environ))"),
                      env={"ONLY": "1"}, inherit_env=False)
    start(reaper, command, logs).exited.result(BOUND)
    wait_for(lambda: read(logs.path("out")), BOUND)
    assert "'ONLY'" in read(logs.path("out")) and "'PATH'" not in read(logs.path("out"))


def test_a_missing_program_raises_and_leaves_nothing_behind(tmp_path):
    with pytest.raises(FileNotFoundError):
        spawn(Command((str(tmp_path / "nope"),)), LogSpec(tmp_path, "app"))


ROUNDS = """
import signal, sys
signal.signal(signal.SIGUSR1, lambda *_: None)
for n in range(1, 4):
    sys.stdout.write(str(n) * 2999 + "\\n")
    sys.stdout.flush()
    signal.pause()
sys.stderr.write("E" * 100)
"""


def test_a_full_log_is_copied_to_a_backup_and_truncated_while_the_process_writes_on(
        reaper, tmp_path):
    logs = LogSpec(tmp_path, "app", max_bytes=2500, backups=2)
    rotator = LogRotator(interval=3600)  # rotations happen when the test calls check()
    handle = start(reaper, py(ROUNDS), logs, rotator=rotator)
    out = logs.path("out")
    for n in range(1, 4):
        wait_for(lambda: out.exists() and out.stat().st_size == 3000, BOUND, f"round {n}")
        assert rotator.check() == [out]
        assert out.stat().st_size == 0
        os.kill(handle.pid, signal.SIGUSR1)
    handle.exited.result(BOUND)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["app.err.log", "app.out.log", "app.out.log.1", "app.out.log.2"]
    assert Path(f"{out}.1").read_text() == "3" * 2999 + "\n"  # the newest backup
    assert Path(f"{out}.2").read_text() == "2" * 2999 + "\n"  # round 1 was deleted
    assert read(out) == "" and read(logs.path("err")) == "E" * 100
    assert rotator.check() == []  # the process is gone: its logs are not watched any more


def test_the_rotator_rotates_on_its_own_timer(reaper, tmp_path):
    logs = LogSpec(tmp_path, "app", max_bytes=100, backups=1)
    rotator = LogRotator(interval=0.02)
    try:
        handle = start(reaper, py("import signal; print('x' * 500); signal.pause()"), logs,
                       rotator=rotator)
        backup = Path(f"{logs.path('out')}.1")
        wait_for(lambda: read(backup) == "x" * 500 + "\n", BOUND, "the timer's rotation")
        stop(handle).result(BOUND)
    finally:
        rotator.close()


def test_copytruncate_without_backups_truncates_in_place(tmp_path):
    path = tmp_path / "app.out.log"
    path.write_text("x" * 10)
    assert copytruncate(path, 0) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.out.log"] and read(path) == ""


def test_no_rotation_without_a_size_limit(reaper, tmp_path):
    logs = LogSpec(tmp_path, "app", max_bytes=None)
    rotator = LogRotator(interval=3600)
    handle = start(reaper, py("print('x' * 5000)"), logs, rotator=rotator)
    handle.exited.result(BOUND)
    assert rotator.check() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.err.log", "app.out.log"]


NODE = """
import signal, sys
sys.path.insert(0, {root!r})
from actors.process import Command, LogSpec, spawn
child = spawn(Command((sys.executable, "-u", "-c", {child!r})), LogSpec({logs!r}, "app"))
print(child.pid, flush=True)
signal.pause()
"""

# SIGUSR1 blocked and taken with sigwait: a handler + pause() loop loses a signal that
# lands between the handler's return and the next pause() (it then waits for another).
TICKS = """
import signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
print("ready")
ticks = 0
while True:
    signal.sigwait({signal.SIGUSR1})
    ticks += 1
    print("tick", ticks)
"""


def test_a_service_keeps_writing_its_log_after_the_node_that_spawned_it_is_killed(
        reaper, tmp_path):
    root = str(Path(__file__).resolve().parents[2])
    node = subprocess.Popen([PY, "-c", NODE.format(root=root, child=TICKS, logs=str(tmp_path))],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    reaper.track(node.pid)
    child = int(node.stdout.readline())
    reaper.track(child)
    out = tmp_path / "app.out.log"
    wait_for(lambda: "ready" in read(out), BOUND, "the service to be ready")
    os.kill(node.pid, signal.SIGKILL)
    assert node.wait(BOUND) == -signal.SIGKILL
    for n in (1, 2):
        os.kill(child, signal.SIGUSR1)
        wait_for(lambda: f"tick {n}\n" in read(out), BOUND, f"tick {n} in the log")
    assert alive(child)  # no SIGPIPE: nothing of the node sat between it and its log
    os.kill(child, signal.SIGKILL)


GROUP_IGNORING_TERM = """
import os, signal, subprocess, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, '-c',
    'import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.pause()'])
print('grandchild', child.pid, flush=True)
signal.pause()
"""

LEADER_EXITS_ON_TERM = """
import os, signal, subprocess, sys
child = subprocess.Popen([sys.executable, '-c',
    'import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); '
    'print(1, flush=True); signal.pause()'],
    stdout=subprocess.PIPE)
child.stdout.readline()
print('grandchild', child.pid, flush=True)
signal.pause()
"""


def grandchild(logs: LogSpec) -> int:
    found = wait_for(lambda: re.search(r"grandchild (\d+)\n", read(logs.path("out"))),
                     BOUND, "the grandchild's pid")  # a whole line: -u writes it in pieces
    return int(found.group(1))


def test_stop_escalates_to_sigkill_of_the_whole_group_after_the_grace(reaper, tmp_path):
    logs = LogSpec(tmp_path, "app")
    handle = start(reaper, py(GROUP_IGNORING_TERM), logs)
    grand = grandchild(logs)
    began = time.monotonic()
    status = stop(handle, grace=0.3).result(BOUND)
    took = time.monotonic() - began
    assert status.signal == signal.SIGKILL
    assert 0.3 <= took < 2.0
    wait_for(lambda: not alive(grand), BOUND, "the grandchild to be killed")


def test_stop_kills_what_the_leader_leaves_behind_in_its_group(reaper, tmp_path):
    logs = LogSpec(tmp_path, "app")
    handle = start(reaper, py(LEADER_EXITS_ON_TERM), logs)
    grand = grandchild(logs)
    status = stop(handle, grace=30).result(BOUND)  # resolves long before the grace
    assert status.signal == signal.SIGTERM
    wait_for(lambda: not alive(grand), BOUND, "the grandchild to be killed")


def test_stop_does_not_block_the_caller_and_resolves_for_a_dead_process(reaper):
    handle = start(reaper, py("pass"))
    handle.exited.result(BOUND)
    assert stop(handle).result(0).code == 0


def test_the_waiter_thread_fallback_also_sees_exits_at_once(reaper, tmp_path):
    watcher = ExitWatcher(use_pidfd=False)
    logs = LogSpec(tmp_path, "app")
    handle = start(reaper, py(WAIT_FOREVER), logs, watcher=watcher)
    wait_for(lambda: "ready" in read(logs.path("out")), BOUND)
    killed = time.monotonic()
    os.kill(handle.pid, signal.SIGKILL)
    assert handle.exited.result(BOUND).signal == signal.SIGKILL
    assert time.monotonic() - killed < 0.05


# --- re-adoption ----------------------------------------------------------------

FOSTER = """
import subprocess, sys
child = subprocess.Popen([sys.executable, '-c', 'import signal; signal.pause()'],
                         start_new_session=True)
print(child.pid, flush=True)
sys.stdin.readline()
child.kill(); child.wait()
"""


@pytest.fixture
def foreign(reaper):
    """A live process that is not our child (its parent is our child), as after an agent restart."""
    parent = subprocess.Popen([PY, "-c", FOSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    reaper.track(parent.pid)
    pid = int(parent.stdout.readline())
    reaper.track(pid)
    yield pid
    parent.stdin.close()
    parent.wait(BOUND)


def test_adoption_watches_a_journaled_process_that_is_not_our_child(foreign):
    record = ProcessRecord(foreign, psutil.Process(foreign).create_time(), foreign)
    handle = adopt(record)
    assert handle is not None and handle.adopted and handle.pgid == foreign
    killed = time.monotonic()
    os.kill(foreign, signal.SIGKILL)
    status = handle.exited.result(BOUND)
    assert time.monotonic() - killed < 0.05
    assert not status.known and status.returncode is None


def test_an_adopted_process_has_its_logs_rotated_again_while_it_lives(foreign, tmp_path):
    logs = LogSpec(tmp_path, "app", max_bytes=10, backups=1)
    logs.path("out").write_text("written before the node restarted\n")
    rotator = LogRotator(interval=3600)
    handle = adopt(ProcessRecord(foreign, psutil.Process(foreign).create_time(), foreign), logs,
                   rotator=rotator)
    assert handle is not None
    assert rotator.check() == [logs.path("out")]
    assert read(Path(f"{logs.path('out')}.1")) == "written before the node restarted\n"
    os.kill(foreign, signal.SIGKILL)
    handle.exited.result(BOUND)
    logs.path("out").write_text("written after it exited\n")
    assert rotator.check() == []


def test_adoption_refuses_a_pid_reused_by_another_process(foreign):
    reused = ProcessRecord(foreign, psutil.Process(foreign).create_time() - 3600.0)
    assert adopt(reused) is None


def test_adoption_refuses_a_process_that_is_gone(reaper):
    handle = start(reaper, py("pass"))
    handle.exited.result(BOUND)
    assert adopt(handle.record) is None


def test_adoption_refuses_a_process_in_another_group(foreign):
    record = ProcessRecord(foreign, psutil.Process(foreign).create_time(), pgid=os.getpgid(0))
    assert adopt(record) is None


def test_a_journal_record_round_trips_through_a_dict():
    record = ProcessRecord(42, 1.7e9 + 0.25, 42)
    assert ProcessRecord.from_dict(record.to_dict()) == record
