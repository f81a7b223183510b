"""The report's languages, apart from :mod:`.workbook` so that listing them loads no openpyxl."""

from __future__ import annotations

LANGUAGES = ("en", "zh_Hans")
