"""The Prometheus text built from stored samples: names, types, labels, promtool."""
from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor import catalogue
from monitor.collect import ProbeResult, parse_info, sample_document
from monitor.db import Sample, Target, TargetState
from monitor.docs import coverage, exporter_families, render
from monitor.exposition import Families, emit_target
from monitor.history import TargetView
from tests.conftest import DATA

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PREFIX = "jeex_redis"


def _doc(capture: str, **replies: Any) -> dict[str, Any]:
    info = parse_info((DATA / "info" / capture).read_text())
    return sample_document(ProbeResult(True, 0.002, info=info, replies=replies), None)[0]


def _view(doc: dict[str, Any], start: dict[str, Any] | None = None, up: bool = True,
          name: str = "cache") -> TargetView:
    target = Target(id=1, project_id=1, name=name, url="redis://:secret@h:6379/0", enabled=True)
    state = TargetState(target_id=1, up=up)
    latest = Sample(id=2, target_id=1, slot=2, collected_at=NOW - timedelta(seconds=3), up=up,
                    probe_seconds=0.002, data=doc)
    first = None if start is None else Sample(
        id=1, target_id=1, slot=1, collected_at=NOW - timedelta(seconds=63), up=True, data=start)
    return TargetView(target, "shop", state, latest, first)


def _text(*views: TargetView) -> str:
    fam = Families(PREFIX)
    for view in views:
        emit_target(fam, view, NOW)

    class Fixed:
        def collect(self):  # type: ignore[no-untyped-def]
            return iter(fam)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def _samples(text: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def _value(text: str, name: str, **labels: str) -> float:
    for sample in _samples(text).get(name, []):
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    raise AssertionError(f"{name} {labels} not in the text")


SLOWLOG = [[4, 1795839119, 30175, ["DEBUG", "SLEEP", "0.03"], "127.0.0.1:1", ""]]


@pytest.fixture(scope="module")
def full_text() -> str:
    master = _doc("redis7_master_with_replica.txt", slowlog_len=5, slowlog_get=SLOWLOG,
                  latency_latest=[["command", 1795839119, 30, 30]])
    replica = _doc("redis7_replica.txt")
    return _text(_view(master, start=master), _view(replica, name="replica"))


def test_promtool_accepts_the_text(full_text: str) -> None:
    result = subprocess.run(["promtool", "check", "metrics"], input=full_text.encode(),
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_seed_names_are_present_with_project_and_target(full_text: str) -> None:
    for name in ("up", "memory_bytes", "memory_percentage", "connections_active",
                 "connection_utilization", "commands_total", "command_duration_seconds_count",
                 "errors_total", "slow_commands_total"):
        samples = _samples(full_text)[f"{PREFIX}_{name}"]
        assert {s.labels["project"] for s in samples} == {"shop"}
        assert {"cache", "replica"} >= {s.labels["target"] for s in samples}


def test_every_series_is_in_the_catalogue_and_documented(full_text: str) -> None:
    documented = render()
    for family in text_string_to_metric_families(full_text):
        name = family.name.removeprefix(PREFIX + "_")
        key = name + "_total" if family.type == "counter" else name
        key = key + "_info" if family.type == "info" else key
        assert key in catalogue.BY_NAME, f"{family.name} is not in the catalogue"
        assert f"| `{key}` |" in documented, f"{key} is not in docs/metrics.md"


def test_docs_file_is_up_to_date() -> None:
    assert (DATA.parent.parent / "docs" / "metrics.md").read_text() == render(), \
        "docs/metrics.md is stale: run `make docs`"


def test_counters_are_counters(full_text: str) -> None:
    types = {f.name: f.type for f in text_string_to_metric_families(full_text)}
    assert types[f"{PREFIX}_commands"] == "counter"
    assert types[f"{PREFIX}_keyspace_hits"] == "counter"
    assert types[f"{PREFIX}_command_duration_seconds"] == "summary"
    assert types[f"{PREFIX}_memory_bytes"] == "gauge"
    assert f"{PREFIX}_commands_total" in _samples(full_text)


def test_values_follow_the_info_fields(full_text: str) -> None:
    info = parse_info((DATA / "info" / "redis7_master_with_replica.txt").read_text())
    assert _value(full_text, f"{PREFIX}_memory_bytes", target="cache") == info["used_memory"]
    assert _value(full_text, f"{PREFIX}_commands_total", target="cache", cmd="get") == \
        info["cmdstat_get"]["calls"]
    assert _value(full_text, f"{PREFIX}_command_duration_seconds", target="cache", cmd="get",
                  quantile="0.99") == pytest.approx(
        info["latency_percentiles_usec_get"]["p99"] / 1e6)
    assert _value(full_text, f"{PREFIX}_errors_total", target="cache", err="WRONGTYPE") == 2
    assert _value(full_text, f"{PREFIX}_slow_commands_total", target="cache") == 5
    assert _value(full_text, f"{PREFIX}_slowlog_length", target="cache") == 5
    assert _value(full_text, f"{PREFIX}_db_keys", target="cache", db="db0") == \
        info["db0"]["keys"]
    assert _value(full_text, f"{PREFIX}_connected_slaves", target="cache") == 1
    assert _value(full_text, f"{PREFIX}_master_link_up", target="replica") == 1
    assert _value(full_text, f"{PREFIX}_rdb_last_bgsave_status", target="cache") == 1
    assert _value(full_text, f"{PREFIX}_memory_limit_bytes", target="cache",
                  basis="system_memory") == info["total_system_memory"]
    assert _value(full_text, f"{PREFIX}_last_sample_age_seconds", target="cache") == 3


def test_hit_rate_is_over_the_window_not_the_lifetime() -> None:
    end = _doc("redis7_master_maxmemory0.txt")
    start = {"f": dict(end["f"])}
    start["f"]["keyspace_hits"] -= 30
    start["f"]["keyspace_misses"] -= 10
    text = _text(_view(end, start=start))
    assert _value(text, f"{PREFIX}_hit_rate") == pytest.approx(0.75)


def test_no_lookups_in_the_window_means_no_hit_rate() -> None:
    doc = _doc("redis7_master_maxmemory0.txt")
    assert f"{PREFIX}_hit_rate" not in _samples(_text(_view(doc, start=doc)))


def test_a_down_target_exports_up_zero_and_no_stale_values() -> None:
    text = _text(_view({}, up=False))
    assert _value(text, f"{PREFIX}_up") == 0
    assert f"{PREFIX}_memory_bytes" not in _samples(text)


def test_passwords_never_reach_the_text(full_text: str) -> None:
    assert "secret" not in full_text


def test_catalogue_covers_ninety_percent_of_redis_exporter() -> None:
    covered, missing = coverage(exporter_families())
    assert len(covered) + len(missing) >= 100, "the captured exporter family list is missing"
    assert len(covered) / (len(covered) + len(missing)) >= 0.9, missing


def test_catalogue_names_follow_conventions() -> None:
    for metric in catalogue.ALL_METRICS:
        assert (metric.kind == "counter") == metric.name.endswith("_total"), metric.name
        assert metric.name.islower() and " " not in metric.name
