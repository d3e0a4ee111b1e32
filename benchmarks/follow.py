"""Following a log from afar: what ``dsmt logs -f`` costs a sliver, and how soon a line shows.

``python -m benchmarks follow [--seconds 10] [--rounds 3] [--lines 20]``
(JSON on stdout, progress on stderr)

One ``dsmt up --slivers 2`` (a PsEPR router, two nodes, the demo app; its
instance on s1 logs each HTTP request on stderr). Then:

- **cost**: ``--rounds`` pairs of ``--seconds`` windows, s1's node and the
  router measured as :mod:`benchmarks.idle` measures them (CPU ms per
  second, every thread), first with nobody following, then while one
  ``dsmt logs -f --err s1:app.demo-app.0`` (one read every ``--interval``
  seconds, 1 by default) follows the instance; the difference per pair is
  what a follower costs the sliver and the router, and divided by the reads
  s1's commander counted meanwhile, what one read costs them (a short
  interval makes that figure stand out of the node's own noise). The
  follower's own CPU is measured in the same window.
- **latency**: ``--lines`` requests to the instance, each for a path of its
  own that the demo app logs; the time from sending it to its line printed
  by ``dsmt logs -f`` (the default 1 s interval, and ``--interval 0.2``),
  and, as the floor measured in the same run, by ``tail -F`` of the same
  file on the sliver's own disk (what one logged into the machine sees).
  Requests are spaced by a random pause so they fall anywhere in a poll.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from benchmarks._stats import spread
from benchmarks._proc import measure
from benchmarks.idle import START_TIMEOUT, _await_line, _pids
from benchmarks._restart_tools import REPO

SETTLE = 5.0
LINE_TIMEOUT = 10.0
TARGET = "s1:app.demo-app.0"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks follow")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one window")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of windows")
    parser.add_argument("--lines", type=int, default=20, help="requests timed per follower")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="the measured follower's interval (cost)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dsmt-follow-bench-") as tmp:
        env = {**os.environ, "DSMT_HOME": f"{tmp}/home"}
        root = Path(tmp) / "slice"
        up = subprocess.Popen([str(Path(sys.executable).parent / "dsmt"), "up", "--slivers",
                               "2", "--dir", str(root), "--timeout", str(START_TIMEOUT)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              cwd=REPO, env=env, start_new_session=True)
        try:
            _await_line(up, "instances running", START_TIMEOUT + 30)
            time.sleep(SETTLE)  # start-up work done, as benchmarks.idle waits
            result = {"cost": _cost(root, env, args),
                      "latency_ms": _latency(root, env, args)}
        finally:
            os.killpg(up.pid, signal.SIGINT)
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
    p50 = result["latency_ms"]
    result["ratio_follow_to_tail_p50"] = round(
        p50["dsmt_logs_follow"]["p50"] / p50["tail_F"]["p50"], 1)
    result["ratio_follow_0.2_to_tail_p50"] = round(
        p50["dsmt_logs_follow_interval_0.2"]["p50"] / p50["tail_F"]["p50"], 1)
    print(json.dumps(result, indent=2))
    return result


class _Follower:
    """A running follower (a command printing log lines); when each line was seen."""

    def __init__(self, argv: list[str], env: dict) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, env=env)
        self.seen: list[tuple[float, str]] = []
        self._new = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._new:
                self.seen.append((time.monotonic(), line))
                self._new.notify_all()

    def wait(self, text: str, timeout: float = LINE_TIMEOUT) -> float:
        """When the first line containing ``text`` was seen."""
        with self._new:
            if not self._new.wait_for(lambda: any(text in line for _, line in self.seen),
                                      timeout):
                raise RuntimeError(f"{self.process.args[:3]} did not show {text!r}")
            return next(t for t, line in self.seen if text in line)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


    def started(self) -> _Follower:
        """Once it printed its first line (the log's last one): it follows from then on."""
        self.wait("")
        return self


def _dsmt_follow(env: dict, interval: float = 1.0) -> _Follower:
    return _Follower([str(Path(sys.executable).parent / "dsmt"), "logs", TARGET, "--err",
                      "-f", "-n", "1", "--interval", str(interval)], env).started()


def _cost(root: Path, env: dict, args: argparse.Namespace) -> dict:
    node = [pid for pid in _pids(root, "node")
            if f"{root}/s1/" in Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")]
    router = _pids(root, "router")
    if len(node) != 1 or len(router) != 1:
        raise RuntimeError(f"found nodes {node} and routers {router} for s1")
    without, with_, follower_cpu, reads = [], [], [], []
    with _accepted_counter(env) as accepted:
        for n in range(args.rounds):
            _progress(f"cost round {n + 1}/{args.rounds}")
            without.append(measure(node + router, args.seconds))
            follower = _dsmt_follow(env, args.interval)
            try:
                before = accepted()
                figures = measure(node + router + [follower.process.pid], args.seconds)
                reads.append(accepted(before))
            finally:
                follower.stop()
            with_.append(figures[:2])
            follower_cpu.append(figures[2][0])
            if not reads[-1]:
                raise RuntimeError(f"no read counted in a {args.seconds}s window: make "
                                   f"--seconds longer than --interval ({args.interval}s)")
    out = {"interval_s": args.interval, "reads_per_s": spread(reads, 2)}
    for i, who in enumerate(("node", "router")):
        before, after = [w[i][0] for w in without], [w[i][0] for w in with_]
        added = [a - b for a, b in zip(after, before)]
        out[f"{who}_cpu_ms_per_s"] = {
            "without": spread(before, 2), "with_one_follower": spread(after, 2),
            "added": spread(added, 2)}
        out[f"{who}_cpu_us_per_read"] = spread([1000 * a / r for a, r in zip(added, reads)], 0)
    out["follower_cpu_ms_per_s"] = spread(follower_cpu, 2)
    return out


@contextmanager
def _accepted_counter(env: dict) -> Iterator[Callable[..., Any]]:
    """``accepted()``: (commands s1's commander accepted, when); ``accepted(since)``: the
    commands per second since then, the two inspects that count them left out."""
    from dsmt.cli import _command

    os.environ["DSMT_HOME"] = env["DSMT_HOME"]  # where `dsmt up` left the slice
    key = _command.load_key(None)
    with _command.view(None, None, None, None) as view:
        def accepted(since: tuple[int, float] | None = None) -> Any:
            reply = _command.send(view, key, "s1", "inspect", {"path": "/s1/commander"},
                                  LINE_TIMEOUT)
            now = (reply["result"]["counters"]["accepted"], time.monotonic())
            if since is None:
                return now
            return (now[0] - since[0] - 1) / (now[1] - since[1])

        yield accepted


def _latency(root: Path, env: dict, args: argparse.Namespace) -> dict:
    logs = root / "s1" / "ws" / "logs"
    address = next(line for line in (logs / "demo-app-0.out.log").read_text().splitlines()
                   if "listening on" in line).rsplit(" ", 1)[1]
    err = logs / "demo-app-0.err.log"
    out = {}
    for name, start in (("dsmt_logs_follow", lambda: _dsmt_follow(env)),
                        ("dsmt_logs_follow_interval_0.2", lambda: _dsmt_follow(env, 0.2)),
                        ("tail_F", lambda: _Follower(["tail", "-n", "1", "-F", str(err)],
                                                     env).started())):
        _progress(f"latency: {name}")
        follower = start()
        try:
            times = []
            for i in range(args.lines):
                time.sleep(random.uniform(0.0, 1.0))  # anywhere in a poll interval
                marker = f"/line-{name}-{i}-{random.getrandbits(32):08x}"
                sent = time.monotonic()
                _request(address, marker)
                times.append(1000 * (follower.wait(marker) - sent))
        finally:
            follower.stop()
        times.sort()
        out[name] = {"p50": round(statistics.median(times), 1),
                     "p90": round(times[int(0.9 * (len(times) - 1))], 1),
                     "max": round(times[-1], 1), "n": len(times)}
    return out


def _request(address: str, path: str) -> None:
    try:
        urllib.request.urlopen(f"http://{address}{path}", timeout=LINE_TIMEOUT)
    except urllib.error.HTTPError:  # 404: the path is only there to be logged
        pass


def _progress(text: str) -> None:
    print(f"follow: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
