"""CPU per survey request, in-process: opening a survey (GET) and submitting it (POST).

Builds a fresh SQLite database (or the PostgreSQL database of ``--database-url``,
whose public schema it resets) with ``load_test.prepare``: the default survey and
``--answers`` sent invitations. Then, through ``app.test_client()`` (no network, no
gunicorn), it opens every link once and submits every link once, with the same
answers as the load test, and prints the CPU time (``time.process_time``) and the
wall time per request for each. ``--profile get|post`` runs that half under
cProfile and prints the 30 most expensive functions (cumulative time).

    .venv/bin/python benchmarks/survey_profile.py --answers 300
    .venv/bin/python benchmarks/survey_profile.py --answers 300 --profile post

The first 20 requests of each kind are a warm-up and are not counted (caches fill,
SQLAlchemy compiles its statements). The figures are in the README, "Production".
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_test  # noqa: E402  (the benchmark folder is not a package)

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
WARM_UP = 20


def survey_answers(index: int) -> dict[str, str]:
    """The load test's answers for the link number ``index``."""
    rng = random.Random(index)
    return {
        "csat_overall": str(rng.randint(1, 5)),
        "csat_speed": str(rng.randint(1, 5)),
        "nps": str(rng.randint(0, 10)),
        "ces": str(rng.randint(1, 7)),
        "comment": rng.choice(("", "回复很快，谢谢", "Waited two days for a reply", "还行")),
    }


def measure(options: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """Return ``{"GET": (cpu ms, wall ms), "POST": (...)}`` per request."""
    workdir = Path(tempfile.mkdtemp(prefix="closedloop-profile-"))
    url = options.database_url or f"sqlite:///{workdir / 'profile.db'}"
    env = load_test.server_environment(workdir, url, workers=1, port=8000)
    links = load_test.prepare(env, options.answers, reset_postgres=bool(options.database_url))
    app = load_test._app(env)
    clients = [app.test_client() for _ in links]
    tokens: list[str] = []

    def open_link(index: int) -> None:
        answer = clients[index].get(f"/s/{links[index][1]}")
        match = CSRF_RE.search(answer.get_data(as_text=True))
        if answer.status_code != 200 or not match:
            raise SystemExit(f"GET of link {index} answered {answer.status_code}")
        tokens.append(match.group(1))

    def submit(index: int) -> None:
        form = {"csrf_token": tokens[index], **survey_answers(index)}
        answer = clients[index].post(f"/s/{links[index][1]}", data=form)
        if answer.status_code != 302:
            raise SystemExit(f"POST of link {index} answered {answer.status_code}")

    results = {}
    for method, step in (("GET", open_link), ("POST", submit)):
        for index in range(WARM_UP):
            step(index)
        profiler = cProfile.Profile() if options.profile == method.lower() else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for index in range(WARM_UP, len(links)):
            step(index)
        if profiler:
            profiler.disable()
        counted = len(links) - WARM_UP
        results[method] = (
            (time.process_time() - cpu) * 1000 / counted,
            (time.perf_counter() - wall) * 1000 / counted,
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=300, help="links to open and submit")
    parser.add_argument("--database-url", help="a PostgreSQL database kept for benchmarks")
    parser.add_argument("--profile", choices=("get", "post"), help="cProfile one half")
    options = parser.parse_args(argv)
    if options.answers <= WARM_UP:
        parser.error(f"--answers must be more than {WARM_UP}")
    for method, (cpu, wall) in measure(options).items():
        print(f"{method} /s/<token>: {cpu:.2f} ms CPU, {wall:.2f} ms wall per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
