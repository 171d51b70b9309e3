"""Ctrl-C and SIGTERM during a run: turned into one exception that closes the run cleanly."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from fruitlab.errors import RunInterrupted

INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """Within the block, the first SIGINT or SIGTERM raises RunInterrupted in the main thread; later ones
    are ignored so that a second Ctrl-C cannot cut the closing of the run short. Lightning keeps its own
    SIGTERM bookkeeping and calls this handler after it. The previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    interrupted = False

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        nonlocal interrupted
        if interrupted:
            return
        interrupted = True
        raise RunInterrupted(signum)

    previous = {signum: signal.getsignal(signum) for signum in INTERRUPTS}
    for signum in INTERRUPTS:
        signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
