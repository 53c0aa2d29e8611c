"""Detection rate of each race technique against a scenario's ``vulnerable`` strategy.

For every backend (SQLite, PostgreSQL), path (plain loopback, the jitter proxy), technique
(naive, seed-style, last-byte, single-packet) and race window (``X-Race-Window-Ms`` 0, 0.1, 1,
10): ``--rounds`` rounds of the scenario's race recipe from the lab's catalogue (``--scenario``,
default inventory: purchases of one item with stock 1), with ``-n`` copies of its request. A
round detects the race when the recipe's oracle finds a violation in it (more than one success,
or a stock change that does not match the successes). The recipe's reset and probe go straight to
the lab; only the race goes through the proxy. One hypercorn lab per backend serves HTTP/1.1 and
h2c, so every technique hits the same server.

``-n`` defaults to 2, a double spend: the race is lost unless the two purchases overlap inside
the server, so the detection rate measures how close together a technique lands them. With 20
purchases a round also detects the race when any two of the 20 overlap, which a wide burst does
by sheer numbers (a worker runs 10 at once and each takes milliseconds), so every technique
scores 75 to 100% and the rate says little (BENCHMARKS.md keeps that run, ``-n 20``).

    .venv/bin/python benchmarks/sensitivity.py --postgres-url postgresql://postgres@127.0.0.1/test
    .venv/bin/python benchmarks/sensitivity.py --quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from toctou.catalogue import RecipeInfo, fetch_catalogue, recipe_plan, scale_recipe
from toctou.engine import RacePlan, RaceResult, Technique, run_race
from toctou.lab.process import serve_lab

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jitterproxy import proxy_process

TECHNIQUES: tuple[Technique, ...] = ("naive", "seed-style", "last-byte", "single-packet")
WINDOWS_MS = (0.0, 0.1, 1.0, 10.0)
GOAL_RATE = 0.9
POSTGRES_ENV = "TOCTOU_TEST_POSTGRES_URL"


@dataclass
class Args:
    rounds: int
    count: int
    windows: tuple[float, ...]
    scenario: str
    postgres_url: str | None
    delay_ms: float
    jitter_ms: float
    seed: int


@dataclass
class Cell:
    """One technique at one race window: rounds that showed the race, and rounds that failed."""

    rounds: int = 0
    detected: int = 0
    unjudged: int = 0
    successes: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.detected / self.rounds if self.rounds else 0.0


@dataclass
class Grid:
    backend: str
    path: str
    cells: dict[tuple[Technique, float], Cell] = field(default_factory=dict)
    seconds: float = 0.0


# --- one run --------------------------------------------------------------------------------


def plan(
    race_url: str, lab_url: str, recipe: RecipeInfo, technique: Technique, window: float, args: Args
) -> RacePlan:
    """Race the vulnerable strategy through ``race_url``; reset and probe go to ``lab_url``."""
    return recipe_plan(
        lab_url,
        recipe,
        "vulnerable",
        window_ms=window,
        technique=technique,
        rounds=args.rounds,
        race_url=race_url,
    )


def cell_of(result: RaceResult) -> Cell:
    rounds = result.rounds
    return Cell(
        rounds=len(rounds),
        detected=sum(1 for r in rounds if r.violations),
        unjudged=sum(1 for r in rounds if not r.judged),
        successes=[r.successes for r in rounds],
    )


def run_grid(backend: str, path: str, race_url: str, lab_url: str, args: Args) -> Grid:
    grid = Grid(backend, path)
    recipe = scale_recipe(fetch_catalogue(lab_url)[args.scenario].race, args.count)
    clock = time.perf_counter()
    for technique in TECHNIQUES:
        for window in args.windows:
            result = run_race(plan(race_url, lab_url, recipe, technique, window, args))
            grid.cells[technique, window] = cell_of(result)
    grid.seconds = time.perf_counter() - clock
    return grid


def run_backend(backend: str, db_url: str | None, args: Args) -> list[Grid]:
    with serve_lab(db_url=db_url, http2=True) as lab:
        port = int(lab.base_url.rsplit(":", 1)[1])
        proxy = proxy_process(
            port, delay_ms=args.delay_ms, jitter_ms=args.jitter_ms, seed=args.seed
        )
        with proxy as proxy_port:
            proxied = f"http://127.0.0.1:{proxy_port}"
            return [
                run_grid(backend, "loopback", lab.base_url, lab.base_url, args),
                run_grid(backend, "jitter", proxied, lab.base_url, args),
            ]


# --- report ---------------------------------------------------------------------------------


def _rate(cell: Cell) -> str:
    """Detection rate (rounds), then the median number of successful purchases per round."""
    most = statistics.median(cell.successes) if cell.successes else 0
    text = f"{cell.rate:.0%} ({cell.detected}/{cell.rounds}) ·{most:g}"
    return text + (f", {cell.unjudged} unjudged" if cell.unjudged else "")


def table(grid: Grid, windows: Sequence[float]) -> str:
    head = "| technique | " + " | ".join(f"{w:g} ms" for w in windows) + " | max successes |"
    lines = [
        f"**{grid.backend}, {grid.path}** ({grid.seconds:.0f} s)",
        "",
        head,
        "|---|" + "---|" * (len(windows) + 1),
    ]
    for technique in TECHNIQUES:
        cells = [grid.cells[technique, w] for w in windows]
        most = max((s for c in cells for s in c.successes), default=0)
        lines.append(f"| {technique} | " + " | ".join(_rate(c) for c in cells) + f" | {most} |")
    return "\n".join(lines)


def goal(grids: Sequence[Grid]) -> list[str]:
    """Through the proxy, at 0 ms: the best technique >= 90% where naive does much worse."""
    lines: list[str] = []
    met = False
    for grid in (g for g in grids if g.path == "jitter" and (TECHNIQUES[0], 0.0) in g.cells):
        rates = {t: grid.cells[t, 0.0].rate for t in TECHNIQUES}
        best = max(rates, key=lambda t: rates[t])
        ok = rates[best] >= GOAL_RATE and rates["naive"] <= rates[best] / 2
        met = met or ok
        lines.append(
            f"- {grid.backend}, jitter proxy, 0 ms window: best {best} {rates[best]:.0%}, "
            f"naive {rates['naive']:.0%}, seed-style {rates['seed-style']:.0%}: "
            + ("meets" if ok else "does not meet")
            + f" the goal (best >= {GOAL_RATE:.0%}, naive at most half of it)"
        )
    lines.append("- goal " + ("MET" if met else "NOT MET") + " on at least one backend")
    return lines


def _windows(text: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in text.split(","))
    if not values or not all(0 <= v <= 1000 for v in values):
        raise argparse.ArgumentTypeError("race windows must be within 0..1000 ms")
    return values


def parse_args(argv: Sequence[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds per cell (default 20)")
    parser.add_argument(
        "-n", type=int, default=2, dest="count", help="purchases per round (default 2)"
    )
    parser.add_argument(
        "--windows",
        type=_windows,
        default=WINDOWS_MS,
        help="race windows in ms, comma-separated (default 0,0.1,1,10)",
    )
    parser.add_argument(
        "--scenario", default="inventory", help="the scenario raced (default inventory)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(POSTGRES_ENV),
        help=f"PostgreSQL for the second backend (default ${POSTGRES_ENV}; none: SQLite only)",
    )
    parser.add_argument("--delay-ms", type=float, default=20.0, help="jitter proxy mean delay")
    parser.add_argument("--jitter-ms", type=float, default=10.0, help="jitter proxy ± range")
    parser.add_argument("--seed", type=int, default=1, help="jitter proxy seed")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 rounds, 0 and 10 ms")
    ns = parser.parse_args(argv)
    if not (1 <= ns.rounds <= 200 and 2 <= ns.count <= 100):
        parser.error("--rounds within 1..200, -n within 2..100")
    rounds, windows = (3, (0.0, 10.0)) if ns.quick else (ns.rounds, ns.windows)
    return Args(
        rounds, ns.count, windows, ns.scenario, ns.postgres_url, ns.delay_ms, ns.jitter_ms, ns.seed
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    backends: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.postgres_url:
        backends.append(("PostgreSQL", args.postgres_url))
    else:
        print(f"no PostgreSQL: give --postgres-url or set {POSTGRES_ENV}", file=sys.stderr)
    clock = time.perf_counter()
    grids = [g for name, url in backends for g in run_backend(name, url, args)]
    jitter = f"jitter proxy {args.delay_ms:g} ± {args.jitter_ms:g} ms per chunk"
    took = time.perf_counter() - clock
    print(
        f"{args.scenario}: {args.count} requests x {args.rounds} rounds per cell; {jitter}; "
        f"{took:.0f} s\n"
    )
    for grid in grids:
        print(table(grid, args.windows) + "\n")
    print("\n".join(goal(grids)))


if __name__ == "__main__":
    main()
