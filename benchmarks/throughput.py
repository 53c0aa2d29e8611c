"""Throughput of the lab: purchases per second per strategy against the rate of an empty endpoint.

For each backend and worker count, one ``toctou serve`` process is loaded by many keep-alive
clients: first ``GET /health`` (no database: the server's ceiling), then every fixed purchase
strategy on one hot item whose stock never runs out. The raw conditional UPDATE is then timed in
this process, with no HTTP at all. Last, a keep-alive latency check compares one and two
worker processes.

Compare numbers within one run only: the client, the server and the database share the machine.
CPU time is read from /proc (Linux) to split each request's cost: client, server and the rest.

    .venv/bin/python benchmarks/throughput.py --postgres-url postgresql://... --mariadb-url mysql://...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import delete, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from toctou.cli.serve import is_loopback
from toctou.lab.app import prepare_database
from toctou.lab.db import Database, open_database
from toctou.lab.models import Item, Order
from toctou.lab.process import LabProcess, serve_lab

FIXED_STRATEGIES = ("atomic", "lock", "optimistic", "serializable", "constraint")
HOT_ITEM = 900_000
RAW_ITEM = 900_001
BIG_STOCK = 1_000_000_000  # never runs out within a benchmark
RAW_UPDATE = text(
    "UPDATE items SET stock = stock - 1, version = version + 1 WHERE id = :id AND stock >= 1"
)
TICKS = os.sysconf("SC_CLK_TCK")
ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1)

Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class Cell:
    """What one load of one row on one server did."""

    done: int = 0  # 2xx answers (or raw UPDATEs that took a unit)
    rejected: int = 0  # 409
    other: Counter[str] = field(default_factory=Counter)  # any other status or error
    attempts: int = 0  # summed over the 2xx answers
    workers: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    busy_cpu: float = 0.0  # the whole machine, every core

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def record(self, reply: httpx.Response) -> None:
        if reply.status_code == 409:
            self.rejected += 1
        elif not reply.is_success:
            self.other[str(reply.status_code)] += 1
        else:
            body = reply.json()
            self.done += 1
            self.attempts += int(body.get("attempts", 1))
            self.workers[int(body["worker"])] += 1


# --- CPU accounting ---------------------------------------------------------------------------


def _process_cpu(pid: int) -> float:
    """utime + stime of one process, in seconds (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def _machine_busy() -> float:
    """CPU-seconds the whole machine spent outside idle and iowait since boot."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    return (sum(values[:8]) - values[3] - values[4]) / TICKS


@contextmanager
def metered(cell: Cell, server_pids: Sequence[int]) -> Iterator[None]:
    """Fill ``cell``'s wall time and the CPU time spent by this process, the server and all."""
    wall, client = time.perf_counter(), time.process_time()
    server, busy = sum(map(_process_cpu, server_pids)), _machine_busy()
    yield
    cell.seconds = time.perf_counter() - wall
    cell.client_cpu = time.process_time() - client
    cell.server_cpu = sum(map(_process_cpu, server_pids)) - server
    cell.busy_cpu = _machine_busy() - busy


# --- HTTP load --------------------------------------------------------------------------------


async def _client_loop(client: httpx.AsyncClient, send: Send, deadline: float, cell: Cell) -> None:
    while time.perf_counter() < deadline:
        try:
            reply = await send(client)
        except httpx.HTTPError as exc:
            cell.other[type(exc).__name__] += 1
            continue
        cell.record(reply)


async def _drive(
    clients: Sequence[httpx.AsyncClient], send: Send, seconds: float, cell: Cell
) -> None:
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(_client_loop(c, send, deadline, cell) for c in clients))


async def measure(
    clients: Sequence[httpx.AsyncClient], send: Send, pids: Sequence[int], args: argparse.Namespace
) -> Cell:
    """A short unmeasured warm-up, then ``args.seconds`` of back-to-back requests per client."""
    await _drive(clients, send, args.warmup, Cell())
    cell = Cell()
    with metered(cell, pids):
        await _drive(clients, send, args.seconds, cell)
    return cell


