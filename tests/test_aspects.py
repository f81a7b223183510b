"""Sentiment per survey dimension (issue 13, part 3): what the comment says of each one."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from analysis.pipeline import analyse_response
from analysis.sentiment.aspects import (
    Aspect,
    aspect_scores,
    clause_aspects,
    most_negative,
    split_clauses,
)
from analysis.sentiment.engine import configured_band, score
from analysis.text.models import ResponseAspect
from survey_app.extensions import db
from survey_app.models import Role
from tests.test_analysis_pipeline import respond, stored


def labels(text: str) -> dict[str, str]:
    return {s.aspect.value: s.label for s in aspect_scores(text, score, configured_band())}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("客服态度非常好，很耐心，但是等了三天才回复",
         {"attitude": "positive", "speed": "negative"}),
        ("响应很快，态度也好，问题当天就解决了",
         {"speed": "positive", "effectiveness": "positive"}),
        ("转了好几个部门，还是没解决",
         {"professionalism": "negative", "effectiveness": "negative"}),
        ("The agent was friendly but nobody called me back for a week",
         {"attitude": "positive", "speed": "negative"}),
        ("Still not fixed after two calls", {"effectiveness": "negative"}),
        ("工程师不专业，一问三不知", {"professionalism": "negative"}),
    ],
)  # fmt: skip
def test_each_dimension_gets_its_own_verdict(app, text, expected):
    found = labels(text)
    assert {aspect: found.get(aspect) for aspect in expected} == expected


def test_clauses_are_cut_at_punctuation_and_contrast_words():
    assert split_clauses("态度好，但是太慢了") == ["态度好", "太慢了"]
    assert split_clauses("Friendly, but slow. However it works") == [
        "Friendly",
        "slow",
        "it works",
    ]
    assert split_clauses("") == [] and split_clauses(None) == []


def test_a_clause_naming_no_dimension_is_other():
    assert clause_aspects("谢谢") == [Aspect.OTHER]
    assert clause_aspects("waited on hold") == [Aspect.SPEED]
    assert clause_aspects("crude joke") == [Aspect.OTHER]  # "rude" starts words, not any substring


def test_bad_input_gives_a_defined_result(app):
    for text in ("", "   ", "😀😀😀", "<b>态度</b>好" * 2000, None):
        result = aspect_scores(text, score, configured_band())
        assert isinstance(result, list)
    assert most_negative([]) is None


@pytest.mark.db
def test_the_pipeline_stores_the_dimensions_and_uses_the_worst_for_the_problem_type(app, client):
    response_id = respond(
        client,
        {"nps": 3, "csat_overall": 2, "comment": "客服态度非常好，很耐心，但是等了三天才回复"},
    )
    assert analyse_response(response_id)
    rows = {
        row.aspect: row.label
        for row in db.session.scalars(
            select(ResponseAspect).where(ResponseAspect.response_id == response_id)
        )
    }
    assert rows == {"attitude": "positive", "speed": "negative"}
    assert stored(response_id).problem_type == "slow_response"
    # Analysing again replaces the rows instead of adding to them.
    assert analyse_response(response_id, force=True)
    count = db.session.scalar(
        select(db.func.count())
        .select_from(ResponseAspect)
        .where(ResponseAspect.response_id == response_id)
    )
    assert count == len(rows)


@pytest.mark.db
def test_the_dashboard_shows_ratings_beside_what_comments_say(app, client, auth, make_user):
    for _n in range(5):
        response_id = respond(
            client,
            {
                "nps": 9,
                "csat_overall": 5,
                "csat_speed": 5,
                "comment": "态度很好，但是等了好几天才回复",
            },
        )
        analyse_response(response_id)
    auth.sign_in(make_user(Role.ANALYST))
    page = client.get("/dashboards").get_data(as_text=True)
    assert "What customers rate vs what they write" in page
    speed_row = page.split('data-aspect="speed"')[1].split("</tr>")[0]
    assert "100%" in speed_row  # every speed rating satisfied ...
    assert "disagree" in speed_row  # ... while every comment complains about the wait
