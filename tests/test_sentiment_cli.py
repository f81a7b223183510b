"""``closedloop sentiment``: score, train, evaluate, models, rollback."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from analysis.sentiment.engine import SentimentEngine
from analysis.sentiment.evaluation import read_labelled_csv
from analysis.sentiment.store import ModelStore
from tests.test_sentiment import support_comments


def write_labelled(path: Path, examples: list[tuple[int, str]], text_column: str = "text") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", text_column])
        writer.writerows(examples)
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_score_adds_score_label_language(
    runner: FlaskCliRunner, tmp_path: Path, workers: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "id,text\n1,服务很差\n2,The engineer was great and very patient\n3,\n4,😀😀\n"
        '5,"<p>态度恶劣，<b>再也不会用了</b></p>"\n6,服務態度很好，非常滿意\n',
        encoding="utf-8",
    )
    target = tmp_path / "out.csv"
    result = runner.invoke(
        args=[
            "sentiment",
            "score",
            "--in",
            str(source),
            "--out",
            str(target),
            "--workers",
            workers,
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Scored 6 of 6 rows" in result.output
    rows = read_rows(target)
    assert list(rows[0]) == ["id", "text", "score", "label", "language"]
    assert [(r["id"], r["label"], r["language"]) for r in rows] == [
        ("1", "negative", "zh"),
        ("2", "positive", "en"),
        ("3", "none", ""),
        ("4", "none", ""),
        ("5", "negative", "zh"),
        ("6", "positive", "zh"),
    ]
    assert rows[2]["score"] == ""
    assert 0 <= float(rows[0]["score"]) < 0.4


def test_score_handles_bom_and_reports_invalid_utf8_rows(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(
        b"\xef\xbb\xbftext,id\n"
        + "服务很差,1\n".encode()
        + b"\xff\xfe broken,2\n"
        + "非常满意,3\n".encode()
    )
    target = tmp_path / "out.csv"
    result = runner.invoke(args=["sentiment", "score", "--in", str(source), "--out", str(target)])
    assert result.exit_code == 1
    assert "line 3: not valid UTF-8" in result.output
    rows = read_rows(target)
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")
    assert [(r["id"], r["label"]) for r in rows] == [
        ("1", "negative"),
        ("2", "error"),
        ("3", "positive"),
    ]
    assert rows[1]["text"] == "\ufffd\ufffd broken"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"comment,id\nhello,1\n", "no 'text' column (its columns: comment, id)"),
        (b"", "is empty"),
    ],
)
def test_score_refuses_a_file_without_a_text_column(
    runner: FlaskCliRunner, tmp_path: Path, content: bytes, message: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    target = tmp_path / "out.csv"
    result = runner.invoke(args=["sentiment", "score", "--in", str(source), "--out", str(target)])
    assert result.exit_code == 1
    assert message in result.output
    assert not target.exists()


def test_score_reports_an_unwritable_output(runner: FlaskCliRunner, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("text\n很好\n", encoding="utf-8")
    target = tmp_path / "missing-folder" / "out.csv"
    result = runner.invoke(args=["sentiment", "score", "--in", str(source), "--out", str(target)])
    assert result.exit_code == 1
    assert "Cannot write" in result.output


def test_train_evaluate_models_rollback(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    comments = support_comments(500, seed=3)
    training = write_labelled(tmp_path / "train.csv", comments[:400] + [(7, "坏标签")])  # type: ignore[list-item]
    held_out = write_labelled(tmp_path / "held_out.csv", comments[400:])

    result = runner.invoke(args=["sentiment", "evaluate", "--csv", str(held_out)])
    assert result.exit_code == 0, result.output
    assert "model: shipped-" in result.output

    result = runner.invoke(
        args=["sentiment", "train", "--csv", str(training), "--base-weight", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "line 402: label '7' is not 1 or 0; skipped" in result.output
    assert "on 400 comments" in result.output
    store = ModelStore.for_instance(app.instance_path)
    version = store.current_version()
    assert version is not None and version in result.output

    result = runner.invoke(args=["sentiment", "evaluate", "--csv", str(held_out)])
    assert result.exit_code == 0, result.output
    assert f"model: {version}" in result.output
    assert "accuracy: 1.0000" in result.output
    for heading in ("precision", "recall", "f1", "texts per second"):
        assert heading in result.output

    result = runner.invoke(args=["sentiment", "models"])
    assert result.exit_code == 0
    assert f"* {version}" in result.output
    assert "from train.csv" in result.output
    assert "zh 400 comments" in result.output

    result = runner.invoke(args=["sentiment", "rollback"])
    assert result.exit_code == 0, result.output
    assert "Now using shipped." in result.output
    assert store.current_version() is None
    result = runner.invoke(args=["sentiment", "rollback", version])
    assert result.exit_code == 0
    assert store.current_version() == version

    result = runner.invoke(args=["sentiment", "rollback", "nonsense"])
    assert result.exit_code == 1
    assert "no such version" in result.output


def test_train_needs_both_classes_and_the_columns(runner: FlaskCliRunner, tmp_path: Path) -> None:
    only_good = write_labelled(tmp_path / "good.csv", [(1, "很好"), (1, "不错")])
    result = runner.invoke(args=["sentiment", "train", "--csv", str(only_good)])
    assert result.exit_code == 1
    assert "both positive (1) and negative (0)" in result.output

    reviews = write_labelled(tmp_path / "reviews.csv", [(1, "很好")], text_column="review")
    result = runner.invoke(args=["sentiment", "train", "--csv", str(reviews)])
    assert result.exit_code == 1
    assert "no 'text' column" in result.output


def test_labelled_rows_are_reported_by_line(tmp_path: Path) -> None:
    path = tmp_path / "labelled.csv"
    path.write_text('label,text\n1,"很好\n真的很好"\nyes,不错\n0,很差\n', encoding="utf-8")
    examples, problems = read_labelled_csv(path)
    assert examples == [(1, "很好\n真的很好"), (0, "很差")]
    assert problems == ["line 4: label 'yes' is not 1 or 0; skipped"]


def test_models_lists_a_damaged_version(runner: FlaskCliRunner, app: Flask) -> None:
    store = ModelStore.for_instance(app.instance_path)
    store.models.mkdir(parents=True)
    (store.models / "20260101-000000.json.gz").write_bytes(b"junk")
    result = runner.invoke(args=["sentiment", "models"])
    assert result.exit_code == 0
    assert "* shipped" in result.output
    assert "20260101-000000   unusable" in result.output


def test_one_failing_row_does_not_stop_the_batch(
    runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SentimentEngine.score

    def fragile(self, text, neutral_band=None):
        if text == "boom":
            raise RuntimeError("engine exploded")
        return original(self, text, neutral_band)

    monkeypatch.setattr(SentimentEngine, "score", fragile)
    source = tmp_path / "in.csv"
    source.write_text("text\n服务很差\nboom\n非常满意\n", encoding="utf-8")
    target = tmp_path / "out.csv"
    result = runner.invoke(
        args=["sentiment", "score", "--in", str(source), "--out", str(target), "--workers", "1"]
    )
    assert result.exit_code == 1
    assert "line 3: RuntimeError: engine exploded" in result.output
    assert [r["label"] for r in read_rows(target)] == ["negative", "error", "positive"]
