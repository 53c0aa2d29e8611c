"""Throughput of the lab: purchases per second per strategy against the rate of an empty endpoint.

For each backend and worker count, one ``toctou serve`` process is loaded by many keep-alive
clients: first ``GET /health`` (no database: the server's ceiling), then every fixed purchase
strategy on one hot item whose stock never runs out. Then, with no HTTP at all, this process times
the raw conditional UPDATE and the lab's ``atomic`` strategy called directly. Last, a keep-alive
latency check compares one and two worker processes.

Compare numbers within one run only: the client, the server and the database share the machine.
CPU time is read from /proc (Linux) to split each request's cost between this process (the
clients), the lab server, the database server and everything else running on the machine.

    .venv/bin/python benchmarks/throughput.py --postgres-url postgresql://... --mariadb-url mysql://...
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.metadata
import importlib.util
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
from typing import Any

import httpx
from sqlalchemy import delete, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from toctou import __version__
from toctou.cli.serve import is_loopback
from toctou.lab.app import prepare_database
from toctou.lab.config import Settings
from toctou.lab.db import Database, open_database
from toctou.lab.errors import Rejected
from toctou.lab.process import LabProcess, LabStartError, serve_lab
from toctou.lab.runtime import Lab
from toctou.lab.scenarios.inventory.models import Item, Order
from toctou.lab.scenarios.inventory.strategies import STRATEGIES, Purchase

FIXED_STRATEGIES = ("atomic", "lock", "optimistic", "serializable", "constraint")
HOT_ITEM = 900_000
RAW_ITEM = 900_001
BIG_STOCK = 1_000_000_000  # never runs out within a benchmark
RAW_UPDATE = text(
    "UPDATE items SET stock = stock - 1, version = version + 1 WHERE id = :id AND stock >= 1"
)
TICKS = os.sysconf("SC_CLK_TCK")
ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1)
LABEL = 20  # width of the row names
DB_PROCESSES = frozenset({"postgres", "mariadbd", "mysqld"})

Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class Cell:
    """What one load of one row on one server did."""

    done: int = 0  # 2xx answers (or in-process transactions that took a unit)
    rejected: int = 0  # 409
    other: Counter[str] = field(default_factory=Counter)  # any other status or error
    attempts: int = 0  # summed over the 2xx answers
    workers: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    bench_cpu: float = 0.0  # this process: the HTTP clients, or the in-process database work
    server_cpu: float = 0.0  # every process of the lab server
    db_cpu: float = 0.0  # the PostgreSQL and MariaDB server processes
    busy_cpu: float = 0.0  # the whole machine, every core
    steal_cpu: float = 0.0  # time the hypervisor gave to other machines

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


def _process_cpu(pid: int, *, reaped: bool = False) -> float:
    """utime + stime of one process in seconds (0 once it is gone); ``reaped`` adds its children's
    that it waited for, e.g. PostgreSQL backends that exited (their postmaster reaps them)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return sum(int(v) for v in fields[11 : 15 if reaped else 13]) / TICKS


def _database_cpu() -> float:
    """CPU time of every local database server process (SQLite runs inside the lab's)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() in DB_PROCESSES:
                total += _process_cpu(int(entry.name), reaped=True)
        except OSError:
            continue
    return total


def _machine_cpu() -> tuple[float, float]:
    """CPU-seconds since boot of every core: (busy, stolen by the hypervisor)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq) / TICKS, steal / TICKS


def _snapshot(server_pids: Sequence[int]) -> tuple[float, ...]:
    server = sum(_process_cpu(pid) for pid in server_pids)
    return (time.perf_counter(), time.process_time(), server, _database_cpu(), *_machine_cpu())


@contextmanager
def metered(cell: Cell, server_pids: Sequence[int]) -> Iterator[None]:
    """Fill ``cell``'s wall time and the CPU time of this process, the server, the database
    servers and the whole machine."""
    before = _snapshot(server_pids)
    yield
    spent = [b - a for a, b in zip(before, _snapshot(server_pids), strict=True)]
    cell.seconds, cell.bench_cpu, cell.server_cpu, cell.db_cpu, cell.busy_cpu, cell.steal_cpu = (
        spent
    )


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
        return cells  # in_process_cells deletes the item and its orders
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


