"""Validating an import's rows a batch at a time, here or in a forked second process
that stays a few batches ahead while the importer writes (:mod:`.importer`), and
collecting garbage less often meanwhile."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import queue
import signal
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

#: Validates one row: (row number, cells) -> a validated row or a row error.
RowCheck = Callable[[int, list[Any]], Any]
#: Rows the second process validates and sends at a time (the importer's batches are
#: put together from these), and how many such parts it may hold ready: bound its
#: lead, and its memory, whatever the batch size.
_PART_ROWS = 1000
_READY_PARTS = 4
#: Allocations between young-generation collections during an import (default 700):
#: an import allocates a few hundred objects per row and keeps only a batch.
_GC_THRESHOLD = 50_000


#: Validated rows a batch at a time.
CheckedBatches = Generator[list[Any], None, None]


def checked_here(
    rows: Iterable[tuple[int, Any]], check: RowCheck, batch_size: int
) -> CheckedBatches:
    """The rows validated, ``batch_size`` at a time (the last batch may be short or empty)."""
    checked: list[Any] = []
    for number, cells in rows:
        checked.append(check(number, cells))
        if len(checked) >= batch_size:
            yield checked
            checked = []
    yield checked


def spare_core() -> bool:
    """Whether a second process would have a core to itself: ``fork`` exists and at least
    1.5 cores are idle now (:func:`idle_cores`; where that cannot be measured, the last
    minute's load average). Measured on two busy cores (another CPU-bound job beside it),
    the second process took CPU from the first and the import was 10-25 % slower than
    validating here. Not the load average first: it trails by a minute, so work that had
    just ended (the export written, another job finished) kept a 2-core machine's import
    in one process, at two thirds of the speed."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    idle = idle_cores()
    if idle is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average on this platform
            load = 0.0
        idle = (os.cpu_count() or 1) - load
    return idle >= 1.5


#: How long :func:`idle_cores` watches the processor.
IDLE_WINDOW_SECONDS = 0.25


def idle_cores(window: float = IDLE_WINDOW_SECONDS) -> float | None:
    """How many cores were idle over the next ``window`` seconds (the kernel's counters in
    ``/proc/stat``: idle and waiting for I/O, of all the time); None where there are none."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(window)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return None
    idle, total = second[0] - first[0], second[1] - first[1]
    return (os.cpu_count() or 1) * idle / total


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all cores since boot, or None without ``/proc/stat``."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    return fields[3] + fields[4], sum(fields)


def checked_elsewhere(
    rows: Iterable[tuple[int, Any]],
    check: RowCheck,
    batch_size: int,
    *,
    keep: type[Exception] = Exception,
) -> CheckedBatches:
    """:func:`checked_here`, run in a forked process that stays a few thousand rows ahead.

    The child reads and validates; the rows come back pickled through a bounded
    queue, :data:`_PART_ROWS` at a time, and are put together into batches here (the
    first batch is one part, so the caller starts without waiting for a whole batch).
    It touches no database (it inherits this process's connections and must
    leave them alone: it ends with ``os._exit``, so nothing of them is closed or
    flushed). An exception there (the file changed since it was checked) is raised
    here as it is if it is a ``keep`` (else as a ``RuntimeError`` naming it); the child is
    stopped when the caller stops early or fails.
    """
    context = multiprocessing.get_context("fork")
    ready: Any = context.Queue(maxsize=_READY_PARTS)
    part = min(batch_size, _PART_ROWS)
    child = context.Process(target=_check_into, args=(rows, check, part, ready, keep), daemon=True)
    child.start()
    batch: list[Any] = []
    # The first batch is the first part: the writing starts as soon as there is something
    # to write (a whole batch, validated ahead of it, took half a second).
    wanted = part
    try:
        while True:
            try:
                message = ready.get(timeout=1)
            except queue.Empty:
                if child.is_alive():
                    continue
                try:  # it may have put its last batches just before it ended
                    message = ready.get(timeout=1)
                except queue.Empty:
                    raise RuntimeError(
                        f"the validating process ended early (exit code {child.exitcode})"
                    ) from None
            kind, payload = message
            if kind == "error":
                raise payload
            batch.extend(pickle.loads(payload))
            while len(batch) >= wanted:
                yield batch[:wanted]
                batch, wanted = batch[wanted:], batch_size
            if kind == "last":
                yield batch
                return
    finally:
        if child.is_alive():
            child.terminate()
        child.join()
        ready.close()


def _check_into(
    rows: Iterable[tuple[int, Any]],
    check: RowCheck,
    batch_size: int,
    ready: Any,
    keep: type[Exception],
) -> None:
    """The forked child: puts ``("batch", rows)``..., then ``("last", rows)`` (or
    ``("error", exception)``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops this
    gc.freeze()
    gc.set_threshold(_GC_THRESHOLD)
    try:
        previous: list[Any] | None = None
        for checked in checked_here(rows, check, batch_size):
            if previous is not None:
                ready.put(("batch", _pickled(previous)))
            previous = checked
        ready.put(("last", _pickled(previous or [])))
    except Exception as exc:  # noqa: BLE001  (handed to the parent, which raises it)
        error = exc if isinstance(exc, keep) else RuntimeError(f"{type(exc).__name__}: {exc}")
        ready.put(("error", error))
    ready.close()
    ready.join_thread()


def _pickled(rows: list[Any]) -> bytes:
    """``rows`` pickled here, in the child's main thread, while the parent writes: a queue
    pickles what it is given in a feeder thread one item at a time, each only once the
    parent has read the one before, so the parent waited for every part's pickling (the
    two processes took turns: a first 100,000-row import on SQLite ran at 3,362 rows/s,
    4,066 with the rows pickled here; on PostgreSQL 2,692 and 3,159)."""
    return pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    """Collect garbage less often while importing: the app's objects are set aside
    (``gc.freeze``) and the young generation is collected every :data:`_GC_THRESHOLD`
    allocations. Restored afterwards. About 10 % of an import's time."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(_GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
