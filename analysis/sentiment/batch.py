"""Scoring many texts on every core, and the CSV files the ``closedloop sentiment`` commands read.

Workers are processes (scoring is pure Python: threads would share one core);
each loads the models once in its initializer and scores chunks of texts.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import SentimentEngine, SentimentResult, engine_for

CHUNK_SIZE = 200
ERROR = "error"
"""Label of a row that could not be scored; the reason is reported separately."""

_worker_engine: SentimentEngine | None = None
_worker_band: tuple[float, float] | None = None


class CsvFileError(ValueError):
    """A CSV file that cannot be used at all (unreadable, no such column)."""


@dataclass
class CsvTable:
    """A decoded CSV file: header, rows as dicts, and per row its line and any problem.

    ``problems`` maps a row's index in ``rows`` to the reason it is unusable;
    ``lines`` holds the line each row starts on (the header is line 1).
    """

    fieldnames: list[str]
    rows: list[dict[str, str]]
    lines: list[int] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)
    had_bom: bool = False


def read_csv(path: Path, required: Sequence[str]) -> CsvTable:
    """Read a UTF-8 CSV file (a BOM is fine) that must have the ``required`` columns.

    Header names are compared without surrounding spaces. A row with bytes
    that are not UTF-8 is kept with those bytes shown as U+FFFD and reported
    in ``problems``. Refuses
    (:class:`CsvFileError`) an unreadable file or missing columns.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CsvFileError(f"cannot read {path}: {error.strerror or error}") from None
    had_bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw[3:].decode("utf-8", errors="surrogateescape") if had_bom else None
    if text is None:
        text = raw.decode("utf-8", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            needed = ", ".join(required)
            raise CsvFileError(f"{path} is empty: it needs a header row with {needed}")
        fieldnames = [_fix(name).strip() for name in header]
        missing = [name for name in required if name not in fieldnames]
        if missing:
            raise CsvFileError(
                f"{path} has no {', '.join(repr(m) for m in missing)} column "
                f"(its columns: {', '.join(fieldnames) or 'none'})"
            )
        table = CsvTable(fieldnames, [], had_bom=had_bom)
        start = reader.line_num + 1
        for values in reader:
            fixed = [_fix(v) for v in values]
            if fixed != values:
                table.problems[len(table.rows)] = (
                    f"line {start}: not valid UTF-8 (undecodable bytes shown as \ufffd)"
                )
            table.lines.append(start)
            start = reader.line_num + 1
            padded = fixed + [""] * (len(fieldnames) - len(fixed))
            table.rows.append(dict(zip(fieldnames, padded, strict=False)))
    except csv.Error as error:
        raise CsvFileError(f"{path} is not a readable CSV file: {error}") from None
    return table


def _fix(value: str) -> str:
    """Replace the surrogates that stand for undecodable bytes with U+FFFD."""
    if not _has_surrogate(value):
        return value
    return value.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _has_surrogate(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def write_csv(
    path: Path, fieldnames: Sequence[str], rows: Sequence[dict[str, Any]], bom: bool
) -> None:
    """Write rows as UTF-8 CSV (with a BOM when the input had one, for Excel)."""
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fieldnames), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _init_worker(instance_path: str | None, band: tuple[float, float]) -> None:
    global _worker_engine, _worker_band
    _worker_engine = engine_for(instance_path)
    _worker_engine.load()
    _worker_band = band


def _score_chunk(texts: Sequence[str]) -> list[SentimentResult]:
    assert _worker_engine is not None
    return [_score_safely(_worker_engine, text, _worker_band) for text in texts]


def _score_safely(
    engine: SentimentEngine, text: str, band: tuple[float, float] | None
) -> SentimentResult:
    try:
        return engine.score(text, band)
    except Exception as error:  # one bad row must never stop a batch
        return SentimentResult(None, ERROR, None, f"{type(error).__name__}: {error}")


def _chunks(texts: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(texts), size):
        yield texts[start : start + size]


def score_texts(
    texts: Sequence[str],
    *,
    instance_path: str | None,
    neutral_band: tuple[float, float],
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[SentimentResult]:
    """Score ``texts`` in order on ``workers`` processes (default: every core).

    ``progress`` is called with the number of texts just finished. A text
    that makes the engine fail gets label ``error`` (its engine field says
    why) instead of stopping the batch. One worker scores in this process.
    """
    workers = workers or os.cpu_count() or 1
    workers = max(1, min(workers, (len(texts) + CHUNK_SIZE - 1) // CHUNK_SIZE))
    results: list[SentimentResult] = []
    if workers == 1:
        engine = engine_for(instance_path)
        for chunk in _chunks(texts, CHUNK_SIZE):
            results.extend(_score_safely(engine, text, neutral_band) for text in chunk)
            if progress:
                progress(len(chunk))
        return results
    # Loaded here first so that the shipped model's cache exists before the workers start.
    engine_for(instance_path).chinese_model()
    import multiprocessing

    with multiprocessing.Pool(
        workers, initializer=_init_worker, initargs=(instance_path, neutral_band)
    ) as pool:
        for chunk_results in pool.imap(_score_chunk, _chunks(texts, CHUNK_SIZE)):
            results.extend(chunk_results)
            if progress:
                progress(len(chunk_results))
    return results


def texts_per_second(count: int, started: float) -> float:
    """Return ``count`` divided by the seconds since ``started`` (``time.perf_counter``)."""
    elapsed = time.perf_counter() - started
    return count / elapsed if elapsed > 0 else float("inf")
