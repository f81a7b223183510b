"""Every setting is declared once, in ``DefaultConfig``, and documented from there."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from survey_app.config import DefaultConfig, with_defaults
from survey_app.config_docs import (
    CONFIGURATION_PAGE,
    declared_settings,
    markdown_tables,
    page_with_tables,
)

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("survey_app", "analysis", "improvement")
#: Read by the code but not ours to declare: set by ``create_app`` from ``DATABASE_URL``.
DERIVED = {"SQLALCHEMY_DATABASE_URI"}
#: Names a settings mapping goes by in the code (``current_app.config``, ``config``, ...).
CONFIG_NAMES = {"config", "settings"}
TEMPLATE_READ = re.compile(r"\bconfig(?:\.([A-Z][A-Z0-9_]+)|\[\s*['\"]([A-Z][A-Z0-9_]+)['\"])")


def _is_config(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in CONFIG_NAMES
    return isinstance(node, ast.Attribute) and node.attr == "config"


def _key(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isupper():
        return node.value
    return None


def config_reads(source: str) -> Iterator[tuple[int, str, str]]:
    """``(line, key, how)`` for each setting the code reads or defaults: ``how`` is
    ``"read"`` (``config["K"]``, ``config.get("K")``), ``"inline default"``
    (``config.get("K", x)``) or ``"setdefault"``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and _is_config(node.value):
            key = _key(node.slice)
            if key:
                yield node.lineno, key, "read"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and _is_config(node.func.value)
            and node.func.attr in ("get", "setdefault")
            and node.args
        ):
            key = _key(node.args[0])
            if not key:
                continue
            if node.func.attr == "setdefault":
                yield node.lineno, key, "setdefault"
            elif len(node.args) > 1:
                yield node.lineno, key, "inline default"
            else:
                yield node.lineno, key, "read"


def _product_modules() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _allowed() -> set[str]:
    return set(vars(DefaultConfig)) | set(Flask.default_config) | DERIVED


def test_the_scan_finds_reads_defaults_and_setdefaults() -> None:
    source = (
        "a = current_app.config['ONE']\n"
        "b = app.config.get('TWO')\n"
        "c = config.get('THREE', 3)\n"
        "app.config.setdefault('FOUR', 4)\n"
        "d = settings['FIVE']\n"
        "e = other['SIX']\n"
    )
    assert list(config_reads(source)) == [
        (1, "ONE", "read"),
        (2, "TWO", "read"),
        (3, "THREE", "inline default"),
        (4, "FOUR", "setdefault"),
        (5, "FIVE", "read"),
    ]


def test_every_setting_the_code_reads_is_declared_in_default_config() -> None:
    allowed = _allowed()
    undeclared, defaulted = [], []
    for path in _product_modules():
        name = path.relative_to(ROOT)
        for line, key, how in config_reads(path.read_text(encoding="utf-8")):
            if key not in allowed:
                undeclared.append(f"{name}:{line} {key}")
            if how != "read":
                defaulted.append(f"{name}:{line} {key} ({how})")
    for path in sorted((ROOT / "templates").rglob("*.html")):
        for match in TEMPLATE_READ.finditer(path.read_text(encoding="utf-8")):
            key = match[1] or match[2]
            if key not in allowed:
                undeclared.append(f"{path.relative_to(ROOT)} {key}")
    assert undeclared == [], "declare these settings in survey_app.config.DefaultConfig"
    assert defaulted == [], "defaults belong in DefaultConfig, not at the place of use"


def test_every_setting_has_a_section_and_a_description() -> None:
    settings = declared_settings()
    assert [s.name for s in settings] == [n for n in vars(DefaultConfig) if n.isupper()]
    assert [s.name for s in settings if not s.section or not s.description] == []


def test_the_configuration_page_shows_every_setting_as_declared() -> None:
    page = CONFIGURATION_PAGE.read_text(encoding="utf-8")
    assert page_with_tables(page) == page, "run python -m survey_app.config_docs --write"
    for setting in declared_settings():
        assert f"| `{setting.name}` |" in markdown_tables()


def test_the_page_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="markers"):
        page_with_tables("# Configuration\n")


def test_a_partial_mapping_reads_the_declared_defaults() -> None:
    settings = with_defaults({"SLA_CALENDAR": "weekdays"})
    assert settings["SLA_CALENDAR"] == "weekdays"
    assert settings["SLA_WORKING_HOURS"] == DefaultConfig.SLA_WORKING_HOURS