# --- the database work alone, in this process -------------------------------------------------

Work = Callable[[], Awaitable[bool]]  # one transaction; True when it took a unit


async def _work_loop(work: Work, deadline: float, cell: Cell) -> None:
    while time.perf_counter() < deadline:
        try:
            took = await work()
        except (DBAPIError, Rejected) as exc:
            cell.other[type(exc).__name__] += 1
            continue
        if took:
            cell.done += 1
            cell.attempts += 1
        else:
            cell.other["no row"] += 1


async def _hammer(work: Work, tasks: int, seconds: float, cell: Cell) -> None:
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(_work_loop(work, deadline, cell) for _ in range(tasks)))


def raw_update(db: Database) -> Work:
    """The conditional UPDATE in its own transaction, through SQLAlchemy Core and the driver."""

    async def work() -> bool:
        async with db.engine.begin() as conn:
            result = await conn.execute(RAW_UPDATE, {"id": RAW_ITEM})
        return result.rowcount == 1

    return work


def atomic_without_http(db: Database, url: str) -> Work:
    """The lab's own ``atomic`` strategy (ORM session, UPDATE, order INSERT), called directly."""
    lab = Lab(settings=Settings(database_url=url), db=db)
    purchase = Purchase(item_id=RAW_ITEM, quantity=1, buyer="bench", strategy="atomic")

    async def work() -> bool:
        return (await STRATEGIES["atomic"].run(lab, purchase)).attempts >= 1

    return work


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


async def in_process_cells(url: str, args: argparse.Namespace) -> dict[str, Cell]:
    """The raw UPDATE, then ``atomic`` without HTTP, each from 1 task and from N tasks."""
    db = open_database(url)  # the lab's default pool size
    cells: dict[str, Cell] = {}
    try:
        await prepare_database(db)
        await _seed_raw_item(db)
        rows = {"raw UPDATE": raw_update(db), "atomic, no HTTP": atomic_without_http(db, url)}
        for name, work in rows.items():
            for tasks in (1, args.clients):
                await _hammer(work, tasks, args.warmup, Cell())
                cell = cells[f"{name} x{tasks}"] = Cell()
                with metered(cell, ()):
                    await _hammer(work, tasks, args.seconds, cell)
        return cells
    finally:
        await _forget_items(db)
        await db.dispose()


# --- one backend ------------------------------------------------------------------------------


def run_backend(url: str, args: argparse.Namespace) -> dict[int, dict[str, Cell]]:
    """Every row for every worker count; the server is stopped while the in-process rows run."""
    columns: dict[int, dict[str, Cell]] = {}
    for workers in args.workers:
        with serve_lab(db_url=url, workers=workers) as lab:
            cells = asyncio.run(http_cells(lab, args))
        cells.update(asyncio.run(in_process_cells(url, args)))
        columns[workers] = cells
    return columns


def _ratio(cell: Cell, column: dict[str, Cell]) -> str:
    health = column["health"].rate
    return f"{cell.rate / health:.2f}" if health else "-"


def print_rates(name: str, columns: dict[int, dict[str, Cell]], args: argparse.Namespace) -> None:
    head = "".join(f"{f'workers={w}':>20}" for w in columns)
    sub = "".join(f"{'req/s':>12}{'ratio':>8}" for _ in columns)
    print(f"\n{name}: {args.clients} clients, {args.seconds:g} s per cell")
    print(f"{'':<{LABEL}}{head}\n{'':<{LABEL}}{sub}")
    for row in next(iter(columns.values())):
        values = "".join(f"{c[row].rate:>12.0f}{_ratio(c[row], c):>8}" for c in columns.values())
        print(f"{row:<{LABEL}}{values}")


