"""Benchmark one collection: round trips, server time against redis_exporter, collections/s.

Everything runs on loopback: a redis-server of our own with generated data, Debian's
prometheus-redis-exporter scraping that same server, and a throwaway PostgreSQL database
(plus a temporary SQLite file). The script prints a plain table and a Markdown block; it
writes no file.
"""
from __future__ import annotations

import argparse
import inspect
import math
import os
import platform
import re
import shlex
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support is not an installed package

import redis  # noqa: E402
from redis.connection import Connection  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from monitor.collect import (  # noqa: E402
    ClientCache,
    ProbePlan,
    ProbeResult,
    parse_info,
    probe,
    sample_document,
)
from monitor.db import make_engine, make_sessionmaker, transaction, utcnow  # noqa: E402
from monitor.history import StateSnapshot, record_probe  # noqa: E402
from monitor.jobs import collect_target  # noqa: E402
from monitor.runtime import migrate  # noqa: E402
from monitor.targets import add_target  # noqa: E402
from tests.support.servers import (  # noqa: E402
    RedisServer,
    create_database,
    drop_database,
    free_port,
    wait_until,
)

EXPORTER = "/usr/bin/prometheus-redis-exporter"
# Collections run on a simulated clock that moves one production interval per call, so the
# claim, the slot and the once-a-minute latencystats behave exactly as under beat.
INTERVAL = 10.0
TIMEOUT = 10.0
GOAL_ROUND_TRIPS = 1
GOAL_COST_RATIO = 0.5
GOAL_RATE = 200.0


class BenchError(RuntimeError):
    """A measurement could not be made as intended."""


# --- counting the probe's round trips at the socket ---------------------------------------


@dataclass
class SocketMeter:
    """Socket traffic of one client; a round trip is a burst of writes followed by reads."""

    connects: int = 0
    writes: int = 0
    reads: int = 0
    round_trips: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    _writing: bool = False

    def wrote(self, size: int) -> None:
        """Count a write; the first write after a read starts a new round trip."""
        if not self._writing:
            self.round_trips += 1
            self._writing = True
        self.writes += 1
        self.bytes_out += size

    def read(self, size: int) -> None:
        """Count a read."""
        self._writing = False
        self.reads += 1
        self.bytes_in += size

    def reset(self) -> None:
        """Forget what was counted so far."""
        self.connects = self.writes = self.reads = self.round_trips = 0
        self.bytes_out = self.bytes_in = 0
        self._writing = False


class CountingSocket:
    """A socket proxy that reports every send and receive to a SocketMeter."""

    def __init__(self, sock: socket.socket, meter: SocketMeter) -> None:
        self._sock = sock
        self._meter = meter

    def sendall(self, data: Any, *args: Any) -> None:
        """Send all bytes and count one write."""
        self._meter.wrote(len(data))
        self._sock.sendall(data, *args)

    def send(self, data: Any, *args: Any) -> int:
        """Send some bytes and count one write."""
        sent = self._sock.send(data, *args)
        self._meter.wrote(sent)
        return sent

    def recv(self, size: int, *args: Any) -> bytes:
        """Receive bytes and count one read."""
        data = self._sock.recv(size, *args)
        self._meter.read(len(data))
        return data

    def recv_into(self, buffer: Any, *args: Any) -> int:
        """Receive into a buffer and count one read."""
        size = self._sock.recv_into(buffer, *args)
        self._meter.read(size)
        return size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def counting_connection(meter: SocketMeter) -> type[Connection]:
    """Return a redis-py Connection class whose sockets report to `meter`."""

    class CountingConnection(Connection):
        def _connect(self) -> Any:
            meter.connects += 1
            return CountingSocket(super()._connect(), meter)

    return CountingConnection


# --- server-side cost from INFO -----------------------------------------------------------


