"""The local stage's heap: two arenas for all threads, and freed pages given back when trimmed.

Each check runs in a fresh interpreter: arenas are made once per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from animl_local.glibc_heap import _glibc, heap_kept_small

pytestmark = pytest.mark.skipif(_glibc() is None, reason="glibc only")

ARENAS_AFTER_THREADS = """
import ctypes, os, sys, tempfile, threading
from animl_local.glibc_heap import limit_arenas
if sys.argv[1] == "limited":
    assert limit_arenas()
barrier = threading.Barrier(12)  # all alive at once: each new thread asks for an arena
def churn():
    barrier.wait()
    for _ in range(200):
        blocks = [bytearray(4096) for _ in range(50)]
        del blocks
threads = [threading.Thread(target=churn) for _ in range(12)]
for thread in threads: thread.start()
for thread in threads: thread.join()
libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.TemporaryFile() as report:
    stream = libc.fdopen(os.dup(report.fileno()), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    report.seek(0)
    print(report.read().count(b"<heap nr="))
"""

RSS_AFTER_TRIM = """
import sys
from animl_local.glibc_heap import trim_heap
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
blocks = [bytearray(64 * 1024) for _ in range(3000)]  # 192 MB, below mmap's threshold
kept = blocks[::10]  # holds the heap's pages apart: only a trim can give the rest back
del blocks
before = rss_mb()
trim_heap()
print(before, rss_mb())
"""


def run(code: str, *args: str) -> str:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], check=True,
                          capture_output=True, text=True, timeout=120).stdout


def test_threads_share_two_arenas_once_limited() -> None:
    unlimited = int(run(ARENAS_AFTER_THREADS, "unlimited"))
    limited = int(run(ARENAS_AFTER_THREADS, "limited"))
    assert limited <= 2 < unlimited


def test_a_trim_gives_freed_pages_back() -> None:
    before, after = map(int, run(RSS_AFTER_TRIM).split())
    assert before - after > 100  # MB: of 192 MB, 19 are still held


def test_the_trimmer_thread_ends_with_its_context() -> None:
    with heap_kept_small(every=0.01):
        assert any(thread.name == "heap-trim" for thread in threading.enumerate())
    assert not any(thread.name == "heap-trim" for thread in threading.enumerate())
