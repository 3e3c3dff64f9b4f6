"""Probe a Redis in one pipelined round trip and turn the answers into a sample document."""
from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from monitor.catalogue import KEPT_FIELDS, STRING_FIELDS

CLIENT_NAME = "redismon"
# Sections of INFO whose lines are `name:k=v,k=v` and become nested dicts.
_NESTED_PREFIXES = ("cmdstat_", "errorstat_", "latency_percentiles_usec_", "slave", "db")


# --- INFO parsing -----------------------------------------------------------------------


_FLOAT_CHARS = frozenset("0123456789.-+e")


def _number(text: str) -> int | float | str:
    # Most INFO values are integers; testing first is much cheaper than failing int().
    if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
        return int(text)
    if not text or not _FLOAT_CHARS.issuperset(text):
        return text
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _nested(text: str) -> dict[str, int | float | str] | None:
    if "=" not in text:
        return None
    return {k: _number(v) for k, _, v in (item.partition("=") for item in text.split(","))}


def parse_info(text: str) -> dict[str, Any]:
    """Parse INFO text into {field: value}; `k=v,…` values become dicts."""
    result: dict[str, Any] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, value = line.split(":", 1)
        nested = _nested(value) if name.startswith(_NESTED_PREFIXES) else None
        result[name] = nested if nested is not None else _number(value)
    return result


# --- sample documents -------------------------------------------------------------------


def _nested_entry(doc: dict[str, Any], name: str, value: dict[str, Any]) -> None:
    """File one `k=v,…` line of INFO under its section of the document."""
    if name.startswith("cmdstat_"):
        doc["cmd"][name[8:]] = [value.get("calls", 0), value.get("usec", 0),
                                value.get("rejected_calls", 0), value.get("failed_calls", 0)]
    elif name.startswith("latency_percentiles_usec_"):
        doc["lat"][name[25:]] = value
    elif name.startswith("errorstat_"):
        doc["err"][name[10:]] = value.get("count", 0)
    elif name.startswith("db") and name[2:].isdigit():
        doc["db"][name] = [value.get("keys", 0), value.get("expires", 0), value.get("avg_ttl", 0)]
    elif name.startswith("slave") and name[5:].isdigit():
        doc["repl"].append({k: value.get(k) for k in ("ip", "port", "state", "offset", "lag")})


def info_document(info: dict[str, Any]) -> dict[str, Any]:
    """Keep what the catalogue needs from parsed INFO, in a compact JSON-able shape."""
    doc: dict[str, Any] = {"f": {}, "s": {}, "cmd": {}, "lat": {}, "err": {}, "db": {},
                           "repl": []}
    for name, value in info.items():
        if isinstance(value, dict):
            _nested_entry(doc, name, value)
        elif name in KEPT_FIELDS and isinstance(value, int | float):
            doc["f"][name] = value
    doc["s"] = {name: str(info[name]) for name in STRING_FIELDS if name in info}
    doc["repl"].sort(key=lambda r: (str(r["ip"]), str(r["port"])))
    return doc


@dataclass(frozen=True)
class SlowEntry:
    entry_id: int
    started_at: int
    duration_us: int
    command: str
    arg_count: int
    client_addr: str | None
    client_name: str | None


def parse_slowlog(raw: Iterable[Any]) -> list[SlowEntry]:
    """Parse raw SLOWLOG GET replies; arguments are reduced to the command name and count."""
    entries = []
    for item in raw:
        args = list(item[3]) if len(item) > 3 else []
        entries.append(SlowEntry(
            entry_id=int(item[0]), started_at=int(item[1]), duration_us=int(item[2]),
            command=str(args[0]).lower()[:64] if args else "",
            arg_count=len(args),
            client_addr=str(item[4]) if len(item) > 4 and item[4] else None,
            client_name=str(item[5]) if len(item) > 5 and item[5] else None,
        ))
    return entries


def parse_latency_latest(raw: Iterable[Any]) -> dict[str, list[int]]:
    """Return {event: [unix_time, latest_ms, max_ms]} from LATENCY LATEST."""
    return {str(e[0]): [int(e[1]), int(e[2]), int(e[3])] for e in raw}


# --- the probe --------------------------------------------------------------------------

# Each optional command has a capability name; a refused one is remembered and skipped.
OPTIONAL_COMMANDS: dict[str, tuple[str, ...]] = {
    "slowlog_len": ("SLOWLOG", "LEN"),
    "slowlog_get": ("SLOWLOG", "GET"),
    "latency_latest": ("LATENCY", "LATEST"),
    "config_maxclients": ("CONFIG", "GET", "maxclients"),
}
SLOWLOG_PAGE_SMALL, SLOWLOG_PAGE_FULL = 10, 128


@dataclass(frozen=True)
class ProbePlan:
    """What the next probe of a target asks, from what earlier probes learned."""

    version: str | None = None  # None until the first answer
    refused: frozenset[str] = frozenset()
    with_latencystats: bool = True
    slowlog_fetch: int = SLOWLOG_PAGE_SMALL

    @property
    def major(self) -> int | None:
        return int(self.version.split(".")[0]) if self.version else None


