"""The configuration reference, written from :class:`survey_app.config.DefaultConfig`.

``python -m survey_app.config_docs`` prints the tables;
``python -m survey_app.config_docs --write`` puts them into
``docs/operations/configuration.md`` between its two ``config-table`` markers.
``tests/test_config.py`` fails when the page and the class disagree.

The description of a setting is the ``#:`` comment above it and its section the
``# -- title`` comment before it, read from the class's source: for the
documentation only, never when the app starts.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

from .config import DefaultConfig

#: The page that holds the tables, and the markers around them.
CONFIGURATION_PAGE = Path(__file__).resolve().parent.parent / "docs/operations/configuration.md"
BEGIN = "<!-- config-table: written by `python -m survey_app.config_docs --write` -->"
END = "<!-- /config-table -->"

_SECTION = re.compile(r"^\s*# -- (?P<title>.+?)\s*$")
_DESCRIPTION = re.compile(r"^\s*#:\s?(?P<text>.*)$")


@dataclass(frozen=True)
class Setting:
    """One declared setting: its name, section, default and description."""

    name: str
    section: str
    default: object
    description: str


def declared_settings() -> list[Setting]:
    """Every setting of :class:`DefaultConfig`, in declaration order, with its section and
    the ``#:`` comment above it (empty when it has none)."""
    source = inspect.getsource(DefaultConfig)
    lines = source.splitlines()
    (cls,) = ast.parse(source).body
    assert isinstance(cls, ast.ClassDef)
    settings: list[Setting] = []
    section = ""
    seen = 0
    for node in cls.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
        else:
            continue
        above = lines[seen : node.lineno - 1]
        seen = node.end_lineno or node.lineno
        for line in above:
            heading = _SECTION.match(line)
            if heading is not None:
                section = heading["title"]
        comment: list[str] = []
        for line in reversed(above):
            match = _DESCRIPTION.match(line)
            if match is None:
                break
            comment.insert(0, match["text"])
        description = " ".join(comment)
        settings.append(Setting(name, section, getattr(DefaultConfig, name), description))
    return settings


def _cell(text: str) -> str:
    return text.replace("``", "`").replace("|", "\\|")


def markdown_tables() -> str:
    """One Markdown table a section, a row a setting: name, default, description."""
    out: list[str] = []
    section = None
    for setting in declared_settings():
        if setting.section != section:
            section = setting.section
            if out:
                out.append("")
            out += [f"### {section}", "", "| setting | default | what it does |", "|---|---|---|"]
        default = _cell(f"`{setting.default!r}`")
        out.append(f"| `{setting.name}` | {default} | {_cell(setting.description)} |")
    return "\n".join(out) + "\n"


def page_with_tables(page: str) -> str:
    """``page`` with the text between its markers replaced by :func:`markdown_tables`.

    Raises ValueError when the page lacks the markers."""
    head, begin, rest = page.partition(BEGIN)
    _old, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"the page needs the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n\n{markdown_tables()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> None:
    """Print the configuration tables, or write them into the configuration page."""
    parser = argparse.ArgumentParser(prog="python -m survey_app.config_docs", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"update {CONFIGURATION_PAGE}")
    args = parser.parse_args(argv)
    if args.write:
        page = CONFIGURATION_PAGE.read_text(encoding="utf-8")
        CONFIGURATION_PAGE.write_text(page_with_tables(page), encoding="utf-8")
    else:
        print(markdown_tables(), end="")


if __name__ == "__main__":
    main()