def _us(cpu: float, cell: Cell) -> str:
    return f"{cpu / cell.done * 1e6:.0f}" if cell.done else "-"


def _detail_line(row: str, workers: int, cell: Cell) -> str:
    errors = ",".join(f"{k}:{v}" for k, v in cell.other.items()) or "0"
    attempts = f"{cell.attempts / cell.done:.2f}" if cell.done else "-"
    cpu = (cell.bench_cpu, cell.server_cpu, cell.db_cpu, _other_cpu(cell), cell.steal_cpu)
    cores = f"{cell.busy_cpu / cell.seconds:.2f}" if cell.seconds else "-"
    shares = "/".join(f"{n * 100 // cell.done}" for _, n in cell.workers.most_common())
    return (
        f"{row:<{LABEL}}{workers:>3}{cell.done:>7}{cell.rejected:>6}  {errors:<8}{attempts:>6}"
        + "".join(f"{_us(c, cell):>8}" for c in cpu)
        + f"{cores:>7}  {shares or '-'}"
    )


def print_details(columns: dict[int, dict[str, Cell]]) -> None:
    print(
        f"{'':<{LABEL}}{'w':>3}{'2xx':>7}{'409':>6}  {'errors':<8}{'tries':>6}"
        f"{'bench':>8}{'server':>8}{'db':>8}{'else':>8}{'steal':>8}{'cores':>7}  worker share %"
    )
    print(f"{'':<{LABEL + 36}}{'CPU µs per 2xx (or per transaction)':>40}{'busy':>7}")
    for row in next(iter(columns.values())):
        for workers, cells in columns.items():
            print(_detail_line(row, workers, cells[row]))
    noise = " and ".join(
        f"{max(_other_cpu(c) / c.seconds for c in cells.values() if c.seconds):.2f}"
        for cells in columns.values()
    )
    print(f"noise check: everything else used at most {noise} cores (a quiet machine: ~0)")


def _other_cpu(cell: Cell) -> float:
    """CPU time of everything else on the machine: other users' tests, benchmarks, the kernel."""
    return cell.busy_cpu - cell.bench_cpu - cell.server_cpu - cell.db_cpu


# --- keep-alive latency -----------------------------------------------------------------------


def _timed(get: Callable[[], object], requests: int) -> list[float]:
    """Milliseconds per call of ``get``, after one unmeasured call."""
    get()
    samples: list[float] = []
    for _ in range(requests):
        started = time.perf_counter()
        get()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _stdlib_get(conn: http.client.HTTPConnection) -> None:
    conn.request("GET", "/health")
    reply = conn.getresponse()
    reply.read()
    if reply.status != 200:
        raise RuntimeError(f"GET /health answered {reply.status}")


def keepalive_latency(workers: int, requests: int) -> dict[str, list[float]]:
    """Sequential GET /health on one keep-alive connection, with httpx and with http.client."""
    with serve_lab(workers=workers) as lab:
        with httpx.Client(base_url=lab.base_url, limits=ONE_CONNECTION) as client:
            samples = {"httpx": _timed(lambda: client.get("/health").raise_for_status(), requests)}
        url = httpx.URL(lab.base_url)
        conn = http.client.HTTPConnection(url.host, url.port, timeout=10)
        try:
            samples["http.client"] = _timed(lambda: _stdlib_get(conn), requests)
        finally:
            conn.close()
    return samples


def print_latency(requests: int) -> None:
    print(f"\nkeep-alive latency: {requests} sequential GET /health on one connection (ms)")
    print(f"{'workers':>8}  {'client':<12}{'median':>8}{'p90':>8}{'max':>8}")
    for workers in (1, 2):
        for client, samples in keepalive_latency(workers, requests).items():
            median, p90 = statistics.median(samples), statistics.quantiles(samples, n=10)[8]
            print(f"{workers:>8}  {client:<12}{median:>8.2f}{p90:>8.2f}{max(samples):>8.2f}")


# --- main -------------------------------------------------------------------------------------