def info_command(plan: ProbePlan) -> tuple[str, ...]:
    """Ask only what the catalogue needs: several sections in one INFO exist since Redis 7."""
    if plan.major is None or plan.major < 7:
        return ("INFO", "ALL")
    sections = ("default", "commandstats") + (("latencystats",) if plan.with_latencystats else ())
    return ("INFO", *sections)


def probe_commands(plan: ProbePlan) -> list[tuple[str, tuple[str, ...]]]:
    """List the commands of one probe, INFO first, without refused ones."""
    skipped = set(plan.refused)
    if plan.major is None or plan.major >= 7:
        skipped.add("config_maxclients")  # Redis 7 reports maxclients in INFO clients
    commands = [("info", info_command(plan))]
    for name, cmd in OPTIONAL_COMMANDS.items():
        if name in skipped:
            continue
        if name == "slowlog_get":
            cmd = cmd + (str(plan.slowlog_fetch),)
        commands.append((name, cmd))
    return commands


@dataclass
class ProbeResult:
    up: bool
    seconds: float
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    replies: dict[str, Any] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)


def make_client(url: str, *, connect_timeout: float, operation_timeout: float,
                max_connections: int) -> redis.Redis:
    """Create a client that sends nothing extra on connect and never retries by itself."""
    client = redis.Redis.from_url(
        url,
        decode_responses=True,
        protocol=2,
        socket_connect_timeout=connect_timeout,
        socket_timeout=operation_timeout,
        max_connections=max_connections,
        retry=Retry(NoBackoff(), 0),
        client_name=CLIENT_NAME,
        driver_info=None,  # no CLIENT SETINFO: Redis < 7.2 refuses it, raising its error count
    )
    for command in ("INFO", "SLOWLOG GET", "LATENCY LATEST", "CONFIG GET"):
        client.set_response_callback(command, lambda response, **_: response)
    return client


def probe(client: redis.Redis, plan: ProbePlan | None = None,
          clock: Any = time.perf_counter) -> ProbeResult:
    """Send one pipelined round trip; a connection failure gives up=False with the error class."""
    commands = probe_commands(plan or ProbePlan())
    pipe = client.pipeline(transaction=False)
    for _, cmd in commands:
        pipe.execute_command(*cmd)
    started = clock()
    try:
        replies = pipe.execute(raise_on_error=False)
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        return ProbeResult(up=False, seconds=clock() - started, error=type(exc).__name__)
    seconds = clock() - started
    return _read_replies(commands, replies, seconds)


def _read_replies(commands: list[tuple[str, tuple[str, ...]]], replies: list[Any],
                  seconds: float) -> ProbeResult:
    result = ProbeResult(up=True, seconds=seconds)
    for (name, _), reply in zip(commands, replies, strict=True):
        if isinstance(reply, redis.exceptions.AuthenticationError):
            return ProbeResult(up=False, seconds=seconds, error=type(reply).__name__)
        if isinstance(reply, redis.ResponseError):
            if name == "info":
                return ProbeResult(up=False, seconds=seconds, error="InfoRefused")
            result.refused.add(name)
            continue
        result.replies[name] = reply
    result.info = parse_info(result.replies.pop("info"))
    return result


def _maxclients_from_config(reply: Any) -> int | None:
    if isinstance(reply, list) and len(reply) == 2:
        return int(reply[1])
    if isinstance(reply, dict) and "maxclients" in reply:
        return int(reply["maxclients"])
    return None


def sample_document(result: ProbeResult, last_slowlog_id: int | None) -> tuple[
        dict[str, Any], list[SlowEntry]]:
    """Build the stored document of a successful probe and the slowlog entries that are new."""
    doc = info_document(result.info)
    maxclients = _maxclients_from_config(result.replies.get("config_maxclients"))
    if maxclients is not None:
        doc["f"]["maxclients"] = maxclients
    entries = parse_slowlog(result.replies.get("slowlog_get", []))
    if entries:
        doc["slowlog"] = {"last_id": entries[0].entry_id,
                          "last_duration_us": entries[0].duration_us}
    if "slowlog_len" in result.replies:
        doc.setdefault("slowlog", {})["len"] = int(result.replies["slowlog_len"])
    if "latency_latest" in result.replies:
        doc["latency"] = parse_latency_latest(result.replies["latency_latest"])
    new = [e for e in entries if last_slowlog_id is None or e.entry_id > last_slowlog_id]
    return doc, new


class ClientCache:
    """One persistent client per target URL in this process (redis-py resets it after fork)."""

    def __init__(self, connect_timeout: float, operation_timeout: float,
                 max_connections: int) -> None:
        self._options = {"connect_timeout": connect_timeout,
                         "operation_timeout": operation_timeout,
                         "max_connections": max_connections}
        self._clients: dict[str, redis.Redis] = {}

    def get(self, url: str) -> redis.Redis:
        """Return the cached client of a URL, creating it on first use."""
        client = self._clients.get(url)
        if client is None:
            client = make_client(url, **self._options)  # type: ignore[arg-type]
            self._clients[url] = client
        return client

    def close(self) -> None:
        """Close every connection pool."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