@dataclass
class ServerCost:
    """Counters of INFO commandstats, cpu and stats, or the difference of two readings."""

    calls: dict[str, int] = field(default_factory=dict)
    usec: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    connections: int = 0
    net_in: int = 0
    net_out: int = 0
    seconds: float = 0.0

    def combine(self, other: ServerCost, sign: int) -> ServerCost:
        """Return self + sign * other, field by field."""
        def merge(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {k: a.get(k, 0) + sign * b.get(k, 0) for k in a.keys() | b.keys()}
        return ServerCost(
            merge(self.calls, other.calls), merge(self.usec, other.usec),
            self.cpu_seconds + sign * other.cpu_seconds,
            self.connections + sign * other.connections,
            self.net_in + sign * other.net_in, self.net_out + sign * other.net_out,
            self.seconds + sign * other.seconds)

    def __add__(self, other: ServerCost) -> ServerCost:
        return self.combine(other, 1)

    def __sub__(self, other: ServerCost) -> ServerCost:
        return self.combine(other, -1)

    @property
    def total_calls(self) -> int:
        """Return the number of commands."""
        return sum(self.calls.values())

    @property
    def total_usec(self) -> int:
        """Return the server time of all commands, in µs."""
        return sum(self.usec.values())


def plain_client(port: int, db: int = 0) -> redis.Redis:
    """Return a client that sends nothing on connect but SELECT (no CLIENT SETINFO)."""
    quiet: dict[str, Any] = {"lib_name": None, "lib_version": None}
    if "driver_info" in inspect.signature(redis.Redis.__init__).parameters:
        quiet = {"driver_info": None}  # redis-py 8 deprecates lib_name and lib_version
    return redis.Redis(host="127.0.0.1", port=port, db=db, protocol=2, decode_responses=True,
                       socket_timeout=TIMEOUT, **quiet)


def stats_client(port: int) -> redis.Redis:
    """Return the measuring client: one persistent connection, raw INFO replies."""
    client = plain_client(port)
    client.set_response_callback("INFO", lambda response, **_: response)
    return client


def read_cost(client: redis.Redis) -> ServerCost:
    """Read the server's cumulative counters with one INFO call."""
    info = parse_info(client.execute_command("INFO", "commandstats", "cpu", "stats"))
    stats = {name[len("cmdstat_"):]: v for name, v in info.items()
             if name.startswith("cmdstat_") and isinstance(v, dict)}
    return ServerCost(
        calls={cmd: int(v["calls"]) for cmd, v in stats.items()},
        usec={cmd: int(v["usec"]) for cmd, v in stats.items()},
        cpu_seconds=float(info["used_cpu_sys_main_thread"])
        + float(info["used_cpu_user_main_thread"]),
        connections=int(info["total_connections_received"]),
        net_in=int(info["total_net_input_bytes"]),
        net_out=int(info["total_net_output_bytes"]),
        seconds=time.perf_counter())


def measured(client: redis.Redis, action: Callable[[], None]) -> ServerCost:
    """Return the server cost of `action`, without the cost of the INFO calls that measure it."""
    first, second = read_cost(client), read_cost(client)
    action()
    third = read_cost(client)
    # second..third holds one measuring INFO (the second); first..second holds exactly one too.
    return (third - second) - (second - first)


def idle_cpu_rate(client: redis.Redis, seconds: float) -> float:
    """Return the server's main-thread CPU seconds per second while nobody talks to it."""
    cost = measured(client, lambda: time.sleep(seconds))
    return max(cost.cpu_seconds, 0.0) / seconds


# --- the data in the target ---------------------------------------------------------------


def key_commands(i: int) -> list[tuple[Any, ...]]:
    """Return the commands that create and use key number `i`; its kind is i % 10."""
    k, kind = f"bench:{i}", i % 10
    by_kind: dict[int, list[tuple[Any, ...]]] = {
        0: [("SET", k, "x" * 40), ("GET", k), ("APPEND", k, "yz"), ("STRLEN", k)],
        1: [("SET", k, i, "EX", 3600 + i), ("INCR", k), ("INCRBY", k, 5), ("DECR", k)],
        2: [("SETEX", k, 7200, "v" * 100), ("GETRANGE", k, 0, 9), ("TTL", k), ("GET", k)],
        3: [("MSET", k, "a", f"{k}:b", "b"), ("MGET", k, f"{k}:b", "bench:missing"),
            ("EXISTS", k), ("TYPE", k)],
        4: [("HSET", k, *[x for f in range(8) for x in (f"f{f}", f * i)]), ("HGET", k, "f1"),
            ("HINCRBY", k, "f2", 3), ("HGETALL", k), ("HLEN", k), ("HMGET", k, "f1", "f9")],
        5: [("RPUSH", k, *range(10)), ("LPUSH", k, "head"), ("LRANGE", k, 0, 4), ("LLEN", k),
            ("LPOP", k)],
        6: [("SADD", k, *[f"m{m}" for m in range(10)]), ("SISMEMBER", k, "m3"),
            ("SCARD", k), ("SMEMBERS", k), ("SREM", k, "m9")],
        7: [("ZADD", k, *[x for m in range(10) for x in (m * 1.5, f"m{m}")]),
            ("ZSCORE", k, "m2"), ("ZINCRBY", k, 2, "m3"), ("ZRANGE", k, 0, 4, "WITHSCORES"),
            ("ZCARD", k), ("ZREVRANGE", k, 0, 2)],
        8: [("XADD", k, "*", "event", "login", "user", i), ("XADD", k, "*", "event", "logout"),
            ("XLEN", k), ("XRANGE", k, "-", "+", "COUNT", 2)],
        9: [("PFADD", k, "a", "b", i), ("PFCOUNT", k), ("SETBIT", f"{k}:bits", i % 512, 1),
            ("BITCOUNT", f"{k}:bits"), ("EXPIRE", k, 3600), ("GET", f"{k}:nothing")],
    }
    return by_kind[kind]


def error_commands(i: int) -> list[tuple[Any, ...]]:
    """Return a few commands that fail, so errorstats and failed_calls are not empty."""
    return [("INCR", f"bench:{i - i % 10 + 4}"),  # a hash: WRONGTYPE
            ("GET",),  # wrong number of arguments
            ("NOSUCHCOMMAND", i)]  # unknown command


def extra_commands() -> list[tuple[Any, ...]]:
    """Return one-off commands: scans, scripts, pub/sub, server commands."""
    script = "return redis.call('GET', KEYS[1])"
    return [("SCAN", 0, "COUNT", 100), ("DBSIZE",), ("EVAL", script, 1, "bench:0"),
            ("PUBLISH", "bench:events", "hello"), ("PING",), ("ECHO", "hi"), ("TIME",),
            ("RANDOMKEY",), ("RENAME", "bench:10", "bench:10:renamed"),
            ("UNLINK", "bench:20"), ("DEL", "bench:30"), ("PERSIST", "bench:11"),
            ("PEXPIRE", "bench:12", 900000), ("OBJECT", "ENCODING", "bench:4"),
            ("MEMORY", "USAGE", "bench:5")]


def run_batched(client: redis.Redis, commands: Sequence[tuple[Any, ...]],
                size: int = 1000) -> None:
    """Send commands in pipelines of `size`, ignoring the errors we provoke on purpose."""
    for start in range(0, len(commands), size):
        pipe = client.pipeline(transaction=False)
        for command in commands[start:start + size]:
            pipe.execute_command(*command)
        pipe.execute(raise_on_error=False)


def workload(keys: int, first: int = 0) -> list[tuple[Any, ...]]:
    """Return the commands that load `keys` keys, with errors every 50 keys."""
    commands: list[tuple[Any, ...]] = []
    for i in range(first, first + keys):
        commands += key_commands(i)
        if i % 50 == 0:
            commands += error_commands(i)
    return commands


def load_data(server: RedisServer, keys: int) -> None:
    """Fill db0 and db1, leave slow entries in the slowlog and one latency event."""
    main, other = plain_client(server.port), plain_client(server.port, db=1)
    try:
        in_db1 = keys // 10
        commands = workload(keys - in_db1) + extra_commands()
        run_batched(main, commands[:-200])
        run_batched(other, workload(in_db1, first=keys))
        main.config_set("slowlog-log-slower-than", 0)  # log the last commands, like a busy day
        run_batched(main, commands[-200:])
        main.config_set("slowlog-log-slower-than", 10000)
        main.config_set("latency-monitor-threshold", 1)
        main.eval("local i = 0 while i < 3000000 do i = i + 1 end return i", 0)
        main.config_set("latency-monitor-threshold", 100)
        main.execute_command("CLIENT", "SETNAME", "app")
        main.execute_command("MULTI")
        main.execute_command("INCR", "bench:1")
        main.execute_command("EXEC")
    finally:
        main.close()
        other.close()


@dataclass(frozen=True)
class DataSummary:
    """What the target holds while we measure."""

    keyspace: dict[str, str]
    commands: int
    error_kinds: int
    slowlog: int
    latency_events: int
    used_memory: str
    version: str


def summarize_data(port: int) -> DataSummary:
    """Describe the target's data from INFO, SLOWLOG LEN and LATENCY LATEST."""
    client = stats_client(port)
    try:
        return _summary(client, parse_info(client.execute_command("INFO", "everything")))
    finally:
        client.close()


def _summary(client: redis.Redis, info: dict[str, Any]) -> DataSummary:
    keyspace = {name: f"{v['keys']} keys, {v['expires']} with TTL" for name, v in info.items()
                if re.fullmatch(r"db\d+", name) and isinstance(v, dict)}
    return DataSummary(
        keyspace=keyspace,
        commands=sum(1 for name in info if name.startswith("cmdstat_")),
        error_kinds=sum(1 for name in info if name.startswith("errorstat_")),
        slowlog=int(client.execute_command("SLOWLOG", "LEN")),
        latency_events=len(client.execute_command("LATENCY", "LATEST")),
        used_memory=str(info["used_memory_human"]),
        version=str(info["redis_version"]))


# --- redis_exporter -----------------------------------------------------------------------


def exporter_version(binary: str) -> str:
    """Return the exporter's version as it prints it."""
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except OSError as exc:
        raise BenchError(f"cannot run {binary}: {exc.strerror}") from None
    match = re.search(r"Exporter (\S+)", done.stdout + done.stderr)
    if match is None:
        raise BenchError(f"{binary} --version printed no version")
    return match.group(1)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child process, killing it if it does not stop."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(TIMEOUT)


@contextmanager
def running_exporter(binary: str, redis_port: int) -> Iterator[str]:
    """Run redis_exporter on loopback against our Redis and yield its /metrics URL."""
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--redis.addr=redis://127.0.0.1:{redis_port}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: process.poll() is not None or _listening(port), TIMEOUT,
                   message=f"redis_exporter on port {port}")
        if process.poll() is not None:
            raise BenchError(f"redis_exporter exited with status {process.returncode}")
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        stop_process(process)


