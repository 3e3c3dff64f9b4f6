"""INFO parsing against real captures of Redis 6.2 and 7.0 (tests/data/info)."""
from __future__ import annotations

import json

import pytest

from monitor.collect import (
    ProbeResult,
    info_document,
    parse_info,
    parse_latency_latest,
    parse_slowlog,
    sample_document,
)
from monitor.measures import memory_percentage
from tests.conftest import DATA

INFO = DATA / "info"


def load(name: str) -> dict:
    return parse_info((INFO / name).read_text())


@pytest.mark.parametrize("name", sorted(p.name for p in INFO.glob("*.txt")))
def test_every_capture_parses_to_a_document(name: str) -> None:
    doc = info_document(load(name))
    assert doc["f"]["used_memory"] > 0
    assert doc["s"]["redis_version"][0] in "67"
    assert doc["s"]["role"] in ("master", "slave")
    assert doc["cmd"], "commandstats must not be empty"
    json.dumps(doc)  # stored as JSON


def test_redis7_master_fields_and_nested_sections() -> None:
    info = load("redis7_master_maxmemory0.txt")
    doc = info_document(info)
    assert info["redis_version"] == "7.0.15"
    assert doc["f"]["maxmemory"] == 0
    assert doc["f"]["maxclients"] == 10000
    assert doc["db"]["db0"][:2] == [303, 60]
    assert doc["db"]["db2"][:2] == [200, 50]
    assert doc["err"] == {"ERR": 9, "WRONGTYPE": 2}
    calls, usec, rejected, failed = doc["cmd"]["get"]
    assert calls > 0 and usec > 0 and rejected == 0 and failed >= 2
    assert set(doc["lat"]["get"]) == {"p50", "p99", "p99.9"}


def test_maxmemory_zero_measures_against_system_memory() -> None:
    fields = info_document(load("redis7_master_maxmemory0.txt"))["f"]
    measured = memory_percentage(fields)
    assert measured is not None
    assert measured.basis == "system_memory"
    assert measured.limit == fields["total_system_memory"]
    assert 0 < measured.percent < 100


def test_maxmemory_set_measures_against_maxmemory() -> None:
    fields = info_document(load("redis7_master_maxmemory.txt"))["f"]
    measured = memory_percentage(fields)
    assert measured is not None and measured.basis == "maxmemory"
    assert measured.limit == 64 * 1024 * 1024
    assert measured.percent == pytest.approx(100 * fields["used_memory"] / (64 * 1024 * 1024))


def test_no_memory_figures_gives_no_percentage() -> None:
    assert memory_percentage({"used_memory": 10, "maxmemory": 0}) is None
    assert memory_percentage({}) is None


def test_redis6_has_no_latencystats_and_no_maxclients_in_info() -> None:
    info = load("redis6_master_maxmemory0.txt")
    doc = info_document(info)
    assert info["redis_version"].startswith("6.2")
    assert doc["lat"] == {}
    assert doc["cmd"]["get"][0] > 0
    assert doc["err"]["WRONGTYPE"] == 2


def test_master_lists_its_replica() -> None:
    doc = info_document(load("redis7_master_with_replica.txt"))
    assert doc["f"]["connected_slaves"] == 1
    (replica,) = doc["repl"]
    assert replica["state"] == "online"
    assert isinstance(replica["offset"], int) and isinstance(replica["port"], int)


@pytest.mark.parametrize("name", ["redis7_replica.txt", "redis6_replica.txt"])
def test_replica_reports_its_master_link(name: str) -> None:
    doc = info_document(load(name))
    assert doc["s"]["role"] == "slave"
    assert doc["s"]["master_link_status"] == "up"
    assert "master_last_io_seconds_ago" in doc["f"]
    assert doc["repl"] == []


def test_replica_with_link_down() -> None:
    doc = info_document(load("redis7_replica_link_down.txt"))
    assert doc["s"]["master_link_status"] == "down"
    assert doc["f"]["master_link_down_since_seconds"] > 0


def test_slowlog_keeps_the_command_name_not_the_arguments() -> None:
    entries = parse_slowlog(json.loads((INFO / "redis7_slowlog.json").read_text()))
    assert [e.entry_id for e in entries] == [1, 0]
    assert entries[0].command == "debug" and entries[0].arg_count == 3
    assert entries[0].duration_us >= 20000
    assert not hasattr(entries[0], "args")


def test_latency_latest() -> None:
    events = parse_latency_latest(json.loads((INFO / "redis7_latency_latest.json").read_text()))
    assert events["command"][1] == 30


def test_sample_document_keeps_only_new_slowlog_entries() -> None:
    raw = json.loads((INFO / "redis7_slowlog.json").read_text())
    result = ProbeResult(up=True, seconds=0.001, info=load("redis7_master_maxmemory0.txt"),
                         replies={"slowlog_get": raw, "slowlog_len": 2, "latency_latest": []})
    doc, new = sample_document(result, last_slowlog_id=0)
    assert [e.entry_id for e in new] == [1]
    assert doc["slowlog"] == {"last_id": 1, "last_duration_us": raw[0][2], "len": 2}
    _, everything = sample_document(result, last_slowlog_id=None)
    assert len(everything) == 2


def test_config_maxclients_fills_the_gap_on_redis6() -> None:
    result = ProbeResult(up=True, seconds=0.001, info=load("redis6_master_maxmemory0.txt"),
                         replies={"config_maxclients": ["maxclients", "4064"]})
    doc, _ = sample_document(result, None)
    assert doc["f"]["maxclients"] == 4064


def test_unparseable_lines_are_ignored() -> None:
    parsed = parse_info("# Server\r\nredis_version:7.0.15\r\ngarbage\r\nratio:1.5\r\ninf:inf\r\n")
    assert parsed == {"redis_version": "7.0.15", "ratio": 1.5, "inf": "inf"}


def test_subcommand_stats_keep_their_pipe_name() -> None:
    parsed = parse_info("cmdstat_client|setname:calls=3,usec=6,usec_per_call=2.00,"
                        "rejected_calls=0,failed_calls=1\r\n")
    assert info_document(parsed)["cmd"] == {"client|setname": [3, 6, 0, 1]}


def test_probe_asks_only_what_it_needs() -> None:
    from monitor.collect import ProbePlan, probe_commands

    first = dict(probe_commands(ProbePlan()))
    assert first["info"] == ("INFO", "ALL")  # the version is not known yet
    assert "config_maxclients" not in first
    seven = dict(probe_commands(ProbePlan("7.0.15", with_latencystats=False)))
    assert seven["info"] == ("INFO", "default", "commandstats")
    assert seven["slowlog_get"] == ("SLOWLOG", "GET", "10")
    with_latency = dict(probe_commands(ProbePlan("7.2.4", slowlog_fetch=128)))
    assert with_latency["info"] == ("INFO", "default", "commandstats", "latencystats")
    assert with_latency["slowlog_get"] == ("SLOWLOG", "GET", "128")
    six = dict(probe_commands(ProbePlan("6.2.14", frozenset({"latency_latest"}))))
    assert six["info"] == ("INFO", "ALL") and "latency_latest" not in six
    assert six["config_maxclients"] == ("CONFIG", "GET", "maxclients")
