"""Leaving the process: engine processes ended within bounds, loads that never hold up exit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest

from moe_lsp.lsp.engine_host import in_daemon_thread
from moe_lsp.lsp.orphans import child_pids, end_processes

IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
ENDS_ON_TERM = "import time; time.sleep(60)"
TRACKER = "import time; time.sleep(60)  # resource_tracker"


@pytest.mark.parametrize(
    ("code", "ended", "alive_after"),
    [
        (ENDS_ON_TERM, True, False),
        (IGNORES_TERM, True, False),  # SIGKILL after the grace
        (TRACKER, False, True),  # multiprocessing's resource tracker: left to end by itself
    ],
    ids=["ends on SIGTERM", "ignores SIGTERM", "resource tracker"],
)
def test_end_processes(code: str, ended: bool, alive_after: bool) -> None:
    before = child_pids()
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.3)  # the child has set its signal handlers
        new = child_pids() - before
        assert proc.pid in new
        t0 = time.monotonic()
        got = end_processes(new, term_seconds=0.5)
        assert (proc.pid in got) is ended
        assert time.monotonic() - t0 < 3.0
        assert (proc.poll() is None) is alive_after
    finally:
        proc.kill()
        proc.wait(5)


def test_end_processes_of_none_is_quick() -> None:
    t0 = time.monotonic()
    assert end_processes(set()) == []
    assert end_processes({2**22 + 12345}) == []  # no such process
    assert time.monotonic() - t0 < 0.5


def test_a_load_in_a_daemon_thread_does_not_hold_up_leaving_the_loop() -> None:
    release = threading.Event()

    def slow_load() -> str:
        release.wait(30)
        return "loaded"

    async def main() -> None:
        task = asyncio.ensure_future(in_daemon_thread(slow_load))
        await asyncio.sleep(0.05)
        assert not task.done()

    t0 = time.monotonic()
    asyncio.run(main())  # asyncio.to_thread would make this wait 30 s for the executor
    assert time.monotonic() - t0 < 5.0
    threads = [t for t in threading.enumerate() if t.name == "moe-slow_load"]
    assert threads and all(t.daemon for t in threads)
    release.set()


@pytest.mark.parametrize(("value", "error"), [("ok", None), (None, ValueError("bad"))])
def test_a_daemon_thread_hands_back_its_result_or_error(
    value: str | None, error: Exception | None
) -> None:
    def work() -> str | None:
        if error is not None:
            raise error
        return value

    async def main() -> str | None:
        return await in_daemon_thread(work)

    if error is None:
        assert asyncio.run(main()) == value
    else:
        with pytest.raises(ValueError, match="bad"):
            asyncio.run(main())
