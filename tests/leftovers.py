"""What a test leaves behind: processes it started that still run, temp folders of ours."""

from __future__ import annotations

import ctypes
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
# Our commands' scratch folders (`animl-ingest-`, `animl-serve-`, `animl-upload-`).
TEMP_PREFIX = "animl-"
# multiprocessing's resource tracker serves the whole interpreter and ends with it.
INTERPRETER_HELPERS = ("multiprocessing.resource_tracker",)


def eventually(check: Callable[[], T], seconds: float = 30, poll: float = 0.1,
               what: str = "the condition") -> T:
    """`check()` until it returns something truthy (returned), or fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds:.0f} s")
        time.sleep(poll)


def adopt_orphans() -> None:
    """Make this process the child subreaper (Linux): a process whose parent dies is then
    reparented here, not to init, so an orphaned worker still counts as the test's."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def descendants(pid: int | None = None, helpers: bool = False) -> dict[int, str]:
    """Every process below `pid` (this one by default), with its command line; the
    interpreter's helpers only when `helpers`."""
    root = os.getpid() if pid is None else pid
    parents: dict[int, int] = {}
    # Plain os calls on bytes: every test runs this twice, over every process on the machine.
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            if fields[0] != b"Z":  # a zombie has ended; only its exit status is left
                parents[int(name)] = int(fields[1])
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = _command_line(child)
                frontier.append(child)
    return {p: c for p, c in found.items()
            if helpers or not any(h in c for h in INTERPRETER_HELPERS)}


def our_temp_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*")}


def _command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace").strip()
    except OSError:
        return ""
