"""Processes the suite starts: each in a process group of its own, ended as a whole group and
waited for; and the check that none of them outlives the suite.

A gunicorn server is an arbiter and its worker. Ending only the arbiter can leave the worker
running, parentless; so every server is the leader of a new process group (setpgid(2)), and
ending it signals the whole group (killpg(2)), escalates to SIGKILL after a grace period, and
waits until no member of the group is running. The leader is reaped last: while it is an
unreaped zombie its pid, which is the group's id, cannot be reused by another process, so the
group can be signalled at any point without reaching someone else's processes.

Every process the suite starts carries SUITE_RUN in its environment, set to a value unique to
this run of the suite. Environments are inherited through fork and exec and survive
reparenting, new process groups and new sessions, so `survivors()` finds any process the suite
started, however deep or orphaned, and none of another suite running on the same machine.
"""

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import psutil

SUITE_RUN = "TEST_SUITE_RUN"
GRACE_SECONDS = 10.0  # from the first signal to SIGKILL; a healthy server exits in well under 1 s
GONE_SECONDS = 60.0  # from SIGKILL until no member runs: generous, for a loaded machine
POLL_SECONDS = 0.05


def mark_suite_run() -> str:
    """Names this run of the suite in os.environ, which every process it starts inherits."""
    os.environ[SUITE_RUN] = uuid.uuid4().hex
    return os.environ[SUITE_RUN]


def suite_environment(env: Mapping[str, str]) -> dict[str, str]:
    """`env` plus this run's SUITE_RUN: for a process started with an environment of its own."""
    mark = {SUITE_RUN: os.environ[SUITE_RUN]} if SUITE_RUN in os.environ else {}
    return {**env, **mark}


def start_group(command: Sequence[str], **popen: Any) -> subprocess.Popen:
    """Starts `command` as the leader of a new process group (its pgid is its pid)."""
    if popen.get("env") is not None:
        popen["env"] = suite_environment(popen["env"])
    return subprocess.Popen(command, process_group=0, **popen)


def has_exited(leader: subprocess.Popen) -> bool:
    """Whether the group's leader has exited, without reaping it (see the module's docstring)."""
    if leader.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, leader.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere
        return True


def running_members(pgid: int) -> list[psutil.Process]:
    """The processes of group `pgid` that still run (zombies have ended; they only await their
    parent)."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process)
        except ProcessLookupError:
            continue
    return members


def end_group(
    leader: subprocess.Popen, first_signal: int = signal.SIGTERM, grace: float = GRACE_SECONDS
) -> None:
    """Ends the process group `leader` leads: `first_signal` to every member, SIGKILL to whatever
    still runs after `grace` seconds (or once the leader has exited), then waits until no member
    runs and reaps the leader. Raises RuntimeError if members still run after GONE_SECONDS."""
    pgid = leader.pid
    if leader.returncode is not None:
        raise RuntimeError(f"the leader of group {pgid} was reaped before its group was ended")
    _signal_group(pgid, first_signal)
    deadline = time.monotonic() + grace
    while not has_exited(leader) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    # Anything left is either a leader past its grace or a member its leader did not end (a
    # gunicorn worker stuck in its shutdown): neither would end by itself.
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + GONE_SECONDS
    while remaining := running_members(pgid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"group {pgid} still runs after SIGKILL: {describe(remaining)}")
        time.sleep(POLL_SECONDS)
    leader.wait(timeout=GONE_SECONDS)


def _signal_group(pgid: int, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # no member left
        os.killpg(pgid, signal_number)


def survivors() -> list[psutil.Process]:
    """The running processes started during this run of the suite, other than the suite itself:
    those whose environment carries this run's SUITE_RUN."""
    mark = f"{SUITE_RUN}={os.environ[SUITE_RUN]}"
    found = []
    for process in psutil.process_iter(["status", "environ"]):
        environ = process.info["environ"]  # None when it cannot be read (another user's)
        if process.pid == os.getpid() or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if environ and f"{SUITE_RUN}={environ.get(SUITE_RUN)}" == mark:
            found.append(process)
    return found


def describe(processes: list[psutil.Process]) -> str:
    """`pid 123 (functions-framework --target=mutate ...), ...`, for a message."""
    descriptions = []
    for process in processes:
        try:
            command = " ".join(process.cmdline()) or process.name()
        except psutil.Error:
            command = "ended since"
        descriptions.append(f"pid {process.pid} ({command})")
    return ", ".join(descriptions)