def loopback_opener() -> urllib.request.OpenerDirector:
    """Return a urllib opener that ignores any proxy settings of the environment."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def scrape(opener: urllib.request.OpenerDirector, url: str) -> int:
    """Scrape the exporter once, check it reached Redis, and return the body size."""
    with opener.open(url, timeout=TIMEOUT) as response:
        body: bytes = response.read()
    if b"\nredis_up 1" not in body:
        raise BenchError("redis_exporter reports redis_up != 1")
    return len(body)


# --- 1 and 2: round trips and server time, side by side -----------------------------------


@dataclass
class CostComparison:
    """Server cost of our probe and of redis_exporter's scrape on the same Redis."""

    collections: int
    rounds: list[tuple[ServerCost, ServerCost]]  # (ours, exporter) per round
    sockets: SocketMeter
    idle_cpu_rate: float
    scrape_bytes: int

    @property
    def ours(self) -> ServerCost:
        """Return our probe's cost summed over the rounds."""
        return sum((r[0] for r in self.rounds), ServerCost())

    @property
    def exporter(self) -> ServerCost:
        """Return the exporter's cost summed over the rounds."""
        return sum((r[1] for r in self.rounds), ServerCost())

    def round_ratios(self) -> list[float]:
        """Return ours/exporter server time of each round, to show the noise."""
        return [a.total_usec / b.total_usec for a, b in self.rounds if b.total_usec > 0]

    def cpu_usec(self, cost: ServerCost) -> float:
        """Return main-thread CPU µs per collection, less the idle background rate."""
        return (cost.cpu_seconds - self.idle_cpu_rate * cost.seconds) * 1e6 / self.collections