async def get_health(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/health")


def purchase(strategy: str) -> Send:
    path = f"/inventory/{strategy}/purchase"
    body = {"item_id": HOT_ITEM, "quantity": 1, "buyer": "bench"}

    async def send(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(path, json=body)

    return send


async def reset_item(client: httpx.AsyncClient, stock: int) -> None:
    reply = await client.post("/lab/reset", json={"item_id": HOT_ITEM, "stock": stock})
    reply.raise_for_status()


async def http_cells(lab: LabProcess, args: argparse.Namespace) -> dict[str, Cell]:
    """Load /health, then each strategy, over ``args.clients`` warmed keep-alive connections."""
    pids = sorted(lab.worker_pids | {lab.process.pid})
    clients = [
        httpx.AsyncClient(base_url=lab.base_url, limits=ONE_CONNECTION, timeout=60)
        for _ in range(args.clients)
    ]
    try:
        await asyncio.gather(*(c.get("/health") for c in clients))  # open every connection
        cells = {"health": await measure(clients, get_health, pids, args)}
        for strategy in args.strategies:
            await reset_item(clients[0], BIG_STOCK)
            cells[strategy] = await measure(clients, purchase(strategy), pids, args)
        await reset_item(clients[0], 0)  # deletes the benchmark's orders
        return cells
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


# --- the raw conditional UPDATE, in this process ----------------------------------------------


async def _update_loop(db: Database, deadline: float, cell: Cell) -> None:
    while time.perf_counter() < deadline:
        try:
            async with db.engine.begin() as conn:
                result = await conn.execute(RAW_UPDATE, {"id": RAW_ITEM})
        except DBAPIError as exc:
            cell.other[type(exc.orig).__name__] += 1
            continue
        if result.rowcount == 1:
            cell.done += 1
            cell.attempts += 1
        else:
            cell.other["no row"] += 1


async def _hammer(db: Database, tasks: int, seconds: float, cell: Cell) -> None:
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(_update_loop(db, deadline, cell) for _ in range(tasks)))


async def _forget_items(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(delete(Order).where(Order.item_id.in_((HOT_ITEM, RAW_ITEM))))
        await conn.execute(delete(Item).where(Item.id.in_((HOT_ITEM, RAW_ITEM))))


async def _seed_raw_item(db: Database) -> None:
    await _forget_items(db)
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(Item).values(
                id=RAW_ITEM, name="raw", stock=BIG_STOCK, initial_stock=BIG_STOCK, version=0
            )
        )


async def raw_cells(url: str, args: argparse.Namespace) -> dict[str, Cell]:
    """The conditional UPDATE alone, each in its own transaction, from 1 and from N tasks."""
    db = open_database(url)  # the lab's default pool: 10 + 10 overflow
    cells: dict[str, Cell] = {}
    try:
        await prepare_database(db)
        await _seed_raw_item(db)
        for tasks in (1, args.clients):
            await _hammer(db, tasks, args.warmup, Cell())
            cell = cells[f"raw UPDATE x{tasks}"] = Cell()
            with metered(cell, ()):
                await _hammer(db, tasks, args.seconds, cell)
        return cells
    finally:
        await _forget_items(db)
        await db.dispose()


# --- one backend ------------------------------------------------------------------------------


def run_backend(url: str, args: argparse.Namespace) -> dict[int, dict[str, Cell]]:
    """Every row for every worker count; the server is stopped while the raw UPDATE runs."""
    columns: dict[int, dict[str, Cell]] = {}
    for workers in args.workers:
        with serve_lab(db_url=url, workers=workers) as lab:
            cells = asyncio.run(http_cells(lab, args))
        cells.update(asyncio.run(raw_cells(url, args)))
        columns[workers] = cells
    return columns


def _ratio(cell: Cell, column: dict[str, Cell]) -> str:
    health = column["health"].rate
    return f"{cell.rate / health:.2f}" if health else "-"


def print_rates(name: str, columns: dict[int, dict[str, Cell]], args: argparse.Namespace) -> None:
    head = "".join(f"{f'workers={w}':>20}" for w in columns)
    sub = "".join(f"{'req/s':>12}{'ratio':>8}" for _ in columns)
    print(f"\n{name}: {args.clients} clients, {args.seconds:g} s per cell")
    print(f"{'':<18}{head}\n{'':<18}{sub}")
    for row in next(iter(columns.values())):
        values = "".join(f"{c[row].rate:>12.0f}{_ratio(c[row], c):>8}" for c in columns.values())
        print(f"{row:<18}{values}")


def _per_request_us(cpu: float, cell: Cell) -> str:
    return f"{cpu / cell.done * 1e6:.0f}" if cell.done else "-"


def _detail_line(row: str, workers: int, cell: Cell) -> str:
    rest = cell.busy_cpu - cell.client_cpu - cell.server_cpu
    other = ",".join(f"{k}:{v}" for k, v in cell.other.items()) or "0"
    attempts = f"{cell.attempts / cell.done:.2f}" if cell.done else "-"
    shares = "/".join(f"{n * 100 // cell.done}" for _, n in cell.workers.most_common())
    return (
        f"{row:<18}{workers:>3}{cell.done:>8}{cell.rejected:>6}  {other:<10}{attempts:>6}"
        f"{_per_request_us(cell.client_cpu, cell):>9}{_per_request_us(cell.server_cpu, cell):>9}"
        f"{_per_request_us(rest, cell):>9}{cell.busy_cpu / cell.seconds:>7.2f}  {shares or '-'}"
    )


def print_details(columns: dict[int, dict[str, Cell]]) -> None:
    print(
        f"{'':<18}{'w':>3}{'2xx':>8}{'409':>6}  {'other':<10}{'tries':>6}"
        f"{'client':>9}{'server':>9}{'rest':>9}{'cores':>7}  worker share %"
    )
    print(f"{'':<18}{'':>3}{'':>8}{'':>6}  {'':<10}{'':>6}{'(CPU µs per 2xx)':>27}{'busy':>7}")
    for row in next(iter(columns.values())):
        for workers, cells in columns.items():
            print(_detail_line(row, workers, cells[row]))


# --- keep-alive latency -----------------------------------------------------------------------


def keepalive_latency(workers: int, requests: int) -> list[float]:
    """Milliseconds per sequential GET /health on one keep-alive connection."""
    samples: list[float] = []
    with (
        serve_lab(workers=workers) as lab,
        httpx.Client(base_url=lab.base_url, limits=ONE_CONNECTION) as client,
    ):
        client.get("/health").raise_for_status()
        for _ in range(requests):
            started = time.perf_counter()
            client.get("/health").raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def print_latency(requests: int) -> None:
    print(f"\nkeep-alive latency: {requests} sequential GET /health on one connection (ms)")
    print(f"{'workers':>8}{'median':>9}{'p90':>9}{'max':>9}")
    for workers in (1, 2):
        samples = keepalive_latency(workers, requests)
        p90 = statistics.quantiles(samples, n=10)[8]
        print(f"{workers:>8}{statistics.median(samples):>9.2f}{p90:>9.2f}{max(samples):>9.2f}")


# --- main -------------------------------------------------------------------------------------


def _csv(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def _loopback_url(raw: str) -> str:
    host = make_url(raw).host
    if host is not None and not is_loopback(host):
        raise argparse.ArgumentTypeError(f"the benchmark only talks to loopback, not {host!r}")
    return raw


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per cell")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured load before a cell")
    parser.add_argument("--clients", type=int, default=50, help="concurrent keep-alive clients")
    parser.add_argument(
        "--workers", type=lambda s: [int(v) for v in _csv(s)], default=[1, 4], help="e.g. 1,4"
    )
    parser.add_argument("--strategies", type=_csv, default=list(FIXED_STRATEGIES))
    parser.add_argument(
        "--postgres-url", type=_loopback_url, default=os.environ.get("TOCTOU_TEST_POSTGRES_URL")
    )
    parser.add_argument(
        "--mariadb-url", type=_loopback_url, default=os.environ.get("TOCTOU_TEST_MARIADB_URL")
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite backend")
    parser.add_argument(
        "--latency-requests", type=int, default=200, help="keep-alive latency check (0 skips it)"
    )
    return parser.parse_args(argv)


def backends(args: argparse.Namespace, tmp: Path) -> dict[str, str]:
    found = {} if args.no_sqlite else {"sqlite": f"sqlite:///{tmp / 'bench.db'}"}
    if args.postgres_url:
        found["postgresql"] = _loopback_url(args.postgres_url)
    if args.mariadb_url:
        found["mariadb"] = _loopback_url(args.mariadb_url)
    return found


def print_key_ratio(results: dict[str, dict[int, dict[str, Cell]]]) -> None:
    print("\nkey ratio: atomic / health (goal >= 0.5)")
    for name in ("sqlite", "postgresql"):
        for workers, cells in results.get(name, {}).items():
            if "atomic" in cells:
                print(f"  {name:<11} workers={workers}: {_ratio(cells['atomic'], cells)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, pid {os.getpid()}")
    results: dict[str, dict[int, dict[str, Cell]]] = {}
    with tempfile.TemporaryDirectory(prefix="toctou-bench-") as tmp:
        for name, url in backends(args, Path(tmp)).items():
            results[name] = run_backend(url, args)
            print_rates(name, results[name], args)
            print_details(results[name])
    print_key_ratio(results)
    if args.latency_requests > 0:
        print_latency(args.latency_requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
