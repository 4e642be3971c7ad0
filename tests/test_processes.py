"""The suite's own process handling: servers end as whole groups, and the check that no process
outlives the suite finds one that would."""

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests
from processes import SUITE_RUN, end_group, has_exited, running_members, start_group, survivors
from server import run_server

DEADLINE = 60.0

# A leader whose child ignores SIGTERM, as a gunicorn worker stuck in its shutdown does.
LEADER = """
import signal, subprocess, sys
child = subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
     "print('ready', flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE, text=True,
)
assert child.stdout.readline() == "ready\\n"
print(child.pid, flush=True)
signal.pause()
"""


def read_line(process: subprocess.Popen) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(DEADLINE), "no line within the deadline"
    return process.stdout.readline()


def eventually(condition, seconds: float = DEADLINE) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def is_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_ending_a_group_ends_a_member_its_leader_left_behind() -> None:
    leader = start_group(
        [sys.executable, "-c", LEADER], stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:
        child = int(read_line(leader))
        # Ending the leader alone, as the suite once did, leaves the child running.
        leader.send_signal(signal.SIGTERM)
        eventually(lambda: has_exited(leader))
        assert is_running(child)
    finally:
        end_group(leader, grace=5)
        leader.stdout.close()
    assert not is_running(child)
    assert running_members(leader.pid) == []
    assert leader.returncode == -signal.SIGTERM


def test_a_server_ends_with_its_worker(tmp_path: Path) -> None:
    with run_server(tmp_path) as server:
        assert requests.get(f"{server.url}/healthz", timeout=30).status_code == 200
        members = {process.pid for process in running_members(server.process.pid)}
        assert server.process.pid in members
        assert len(members) >= 2  # gunicorn's arbiter and the worker that answered
    assert running_members(server.process.pid) == []
    assert not any(is_running(pid) for pid in members)


def test_the_check_finds_an_orphaned_process_started_by_the_suite() -> None:
    started = subprocess.run(
        ["sh", "-c", "sleep 600 </dev/null >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
        timeout=DEADLINE,
    )
    orphan = psutil.Process(int(started.stdout))
    try:
        assert orphan.ppid() != os.getpid()  # reparented: no longer below the suite
        assert orphan.pid in {process.pid for process in survivors()}
    finally:
        orphan.kill()
    eventually(lambda: orphan.pid not in {process.pid for process in survivors()})


def test_the_check_ignores_processes_of_other_runs() -> None:
    other = subprocess.Popen(
        ["sleep", "600"],
        env={"PATH": "/usr/bin:/bin", SUITE_RUN: "another-run"},
        stdin=subprocess.DEVNULL,
        process_group=0,
    )
    try:
        assert other.pid not in {process.pid for process in survivors()}
    finally:
        end_group(other)