def _csv(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def _loopback_url(raw: str) -> str:
    host = make_url(raw).host
    if host is not None and not is_loopback(host):
        raise argparse.ArgumentTypeError(f"the benchmark only talks to loopback, not {host!r}")
    return raw


def _bounded(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], Any]:
    """An argparse type that keeps a number within [low, high], so a run stays bounded."""

    def convert(raw: str) -> float:
        value = kind(raw)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{raw} is not within {low:g}..{high:g}")
        return value

    return convert


def _worker_counts(raw: str) -> list[int]:
    return [int(_bounded(int, 1, 16)(v)) for v in _csv(raw)]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--seconds", type=_bounded(float, 0.1, 60), default=3.0, help="measured time per cell")
    add("--warmup", type=_bounded(float, 0, 10), default=0.5, help="unmeasured load first")
    add("--clients", type=_bounded(int, 1, 200), default=50, help="concurrent keep-alive clients")
    add("--workers", type=_worker_counts, default=[1, 4], help="server worker counts, e.g. 1,4")
    add("--strategies", type=_csv, default=list(FIXED_STRATEGIES), help="comma-separated")
    add("--postgres-url", type=_loopback_url, default=os.environ.get("TOCTOU_TEST_POSTGRES_URL"))
    add("--mariadb-url", type=_loopback_url, default=os.environ.get("TOCTOU_TEST_MARIADB_URL"))
    add("--no-sqlite", action="store_true", help="skip the SQLite backend")
    add(
        "--latency-requests",
        type=_bounded(int, 0, 10_000),
        default=200,
        help="requests in the keep-alive latency check (0 skips it)",
    )
    return parser.parse_args(argv)


def backends(args: argparse.Namespace, tmp: Path) -> dict[str, str]:
    found = {} if args.no_sqlite else {"sqlite": f"sqlite:///{tmp / 'bench.db'}"}
    if args.postgres_url:
        found["postgresql"] = args.postgres_url
    if args.mariadb_url:
        found["mariadb"] = args.mariadb_url
    return found


def _server_cost_ratio(cell: Cell, health: Cell) -> str:
    """How many /health answers the server's CPU could give for the CPU of one of ``cell``'s."""
    if not (cell.done and health.done and cell.server_cpu):
        return "-"
    return f"{(health.server_cpu / health.done) / (cell.server_cpu / cell.done):.2f}"


def print_key_ratio(results: dict[str, dict[int, dict[str, Cell]]]) -> None:
    print("\nkey ratio: atomic / health (goal >= 0.5)")
    print(f"  {'':<22}{'rate ratio':>12}{'server CPU per request, health / atomic':>42}")
    for name in ("sqlite", "postgresql"):
        for workers, cells in results.get(name, {}).items():
            if "atomic" in cells:
                rate = _ratio(cells["atomic"], cells)
                cost = _server_cost_ratio(cells["atomic"], cells["health"])
                print(f"  {name + f' workers={workers}':<22}{rate:>12}{cost:>42}")


def server_stack() -> str:
    """What uvicorn's automatic choice picks in the lab's processes (same interpreter as this)."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"uvicorn {importlib.metadata.version('uvicorn')} ({loop} loop, {parser} parser)"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"toctou {__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"server: {server_stack()}; clients: httpx {httpx.__version__}")
    results: dict[str, dict[int, dict[str, Cell]]] = {}
    with tempfile.TemporaryDirectory(prefix="toctou-bench-") as tmp:
        wanted = backends(args, Path(tmp))
        for name, url in wanted.items():
            try:
                results[name] = run_backend(url, args)
            except (httpx.HTTPError, DBAPIError, LabStartError) as exc:
                # e.g. the server went away or refused a connection: skip this backend
                print(f"\n{name}: failed, skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            print_rates(name, results[name], args)
            print_details(results[name])
    if results:
        print_key_ratio(results)
    if args.latency_requests > 0:
        print_latency(args.latency_requests)
    return 0 if len(results) == len(wanted) else 1


if __name__ == "__main__":
    sys.exit(main())
