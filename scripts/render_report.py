"""Print an Excel report with LibreOffice and look for what a printed page must not show.

Run from the project folder, with LibreOffice and poppler's tools installed
(``apt-get install libreoffice-calc-nogui poppler-utils``; ``fonts-crosextra-carlito``
draws Calibri's widths, ``fonts-noto-cjk`` the Chinese):

    .venv/bin/closedloop report excel --lang zh_Hans --out report.xlsx
    .venv/bin/python scripts/render_report.py report.xlsx --out rendered/

Writes ``rendered/report.pdf`` (LibreOffice's print of every sheet, with each sheet's
print set-up) and one PNG per page (``rendered/page-01.png`` ...), prints the sheet name
of each page (the page header carries it) and every line of the PDF's text that shows
``###`` (a number too wide for its column). Exit status 1 when there is one. Then look
at the pages: headers repeated, no column cut at the right edge, no chart split.

Not a test: the test suite does not need LibreOffice.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def render(workbook: Path, out: Path, dpi: int) -> list[str]:
    """Convert ``workbook`` to ``out/<name>.pdf`` and PNG pages; return the text lines of
    the PDF that show ``###``."""
    out.mkdir(parents=True, exist_ok=True)
    # A profile of its own: a LibreOffice already running for the user is left alone.
    with tempfile.TemporaryDirectory() as profile:
        _run(
            "soffice",
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            str(workbook),
        )
    pdf = out / (workbook.stem + ".pdf")
    for old in out.glob("page-*.png"):
        old.unlink()
    _run("pdftoppm", "-r", str(dpi), "-png", str(pdf), str(out / "page"))
    pages = _run("pdftotext", "-layout", str(pdf), "-").split("\f")
    hashes = []
    for number, page in enumerate(pages, start=1):
        lines = [line for line in page.splitlines() if line.strip()]
        if not lines:
            continue
        print(f"page {number:3}: {lines[0].strip()[:100]}")
        hashes += [f"page {number}: {line.strip()}" for line in lines if "###" in line]
    return hashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workbook", type=Path, help="the .xlsx report")
    parser.add_argument("--out", type=Path, default=Path("rendered"), help="output folder")
    parser.add_argument("--dpi", type=int, default=70, help="resolution of the PNG pages")
    args = parser.parse_args()
    for tool in ("soffice", "pdftoppm", "pdftotext"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (see this script's docstring)", file=sys.stderr)
            return 2
    hashes = render(args.workbook, args.out, args.dpi)
    for line in hashes:
        print(f"### shown: {line}")
    print(f"{args.out}: {len(list(args.out.glob('page-*.png')))} pages, {len(hashes)} with ###")
    return 1 if hashes else 0


if __name__ == "__main__":
    sys.exit(main())
