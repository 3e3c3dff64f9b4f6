"""Notification channels against real servers: an HTTP receiver, an SMTP server, Alertmanager."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.alerts.channels import (
    KINDS,
    ZERO_TIME,
    AlertMessage,
    DeliveryError,
    public_config,
    send,
    validate_config,
)
from tests.support.alertmanager import (
    EXTERNAL_URL,
    RECEIVER,
    Alertmanager,
    labels_fingerprint,
    running_alertmanager,
)
from tests.support.receivers import HTTPReceiver, SMTPReceiver
from tests.support.servers import free_port, wait_until

STARTED = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
ENDED = STARTED + timedelta(minutes=7)
EXTERNAL = "http://redismon.test:8000"
SECRET = "s3cr3tT0kenValue42"


def labels(target: str = "cache", **extra: str) -> dict[str, str]:
    """Return the label set of a memory alert on one target."""
    return {"alertname": "RedisMemoryCritical", "severity": "critical", "project": "shop",
            "target": target, "rule": "memory", **extra}


def message(status: str = "firing", *, alert_id: int = 7, starts_at: datetime = STARTED,
            ends_at: datetime | None = None, **label_changes: str) -> AlertMessage:
    """Return an alert message like the evaluator builds."""
    alert_labels = labels(**label_changes)
    return AlertMessage(
        alert_id=alert_id, fingerprint=labels_fingerprint(alert_labels), status=status,
        labels=alert_labels,
        annotations={"summary": "Memory 93.1 % of maxmemory",
                     "description": "used_memory is 93.1 % of maxmemory (threshold 90 %)"},
        starts_at=starts_at, ends_at=ends_at if status == "firing" else ends_at or ENDED,
        generator_url=f"{EXTERNAL}/monitoring/redis/alerts/{alert_id}")


@pytest.fixture
def receiver() -> Iterator[HTTPReceiver]:
    with HTTPReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def alertmanager() -> Iterator[Alertmanager]:
    with running_alertmanager() as am:
        yield am


def send_to(kind: str, config: dict[str, Any], *messages: AlertMessage) -> None:
    """Send through one channel with the receiver name the tests expect."""
    send(kind, config, list(messages), receiver="ops", external_url=EXTERNAL, timeout=5)


# --- webhook ---------------------------------------------------------------------------------

def test_webhook_posts_alertmanager_v4_payload(receiver: HTTPReceiver) -> None:
    send_to("webhook", {"url": receiver.url + "/hook", "headers": {"X-Team": "cache"}}, message())

    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "redismon/0.1"
    assert request.headers["x-team"] == "cache"
    expected_key = ('{}:{alertname="RedisMemoryCritical", project="shop", rule="memory", '
                    'severity="critical", target="cache"}')
    assert request.json() == {
        "receiver": "ops", "status": "firing", "version": "4", "groupKey": expected_key,
        "truncatedAlerts": 0, "groupLabels": labels(), "commonLabels": labels(),
        "commonAnnotations": message().annotations, "externalURL": EXTERNAL,
        "alerts": [{"status": "firing", "labels": labels(), "annotations": message().annotations,
                    "startsAt": "2026-03-01T12:00:00.25Z", "endsAt": ZERO_TIME,
                    "generatorURL": f"{EXTERNAL}/monitoring/redis/alerts/7",
                    "fingerprint": labels_fingerprint(labels())}],
    }


def test_webhook_batch_has_common_labels_and_status_firing_while_any_fires(
        receiver: HTTPReceiver) -> None:
    send_to("webhook", {"url": receiver.url}, message("resolved", target="a"),
            message(target="b", alert_id=8))

    body = receiver.bodies()[0]
    assert body["status"] == "firing"
    assert [a["status"] for a in body["alerts"]] == ["resolved", "firing"]
    assert body["alerts"][0]["endsAt"] == "2026-03-01T12:07:00.25Z"
    assert "target" not in body["commonLabels"]
    assert body["groupLabels"] == body["commonLabels"] == {
        k: v for k, v in labels().items() if k != "target"}


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_webhook_payload_equals_what_alertmanager_itself_sends(
        alertmanager: Alertmanager, receiver: HTTPReceiver, status: str) -> None:
    """Alertmanager (group_by ['...']) notifies its webhook; ours must be byte-for-field equal."""
    alert = message(target=f"am-webhook-{status}", starts_at=datetime.now(UTC))
    send("alertmanager", {"url": alertmanager.url}, [alert], receiver=RECEIVER,
         external_url=EXTERNAL_URL)
    if status == "resolved":
        wait_until(lambda: alertmanager.alert_state(alert.labels) == "active")
        alert = message("resolved", target=alert.labels["target"], starts_at=alert.starts_at,
                        ends_at=datetime.now(UTC))
        send("alertmanager", {"url": alertmanager.url}, [alert], receiver=RECEIVER,
             external_url=EXTERNAL_URL)
    theirs = wait_until(lambda: _notification(alertmanager, alert.labels, status),
                        message=f"Alertmanager's {status} webhook")

    send("webhook", {"url": receiver.url}, [alert], receiver=RECEIVER, external_url=EXTERNAL_URL)
    assert receiver.bodies()[0] == theirs
    assert list(receiver.bodies()[0]) == list(theirs)  # even the key order


def _notification(am: Alertmanager, alert_labels: dict[str, str],
                  status: str) -> dict[str, Any] | None:
    """Return the last webhook payload Alertmanager sent about these labels with this status."""
    found = [payload for payload in am.notifications()
             if payload["status"] == status and payload["commonLabels"] == alert_labels]
    return found[-1] if found else None


# --- slack -----------------------------------------------------------------------------------

def test_slack_posts_one_readable_line_per_alert(receiver: HTTPReceiver) -> None:
    send_to("slack", {"url": receiver.url + "/services/T1/B2/" + SECRET, "channel": "#redis"},
            message(), message("resolved", target="sessions", alert_id=8))

    [request] = receiver.requests
    assert request.path == f"/services/T1/B2/{SECRET}"
    assert request.json() == {
        "channel": "#redis",
        "text": "[FIRING:critical] RedisMemoryCritical shop/cache — Memory 93.1 % of maxmemory\n"
                "[RESOLVED] RedisMemoryCritical shop/sessions — Memory 93.1 % of maxmemory",
    }


def test_slack_escapes_its_markup_characters(receiver: HTTPReceiver) -> None:
    risky = replace(message(), annotations={"summary": "a < b & c > d"})
    send_to("slack", {"url": receiver.url}, risky)

    assert receiver.bodies()[0]["text"].endswith("— a &lt; b &amp; c &gt; d")
    assert "channel" not in receiver.bodies()[0]


# --- email -----------------------------------------------------------------------------------

def test_email_arrives_with_subject_body_and_no_password() -> None:
    with SMTPReceiver(users={"redismon": SECRET}) as smtp:
        config = {"to": ["oncall@example.com", "Ops <ops@example.com>"],
                  "from": "redismon@example.com", "smtp_host": smtp.host,
                  "smtp_port": smtp.port, "username": "redismon", "password": SECRET}
        send_to("email", config, message())
        [mail] = smtp.wait_for(1)

    assert mail.login == "redismon"
    assert mail.mail_from == "redismon@example.com"
    assert mail.rcpt_tos == ["oncall@example.com", "ops@example.com"]
    assert mail.message["Subject"] == "[FIRING:1] RedisMemoryCritical shop/cache"
    assert mail.message["Message-ID"].endswith("@example.com>")
    body = mail.text()
    for name, value in [*labels().items(), *message().annotations.items()]:
        assert f"{name} = {value}" in body
    assert f"{EXTERNAL}/monitoring/redis/alerts/7" in body
    assert "Started: 2026-03-01T12:00:00.25Z" in body
    assert SECRET not in mail.raw.decode()


def test_email_resolved_subject_and_end_time() -> None:
    with SMTPReceiver() as smtp:
        config = {"to": "oncall@example.com", "from": "redismon@example.com",
                  "smtp_host": smtp.host, "smtp_port": str(smtp.port)}
        send_to("email", config, message("resolved"))
        [mail] = smtp.wait_for(1)

    assert mail.message["Subject"] == "[RESOLVED] RedisMemoryCritical shop/cache"
    assert "Ended: 2026-03-01T12:07:00.25Z" in mail.text()


def test_email_wrong_password_is_not_retryable_and_not_quoted() -> None:
    with SMTPReceiver(users={"redismon": "right"}) as smtp:
        config = {"to": ["a@example.com"], "from": "r@example.com", "smtp_host": smtp.host,
                  "smtp_port": smtp.port, "username": "redismon", "password": SECRET}
        with pytest.raises(DeliveryError) as caught:
            send_to("email", config, message())
        assert smtp.messages == []

    assert not caught.value.retryable
    assert "535" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_email_starttls_not_offered_is_not_retryable() -> None:
    with SMTPReceiver() as smtp:
        config = {"to": ["a@example.com"], "from": "r@example.com", "smtp_host": smtp.host,
                  "smtp_port": smtp.port, "starttls": True}
        with pytest.raises(DeliveryError) as caught:
            send_to("email", config, message())

    assert not caught.value.retryable
    assert "STARTTLS" in str(caught.value)


def test_email_to_a_closed_port_is_retryable() -> None:
    config = {"to": ["a@example.com"], "from": "r@example.com", "smtp_host": "127.0.0.1",
              "smtp_port": free_port(), "username": "u", "password": SECRET}
    with pytest.raises(DeliveryError) as caught:
        send_to("email", config, message())

    assert caught.value.retryable
    assert SECRET not in str(caught.value)


# --- alertmanager ----------------------------------------------------------------------------

def test_alertmanager_shows_firing_alert_active_then_resolved(alertmanager: Alertmanager) -> None:
    alert = message(target="am-lifecycle", starts_at=datetime.now(UTC) - timedelta(minutes=1))
    send_to("alertmanager", {"url": alertmanager.url + "/"}, alert)

    listed = wait_until(lambda: alertmanager.find(alert.labels), message="alert in Alertmanager")
    assert listed["status"]["state"] == "active"
    assert listed["labels"] == alert.labels
    assert listed["annotations"] == alert.annotations
    assert listed["generatorURL"] == alert.generator_url
    assert listed["fingerprint"] == labels_fingerprint(alert.labels) == alert.fingerprint

    resolved = message("resolved", target="am-lifecycle", starts_at=alert.starts_at,
                       ends_at=datetime.now(UTC))
    send_to("alertmanager", {"url": alertmanager.url}, resolved)

    wait_until(lambda: alertmanager.alert_state(alert.labels) == "resolved",
               message="Alertmanager's resolved notification")
    assert alertmanager.find(alert.labels, active=False) is None  # resolved ones are not listed


def test_alertmanager_refuses_bad_labels_without_retry(alertmanager: Alertmanager) -> None:
    bad = replace(message(), labels={**labels(), "bad-label": "x"})
    with pytest.raises(DeliveryError) as caught:
        send_to("alertmanager", {"url": alertmanager.url}, bad)

    assert not caught.value.retryable
    assert "answered 400" in str(caught.value)


# --- log -------------------------------------------------------------------------------------

def test_log_writes_one_line_per_alert_at_the_right_level(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="redismon.alerts"):
        send_to("log", {}, message(), message("resolved", target="sessions", alert_id=8))

    [firing, resolved] = caplog.records
    assert (firing.name, firing.levelno) == ("redismon.alerts", logging.WARNING)
    assert firing.getMessage().startswith("[FIRING:critical] RedisMemoryCritical shop/cache — ")
    assert "alert 7" in firing.getMessage()
    assert resolved.levelno == logging.INFO
    assert resolved.getMessage().startswith("[RESOLVED] RedisMemoryCritical shop/sessions")


# --- HTTP error mapping ----------------------------------------------------------------------

@pytest.mark.parametrize(("status", "retryable"), [
    (500, True), (503, True), (408, True), (429, True),
    (400, False), (401, False), (404, False), (302, False),
])
def test_http_status_maps_to_retryable(receiver: HTTPReceiver, status: int,
                                       retryable: bool) -> None:
    receiver.respond_with(status, f"nope {SECRET}", headers={"Location": "/elsewhere"})
    url = f"{receiver.url}/hook/{SECRET}?token={SECRET}"
    with pytest.raises(DeliveryError) as caught:
        send_to("webhook", {"url": url}, message())

    assert caught.value.retryable is retryable
    assert f"answered {status}" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert len(receiver.requests) == 1  # a redirect is not followed


def test_refused_port_is_retryable_and_hides_credentials() -> None:
    url = f"http://admin:{SECRET}@127.0.0.1:{free_port()}/hook"
    with pytest.raises(DeliveryError) as caught:
        send_to("webhook", {"url": url}, message())

    assert caught.value.retryable
    assert "admin:***@127.0.0.1" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_timeout_is_retryable(receiver: HTTPReceiver) -> None:
    receiver.respond_with(200, delay=2)
    with pytest.raises(DeliveryError) as caught:
        send("webhook", {"url": receiver.url}, [message()], receiver="ops",
             external_url=EXTERNAL, timeout=0.3)

    assert caught.value.retryable
    assert "timed out" in str(caught.value)


def test_url_credentials_become_basic_auth(receiver: HTTPReceiver) -> None:
    send_to("webhook", {"url": receiver.url.replace("//", f"//bot:{SECRET}@")}, message())

    assert receiver.requests[0].headers["authorization"].startswith("Basic ")


def test_receiver_answers_queued_statuses_then_the_default(receiver: HTTPReceiver) -> None:
    receiver.respond_with(503, times=1)
    with pytest.raises(DeliveryError):
        send_to("slack", {"url": receiver.url}, message())
    send_to("slack", {"url": receiver.url}, message())

    assert len(receiver.wait_for(2)) == 2


def test_bad_config_at_send_time_is_not_retryable() -> None:
    with pytest.raises(DeliveryError) as caught:
        send_to("webhook", {"url": f"ftp://user:{SECRET}@example.com/"}, message())

    assert not caught.value.retryable
    assert SECRET not in str(caught.value)


def test_nothing_to_send_sends_nothing(receiver: HTTPReceiver) -> None:
    send("webhook", {"url": receiver.url}, [], receiver="ops", external_url=EXTERNAL)

    assert receiver.requests == []


# --- configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "config", "field"), [
    ("webhook", {}, "url"),
    ("webhook", {"url": "ftp://example.com"}, "url"),
    ("webhook", {"url": "http://"}, "url"),
    ("webhook", {"url": "http://example.com:99999/"}, "url"),
    ("webhook", {"url": "http://example.com/a b"}, "url"),
    ("webhook", {"url": "http://example.com", "headers": ["X-A"]}, "headers"),
    ("webhook", {"url": "http://example.com", "headers": {"X-A": "1\r\nX-B: 2"}}, "headers.X-A"),
    ("webhook", {"url": "http://example.com", "headers": {"Bad Name": "1"}}, "headers"),
    ("webhook", {"url": "http://example.com", "secret": "x"}, "secret"),
    ("slack", {"url": "http://example.com", "channel": ""}, "channel"),
    ("alertmanager", {"url": "http://am:9093/?x=1"}, "url"),
    ("email", {"from": "a@b.c", "smtp_host": "h"}, "to"),
    ("email", {"to": [], "from": "a@b.c", "smtp_host": "h"}, "to"),
    ("email", {"to": ["nobody"], "from": "a@b.c", "smtp_host": "h"}, "to"),
    ("email", {"to": ["x@y.z"], "smtp_host": "h"}, "from"),
    ("email", {"to": ["x@y.z"], "from": "a@b.c"}, "smtp_host"),
    ("email", {"to": ["x@y.z"], "from": "a@b.c", "smtp_host": "h", "smtp_port": 0}, "smtp_port"),
    ("email", {"to": ["x@y.z"], "from": "a@b.c", "smtp_host": "h", "smtp_port": True},
     "smtp_port"),
    ("email", {"to": ["x@y.z"], "from": "a@b.c", "smtp_host": "h", "starttls": "no"},
     "starttls"),
    ("email", {"to": ["x@y.z"], "from": "a@b.c", "smtp_host": "h", "password": "p"},
     "password"),
    ("log", {"level": "debug"}, "level"),
    ("pagerduty", {}, "kind"),
])
def test_validate_config_names_the_bad_field(kind: str, config: dict[str, Any],
                                             field: str) -> None:
    with pytest.raises(ValueError) as caught:
        validate_config(kind, config)

    text = str(caught.value)
    assert text.startswith(f"{field}:")
    assert "\n" not in text


def test_validate_config_error_never_shows_a_secret() -> None:
    with pytest.raises(ValueError) as caught:
        validate_config("webhook", {"url": f"gopher://u:{SECRET}@example.com/{SECRET}"})

    assert SECRET not in str(caught.value)


def test_validate_config_normalises() -> None:
    assert validate_config("webhook", {"url": " http://example.com/h "}) == {
        "url": "http://example.com/h", "headers": {}}
    assert validate_config("alertmanager", {"url": "http://am:9093/"}) == {
        "url": "http://am:9093"}
    assert validate_config("email", {"to": "x@y.z", "from": "a@b.c", "smtp_host": "h",
                                     "smtp_port": "2525", "username": "u"}) == {
        "to": ["x@y.z"], "from": "a@b.c", "smtp_host": "h", "smtp_port": 2525,
        "starttls": False, "username": "u", "password": ""}
    assert validate_config("log", {}) == {}
    assert set(KINDS) == {"webhook", "slack", "email", "alertmanager", "log"}


def test_public_config_masks_secrets() -> None:
    assert public_config("slack", {"url": "https://hooks.slack.com/services/T01/B02/abcdefgh",
                                   "channel": "#ops"}) == {
        "url": "https://hooks.slack.com/services/T01/B02/***", "channel": "#ops"}
    assert public_config("webhook", {
        "url": f"https://bot:{SECRET}@hooks.example.com/v1/{SECRET}/alerts?token={SECRET}&x=1",
        "headers": {"Authorization": f"Bearer {SECRET}"}}) == {
        "url": "https://bot:***@hooks.example.com/v1/***/alerts?token=***&x=***",
        "headers": {"Authorization": "***"}}
    assert public_config("alertmanager", {"url": f"http://{SECRET}@am:9093"}) == {
        "url": "http://***@am:9093"}
    assert public_config("alertmanager", {"url": "http://am:9093"}) == {"url": "http://am:9093"}
    shown = public_config("email", {"to": ["a@b.c"], "username": "u", "password": SECRET})
    assert shown == {"to": ["a@b.c"], "username": "u", "password": "***"}


def test_alert_message_refuses_a_resolved_alert_without_end() -> None:
    with pytest.raises(ValueError, match="ends_at"):
        AlertMessage(alert_id=1, fingerprint="f", status="resolved", labels={}, annotations={},
                     starts_at=STARTED, ends_at=None, generator_url="")


def test_short_query_values_do_not_garble_the_error(receiver: HTTPReceiver) -> None:
    receiver.respond_with(401, "unauthorized")
    with pytest.raises(DeliveryError) as caught:
        send_to("webhook", {"url": receiver.url + "/hook?x=1"}, message())

    assert "answered 401: unauthorized" in str(caught.value)
    assert "?x=***" in str(caught.value)