def split_evenly(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` sizes that differ by at most one."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class SteadyPlans:
    """The probe plans collect_target uses once it knows the server: latencystats one probe
    in six (once a minute at the default 10 s interval)."""

    def __init__(self) -> None:
        self.calls = 0
        self.version: str | None = None

    def next(self) -> ProbePlan:
        """Return the plan of the next probe."""
        self.calls += 1
        return ProbePlan(self.version, with_latencystats=self.calls % 6 == 1)


PLANS = SteadyPlans()


def checked_probe(client: redis.Redis) -> ProbeResult:
    """Probe like collect_target does in steady state and fail loudly if the target is down."""
    result = probe(client, PLANS.next())
    if not result.up:
        raise BenchError(f"probe failed: {result.error}")
    PLANS.version = str(result.info.get("redis_version"))
    return result


def compare_cost(server: RedisServer, exporter_url: str, collections: int, rounds: int,
                 idle_seconds: float) -> CostComparison:
    """Measure both tools in alternating rounds, after one warm-up collection each."""
    meter, sockets, opener = stats_client(server.port), SocketMeter(), loopback_opener()
    clients = ClientCache(TIMEOUT, TIMEOUT, 2)
    client = clients.get(server.url)
    client.connection_pool.connection_class = counting_connection(sockets)
    try:
        checked_probe(client)  # connects, and puts every command of both tools in the
        scrape_bytes = scrape(opener, exporter_url)  # stats, so INFO is as long for both
        idle = idle_cpu_rate(meter, idle_seconds)
        sockets.reset()
        costs = [(measured(meter, partial(_repeat, size, partial(checked_probe, client))),
                  measured(meter, partial(_repeat, size, partial(scrape, opener, exporter_url))))
                 for size in split_evenly(collections, rounds)]
    finally:
        clients.close()
        meter.close()
    return CostComparison(collections, costs, sockets, idle, scrape_bytes)


def _repeat(times: int, action: Callable[[], Any]) -> None:
    for _ in range(times):
        action()


# Alternatives to the probe's INFO ALL, and the exporter's CONFIG GET, priced on this data.
COMMAND_VARIANTS: list[tuple[str, ...]] = [
    ("INFO", "ALL"), ("INFO",), ("INFO", "default", "commandstats"), ("INFO", "commandstats"),
    ("INFO", "latencystats"), ("INFO", "errorstats"), ("CONFIG", "GET", "*"),
    ("CONFIG", "GET", "maxclients"), ("SLOWLOG", "GET", "32"), ("SLOWLOG", "GET"),
]


@dataclass(frozen=True)
class VariantCost:
    """Server time and reply size of one command, averaged over many calls."""

    command: str
    usec: float
    bytes_out: float


def price_command(client: redis.Redis, command: tuple[str, ...], calls: int) -> VariantCost:
    """Call `command` `calls` times and return its mean server µs and reply bytes."""
    cost = measured(client, partial(_repeat, calls, partial(client.execute_command, *command)))
    return VariantCost(" ".join(command), cost.total_usec / calls, cost.net_out / calls)


def price_variants(port: int, calls: int) -> list[VariantCost]:
    """Price every command of COMMAND_VARIANTS on the target as it is now."""
    client = stats_client(port)
    try:
        return [price_command(client, command, calls) for command in COMMAND_VARIANTS]
    finally:
        client.close()


# --- 3: collections per second with the database write ------------------------------------


@dataclass(frozen=True)
class Split:
    """Median seconds of each part of a collection, measured in separate loops."""

    probe: float
    parse_info: float
    sample_document: float
    record: float


@dataclass(frozen=True)
class Throughput:
    """Timings of collect_target in a loop on one database."""

    backend: str
    version: str
    wall_seconds: float
    cpu_seconds: float
    times: list[float]
    split: Split

    @property
    def rate(self) -> float:
        """Return collections per second over the whole loop."""
        return len(self.times) / self.wall_seconds


def percentile(values: Sequence[float], q: float) -> float:
    """Return the nearest-rank percentile `q` (0-1) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def new_target(sessions: sessionmaker[Session], redis_url: str) -> int:
    """Add a target of our own and return its id."""
    with transaction(sessions) as session:
        target = add_target(session, project="bench", name=f"bench-{uuid.uuid4().hex[:8]}",
                            url=redis_url, now=utcnow())
        return target.id


def database_version(engine: Engine) -> str:
    """Return the database server's name and version."""
    if engine.dialect.name == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with engine.connect() as conn:
        return f"PostgreSQL {conn.execute(text('SHOW server_version')).scalar_one()}"


class Collector:
    """Calls collect_target for one target with a new slot each time."""

    def __init__(self, sessions: sessionmaker[Session], clients: ClientCache,
                 target_id: int) -> None:
        self.sessions, self.clients, self.target_id = sessions, clients, target_id
        self.slot = 0
        self.now = utcnow()

    def clock(self) -> datetime:
        """Return the simulated time of the current collection."""
        return self.now

    def next_slot(self) -> int:
        """Return a slot no collection used yet."""
        self.slot += 1
        return self.slot

    def collect(self) -> float:
        """Run one collection, check it stored an up sample, and return its duration."""
        self.now += timedelta(seconds=INTERVAL)
        started = time.perf_counter()
        outcome = collect_target(self.sessions, self.clients, self.target_id,
                                 self.next_slot(), self.clock, INTERVAL)
        elapsed = time.perf_counter() - started
        if outcome.status != "stored" or not outcome.up:
            raise BenchError(f"collect_target returned {outcome}")
        return elapsed


def timed(times: int, action: Callable[[], Any]) -> float:
    """Return the median duration of `action` over `times` calls."""
    durations = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def measure_split(collector: Collector, redis_url: str, times: int) -> Split:
    """Time probe, INFO parsing, document building and the DB write each on its own."""
    client = collector.clients.get(redis_url)
    raw_info = client.execute_command("INFO", "default", "commandstats")
    result = checked_probe(client)

    def write() -> None:
        with transaction(collector.sessions) as session:
            record_probe(session, collector.target_id, collector.next_slot(), utcnow(), result,
                         StateSnapshot())

    return Split(probe=timed(times, lambda: checked_probe(client)),
                 parse_info=timed(times, lambda: parse_info(raw_info)),
                 sample_document=timed(times, lambda: sample_document(result, None)),
                 record=timed(times, write))


def measure_throughput(database_url: str, redis_url: str, iterations: int, warmup: int,
                       split_times: int) -> Throughput:
    """Migrate, then time `iterations` calls of collect_target after `warmup` calls."""
    migrate(database_url)
    engine = make_engine(database_url)
    clients = ClientCache(TIMEOUT, TIMEOUT, 2)
    try:
        sessions = make_sessionmaker(engine)
        collector = Collector(sessions, clients, new_target(sessions, redis_url))
        _repeat(warmup, collector.collect)
        started, cpu = time.perf_counter(), time.process_time()
        times = [collector.collect() for _ in range(iterations)]
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        split = measure_split(collector, redis_url, split_times)
        return Throughput(engine.dialect.name, database_version(engine), wall, cpu, times,
                          split)
    finally:
        clients.close()
        engine.dispose()


@contextmanager
def postgres_url(given: str | None) -> Iterator[str]:
    """Yield the given database URL, or a fresh PostgreSQL database dropped afterwards."""
    if given:
        yield given
        return
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


@contextmanager
def sqlite_url() -> Iterator[str]:
    """Yield the URL of a SQLite file in a temporary folder removed afterwards."""
    folder = tempfile.mkdtemp(prefix="redismon-bench-")
    try:
        yield f"sqlite:///{folder}/history.db"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A titled table that renders as aligned text or as Markdown."""

    title: str
    headers: list[str]
    rows: list[list[str]]

    def text(self) -> str:
        """Render with aligned columns."""
        cells = [self.headers, *self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.headers))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in cells]
        return "\n".join([self.title, *lines])

    def markdown(self) -> str:
        """Render as a Markdown table under a bold title."""
        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
        lines = [f"**{self.title}**", "", line(self.headers), "|" + "---|" * len(self.headers)]
        return "\n".join(lines + [line(row) for row in self.rows])


@dataclass(frozen=True)
class Facts:
    """Where and how the run happened."""

    started: str
    command: str
    cpus: int
    cpu_model: str
    load: str
    python: str
    redis_py: str
    exporter: str


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def gather_facts(exporter: str) -> Facts:
    """Collect the run's date, machine and software versions."""
    command = shlex.join([os.path.relpath(sys.executable), *sys.argv])
    return Facts(
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), command=command,
        cpus=os.cpu_count() or 0, cpu_model=cpu_model(),
        load=load_average(),
        python=platform.python_version(), redis_py=redis.__version__,
        exporter=exporter_version(exporter))


def fmt(value: float, digits: int = 1) -> str:
    """Format a number with a fixed number of decimals."""
    return f"{value:,.{digits}f}"


def round_trip_table(cost: CostComparison) -> Table:
    """Describe what our probe did on its socket, per collection."""
    s, n = cost.sockets, cost.collections
    return Table("1. Our probe at the socket, per collection",
                 ["collections", "round trips", "writes", "reads", "new connections",
                  "bytes sent", "bytes received"],
                 [[str(n), fmt(s.round_trips / n, 2), fmt(s.writes / n, 2), fmt(s.reads / n, 2),
                   fmt(s.connects / n, 2), fmt(s.bytes_out / n, 0), fmt(s.bytes_in / n, 0)]])


def _ratio(ours: float, theirs: float) -> str:
    return fmt(ours / theirs, 2) if theirs else "n/a"


def cost_table(cost: CostComparison) -> Table:
    """Compare the two tools' server cost per collection."""
    n, ours, theirs = cost.collections, cost.ours, cost.exporter
    rows = [
        ("commands", ours.total_calls / n, theirs.total_calls / n, 2),
        ("server time, µs (commandstats usec)", ours.total_usec / n, theirs.total_usec / n, 1),
        ("main-thread CPU, µs (INFO cpu, idle-corrected)", cost.cpu_usec(ours),
         cost.cpu_usec(theirs), 1),
        ("new connections", ours.connections / n, theirs.connections / n, 2),
        ("bytes into Redis", ours.net_in / n, theirs.net_in / n, 0),
        ("bytes out of Redis", ours.net_out / n, theirs.net_out / n, 0),
    ]
    return Table(f"2. Server cost per collection ({n} collections each, same Redis)",
                 ["per collection", "ours", "redis_exporter", "ours/exporter"],
                 [[label, fmt(a, d), fmt(b, d), _ratio(a, b)] for label, a, b, d in rows])


def command_table(cost: CostComparison) -> Table:
    """Break the server time down by command for both tools."""
    n, ours, theirs = cost.collections, cost.ours, cost.exporter
    names = sorted(c for c in ours.calls.keys() | theirs.calls.keys()
                   if ours.calls.get(c, 0) or theirs.calls.get(c, 0))
    rows = [[name, fmt(ours.calls.get(name, 0) / n, 2), fmt(ours.usec.get(name, 0) / n),
             fmt(theirs.calls.get(name, 0) / n, 2), fmt(theirs.usec.get(name, 0) / n)]
            for name in names]
    return Table("2b. Per command, per collection",
                 ["command", "ours calls", "ours µs", "exporter calls", "exporter µs"], rows)


def variant_table(variants: Sequence[VariantCost]) -> Table:
    """Show what single commands cost the target, to weigh cheaper probes."""
    return Table("2c. Single commands on the same data (server µs per call, reply bytes)",
                 ["command", "server µs", "reply bytes"],
                 [[v.command, fmt(v.usec), fmt(v.bytes_out, 0)] for v in variants])


def throughput_table(runs: Sequence[Throughput]) -> Table:
    """Report collect_target timings per database."""
    rows = []
    for run in runs:
        ms = [t * 1e3 for t in run.times]
        s = run.split
        median = statistics.median(ms)
        rest = median - (s.probe + s.record) * 1e3
        rows.append([run.version, str(len(ms)), fmt(run.rate), fmt(median, 2),
                     fmt(percentile(ms, 0.95), 2), fmt(run.cpu_seconds * 1e3 / len(ms), 2),
                     fmt(s.probe * 1e3, 2),
                     fmt(s.parse_info * 1e3, 2), fmt(s.sample_document * 1e3, 2),
                     fmt(s.record * 1e3, 2), fmt(rest, 2)])
    return Table("3. collect_target in one process, database write included (ms per collection)",
                 ["database", "collections", "collections/s", "median", "p95", "worker CPU (mean)",
                  "probe (median)", "of which parse_info", "sample_document", "record_probe txn",
                  "rest ≈ median - probe - record"], rows)


def goal_lines(cost: CostComparison, runs: Sequence[Throughput]) -> list[str]:
    """State each goal of the issue against what this run measured."""
    trips = cost.sockets.round_trips / cost.collections
    ratio = cost.ours.total_usec / cost.exporter.total_usec if cost.exporter.total_usec else 0
    per_round = cost.round_ratios()
    spread = f"{min(per_round):.0%} to {max(per_round):.0%}" if per_round else "n/a"
    lines = [f"- round trips per collection = {GOAL_ROUND_TRIPS}: measured {fmt(trips, 2)} "
             f"({'met' if trips == GOAL_ROUND_TRIPS else 'NOT met'})",
             f"- server time under {GOAL_COST_RATIO:.0%} of redis_exporter's: measured "
             f"{ratio:.0%}, rounds from {spread} "
             f"({'met' if 0 < ratio < GOAL_COST_RATIO else 'NOT met'})"]
    for run in runs:
        if run.backend == "postgresql":
            lines.append(f"- {GOAL_RATE:.0f}+ collections/s on PostgreSQL: measured "
                         f"{fmt(run.rate)} ({'met' if run.rate >= GOAL_RATE else 'NOT met'})")
    return lines


@dataclass(frozen=True)
class Results:
    """Everything one run measured."""

    facts: Facts
    keys: int
    data: DataSummary
    cost: CostComparison
    variants: list[VariantCost]
    runs: list[Throughput]
    load_after: str


def context_lines(r: Results) -> list[str]:
    """Describe the machine, the software and the data of the run."""
    facts, data = r.facts, r.data
    databases = ", ".join(run.version for run in r.runs) or "no database"
    keyspace = "; ".join(f"{db}: {desc}" for db, desc in sorted(data.keyspace.items()))
    return [
        f"- Date: {facts.started}; command: `{facts.command}`",
        f"- Machine: {facts.cpus} CPUs, {facts.cpu_model}; load average {facts.load} at start, "
        f"{r.load_after} at the end",
        f"- Software: redis-server {data.version}, prometheus-redis-exporter {facts.exporter}, "
        f"{databases}, Python {facts.python}, redis-py {facts.redis_py}",
        f"- Data: `--keys {r.keys}` objects of 10 kinds (strings, counters, strings with TTL, "
        f"hashes, lists, sets, sorted sets, streams, HyperLogLogs, bitmaps), 10 % in db1 "
        f"({keyspace}); {data.commands} commands in commandstats, {data.error_kinds} error "
        f"kinds, {data.slowlog} slowlog entries, {data.latency_events} latency event(s), "
        f"used_memory {data.used_memory}",
        f"- The exporter's scrape body: {r.cost.scrape_bytes:,} bytes; idle main-thread CPU of "
        f"the target: {fmt(r.cost.idle_cpu_rate * 1e6)} µs/s (subtracted from the CPU row)",
    ]


def render(r: Results) -> tuple[str, str]:
    """Return the plain-text report and the Markdown block."""
    tables = [round_trip_table(r.cost), cost_table(r.cost), command_table(r.cost),
              variant_table(r.variants)]
    if r.runs:
        tables.append(throughput_table(r.runs))
    context, goals = context_lines(r), goal_lines(r.cost, r.runs)
    plain = "\n\n".join(["\n".join(context), *(t.text() for t in tables),
                          "Goals:\n" + "\n".join(goals)])
    markdown = "\n\n".join([f"### Run of {r.facts.started}", "\n".join(context),
                             *(t.markdown() for t in tables), "Goals:\n\n" + "\n".join(goals)])
    return plain, markdown


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description="Measure one collection of our probe against redis_exporter on the same "
                    "spawned redis-server, and collect_target's rate on PostgreSQL and SQLite.")
    parser.add_argument("--keys", type=int, default=5000,
                        help="keys generated in the target (default 5000)")
    parser.add_argument("--collections", type=int, default=500,
                        help="collections per tool for the server cost (default 500)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="alternating rounds the collections are split into (default 10)")
    parser.add_argument("--command-calls", type=int, default=100,
                        help="calls of each single command priced in table 2c (default 100)")
    parser.add_argument("--idle-seconds", type=float, default=2.0,
                        help="seconds to measure the target's idle CPU (default 2)")
    parser.add_argument("--iterations", type=int, default=2000,
                        help="timed collect_target calls per database (default 2000)")
    parser.add_argument("--warmup", type=int, default=100,
                        help="untimed collect_target calls first (default 100)")
    parser.add_argument("--split-iterations", type=int, default=300,
                        help="calls per part when timing probe/parse/write apart (default 300)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL to use (migrated, rows added, not dropped); "
                             "default: a throwaway database created and dropped")
    parser.add_argument("--skip-sqlite", action="store_true", help="do not measure SQLite")
    parser.add_argument("--skip-throughput", action="store_true",
                        help="measure round trips and server cost only")
    parser.add_argument("--exporter", default=EXPORTER, help=f"default {EXPORTER}")
    args = parser.parse_args(argv)
    for name in ("keys", "collections", "rounds", "command_calls", "iterations",
                 "split_iterations"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.rounds > args.collections:
        parser.error("--rounds must not exceed --collections")
    return args


def throughput_runs(args: argparse.Namespace, redis_url: str) -> list[Throughput]:
    """Measure collect_target on PostgreSQL, then on SQLite unless skipped."""
    if args.skip_throughput:
        return []
    counts = (args.iterations, args.warmup, args.split_iterations)
    with postgres_url(args.database_url) as url:
        runs = [measure_throughput(url, redis_url, *counts)]
    if not args.skip_sqlite:
        with sqlite_url() as url:
            runs.append(measure_throughput(url, redis_url, *counts))
    return runs


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(args: argparse.Namespace) -> Results:
    """Start the target and the exporter, and measure everything."""
    facts = gather_facts(args.exporter)
    server = RedisServer(args=("--latency-monitor-threshold", "100"))
    try:
        server.start()
        load_data(server, args.keys)
        with running_exporter(args.exporter, server.port) as exporter_url:
            cost = compare_cost(server, exporter_url, args.collections, args.rounds,
                                args.idle_seconds)
        data = summarize_data(server.port)
        variants = price_variants(server.port, args.command_calls)
        runs = throughput_runs(args, server.url)
    finally:
        server.cleanup()
    return Results(facts, args.keys, data, cost, variants, runs, load_average())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table and the Markdown block."""
    args = parse_args(argv)
    try:
        plain, markdown = render(run(args))
    except BenchError as exc:
        print(f"bench/collect.py: {exc}", file=sys.stderr)
        return 1
    print(plain)
    print("\n--- Markdown ---\n")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
