"""``GET /health`` latency while 200 requests hit one route at once: the seed's freeze, measured.

For each server configuration and route, a burst of 200 requests on fresh connections, all at
once (the engine's ``naive`` technique, as the seed's client sends them), runs in a separate
process, while this process sends ``GET /health`` on one keep-alive connection every 5 ms.
Only probes sent while the burst was in flight count. Bursts are interleaved over the
configurations (burst 1 of every row, then burst 2...), so load from elsewhere hits every row
alike; each row prints probes, median, p90 and max over its bursts.

Configurations (one ``toctou serve`` worker each, SQLite unless ``--db`` is given):

- ``uvloop+httptools``: the lab as installed (uvicorn picks both when present);
- ``asyncio+h11``: the same lab with uvloop and httptools hidden from the server process (a
  directory of modules that raise ImportError goes first on its ``PYTHONPATH``), as on an
  install without them;
- ``pool N``: ``TOCTOU_POOL_SIZE``, which is also how many database requests a worker admits
  at once (``toctou.lab.admission``); with a pool wider than the burst nothing queues at the gate,
  as before the lab had one (SQLite only: a server database would refuse that many connections).

    .venv/bin/python benchmarks/responsive.py                # about 80 s
    .venv/bin/python benchmarks/responsive.py --db postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from toctou.cli.serve import is_loopback
from toctou.engine import RacePlan, RaceRequest, run_race
from toctou.lab.process import LabProcess, serve_lab

BURST = 200
ROUTES = {
    "POST /buy-vulnerable": ("POST", "/buy-vulnerable", None),
    "atomic purchase": ("POST", "/inventory/atomic/purchase", {"item_id": 1, "quantity": 1}),
    "vulnerable purchase": (
        "POST",
        "/inventory/vulnerable/purchase",
        {"item_id": 1, "quantity": 1},
    ),
    "serializable purchase": (
        "POST",
        "/inventory/serializable/purchase",
        {"item_id": 1, "quantity": 1},
    ),
}


@dataclass(frozen=True)
class Config:
    name: str
    pool: int
    plain_asyncio: bool


CONFIGS = [
    Config("uvloop+httptools, pool 10 (default)", 10, plain_asyncio=False),
    Config("asyncio+h11, pool 10", 10, plain_asyncio=True),
    Config("uvloop+httptools, pool 20", 20, plain_asyncio=False),
    Config("asyncio+h11, pool 20", 20, plain_asyncio=True),
    Config("asyncio+h11, pool 200 (no queue)", 200, plain_asyncio=True),
]


@dataclass
class Row:
    latencies: list[float] = field(default_factory=list)
    probes_per_burst: list[int] = field(default_factory=list)


def burst(url: str, method: str, body: bytes) -> tuple[int, float, float]:
    """BURST requests on fresh connections at once; (answered, wall start, wall end)."""
    headers = (("Content-Type", "application/json"),) if body else ()
    plan = RacePlan.repeat(RaceRequest(url, method, headers, body), BURST, technique="naive")
    started = time.time()
    attempts = run_race(plan).rounds[0].attempts
    return sum(a.status is not None for a in attempts), started, time.time()


def probe(base_url: str, running: Future[tuple[int, float, float]]) -> list[float]:
    """Latency (ms) of each /health probe sent while ``running`` was in flight."""
    sent: list[tuple[float, float]] = []
    # A full collection in this (long-lived) process would count as server latency.
    gc.disable()
    try:
        with httpx.Client(base_url=base_url, timeout=5) as client:
            while not running.done():
                wall, start = time.time(), time.perf_counter()
                client.get("/health").raise_for_status()
                sent.append((wall, (time.perf_counter() - start) * 1000))
                time.sleep(0.005)
    finally:
        gc.enable()
    answered, began, ended = running.result()
    if answered != BURST:
        raise RuntimeError(f"only {answered} of {BURST} requests were answered")
    return [ms for wall, ms in sent if began <= wall <= ended]


def _hide_fast_stack(where: Path) -> Path:
    """A directory whose ``uvloop`` and ``httptools`` fail to import, to go first on a path."""
    for name in ("uvloop", "httptools"):
        package = where / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(
            f"raise ImportError('{name} hidden by the benchmark')\n"
        )
    return where


@contextlib.contextmanager
def lab_for(config: Config, db: str | None, tmp: Path) -> Iterator[LabProcess]:
    env = {"TOCTOU_POOL_SIZE": str(config.pool)}
    if config.plain_asyncio:
        env["PYTHONPATH"] = str(_hide_fast_stack(tmp / "hidden"))
    with serve_lab(db_url=db, env=env, data_dir=tmp / f"lab{CONFIGS.index(config)}") as lab:
        yield lab


def run(args: argparse.Namespace) -> dict[tuple[str, str], Row]:
    configs = [c for c in CONFIGS if args.db is None or c.pool <= 20]
    rows = {(c.name, route): Row() for c in configs for route in ROUTES}
    context = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="toctou-responsive-") as raw_tmp,
        contextlib.ExitStack() as stack,
        ProcessPoolExecutor(1, mp_context=context) as pool,
    ):
        tmp = Path(raw_tmp)
        labs = {c.name: stack.enter_context(lab_for(c, args.db, tmp)) for c in configs}
        pool.submit(time.sleep, 0).result()
        for _ in range(args.bursts):
            for config in configs:
                lab = labs[config.name]
                for route, (method, path, body) in ROUTES.items():
                    httpx.post(f"{lab.base_url}/lab/reset", json={"item_id": 1, "stock": 1})
                    raw = json.dumps(body).encode() if body else b""
                    running = pool.submit(burst, lab.base_url + path, method, raw)
                    latencies = probe(lab.base_url, running)
                    rows[config.name, route].latencies += latencies
                    rows[config.name, route].probes_per_burst.append(len(latencies))
    return rows


def print_table(rows: dict[tuple[str, str], Row]) -> None:
    print(f"\n/health latency (ms) while {BURST} requests hit the route at once")
    print(f"{'configuration':<38}{'route':<24}{'probes':>8}{'median':>9}{'p90':>8}{'max':>8}")
    for (config, route), row in rows.items():
        got = sorted(row.latencies)
        if not got:
            print(f"{config:<38}{route:<24}{0:>8}{'-':>9}{'-':>8}{'-':>8}")
            continue
        p90 = got[min(len(got) - 1, int(len(got) * 0.9))]
        print(
            f"{config:<38}{route:<24}{len(got):>8}{statistics.median(got):>9.1f}"
            f"{p90:>8.1f}{got[-1]:>8.1f}"
        )


def _loopback_db(raw: str) -> str:
    host = make_url(raw).host
    if host is not None and not is_loopback(host):
        raise argparse.ArgumentTypeError(f"the benchmark only talks to loopback, not {host!r}")
    return raw


def _bursts(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 20:
        raise argparse.ArgumentTypeError(f"{raw} is not within 1..20")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--db", type=_loopback_db, default=None, help="default: a SQLite file")
    parser.add_argument("--bursts", type=_bursts, default=3, help="bursts per row")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"python {sys.version.split()[0]}; database: {args.db or 'SQLite'}")
    print_table(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
