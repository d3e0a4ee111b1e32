"""The install step: a time-bounded command in its own process group, output captured to a log."""

from __future__ import annotations

import os
import sys

import pytest

from dsmt.testing import wait_for

from actors.deploy.errors import InstallError
from actors.deploy.install import run_step

pytestmark = pytest.mark.timeout(20)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_successful_step_logs_its_output(tmp_path):
    log = tmp_path / "install.log"
    run_step([sys.executable, "-c", "print('hello from install')"], cwd=tmp_path, log=log,
             timeout=10)
    text = log.read_text()
    assert "=== install command:" in text and "hello from install" in text


def test_a_failing_step_raises_with_exit_code_and_output_tail(tmp_path):
    log = tmp_path / "install.log"
    script = "import sys\nfor i in range(50): print('line', i)\nsys.exit(7)"
    with pytest.raises(InstallError) as info:
        run_step([sys.executable, "-c", script], cwd=tmp_path, log=log, timeout=10)
    error = info.value
    assert error.returncode == 7 and error.stage == "install" and error.log == log
    assert error.tail.splitlines()[-1] == "line 49" and "line 29" not in error.tail
    assert "exited with code 7" in str(error) and "line 49" in str(error)


def test_a_step_that_runs_too_long_is_killed_with_its_whole_group(tmp_path):
    log = tmp_path / "install.log"
    pidfile = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pidfile}; echo started; wait"
    with pytest.raises(InstallError) as info:
        run_step(["sh", "-c", script], cwd=tmp_path, log=log, timeout=0.5, grace=1.0)
    assert info.value.returncode is None
    assert "timed out" in str(info.value) and "started" in info.value.tail
    child = int(pidfile.read_text())
    wait_for(lambda: not _alive(child), timeout=5, message="the grandchild to be killed")


def test_a_step_that_ignores_sigterm_is_killed(tmp_path):
    script = ("import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
              "print('ready', flush=True)\nwhile True: signal.pause()")
    with pytest.raises(InstallError, match="timed out") as info:
        run_step([sys.executable, "-c", script], cwd=tmp_path, log=tmp_path / "l", timeout=0.5,
                 grace=0.2)
    assert "ready" in info.value.tail, "SIGTERM was ignored, so SIGKILL ended it"


def test_a_missing_program_is_an_install_error(tmp_path):
    with pytest.raises(InstallError, match="cannot start 'no-such-program-x'") as info:
        run_step(["no-such-program-x"], cwd=tmp_path, log=tmp_path / "l", timeout=5)
    assert info.value.returncode == 127


def test_the_tail_is_only_this_runs_output(tmp_path):
    log = tmp_path / "install.log"
    log.write_text("old run output\n")
    with pytest.raises(InstallError) as info:
        run_step(["sh", "-c", "echo new; exit 1"], cwd=tmp_path, log=log, timeout=5)
    assert "old run" not in info.value.tail and "new" in info.value.tail
