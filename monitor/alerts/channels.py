"""Notification channels: deliver alert messages by webhook, Slack, email, Alertmanager or log.

The webhook channel sends Alertmanager's webhook payload (version "4") as Alertmanager itself
would for a route with `group_by: ['...']`: every batch is its own group, so `groupLabels`
equals `commonLabels` and `groupKey` is `{}:` followed by that label set, e.g.
`{}:{alertname="RedisMemoryCritical", project="shop", rule="memory", severity="critical",
target="cache"}`. Receivers that deduplicate on `groupKey` (incident bridges) therefore keep
one incident per alert, and a resolve of one target never closes another's.
"""
from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from monitor.settings import mask_url

KINDS = ("webhook", "slack", "email", "alertmanager", "log")
USER_AGENT = "redismon/0.1"
MASK = "***"
# Go's zero time.Time: Alertmanager's webhook shows it as endsAt of every firing alert.
ZERO_TIME = "0001-01-01T00:00:00Z"
_MAX_ERROR_BODY = 200
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

log = logging.getLogger("redismon.alerts")


@dataclass(frozen=True)
class AlertMessage:
    """One alert at one moment, as every channel needs it."""

    alert_id: int
    fingerprint: str            # stable per alert (hex), used by Alertmanager/webhook receivers
    status: str                 # "firing" or "resolved"
    labels: dict[str, str]      # includes alertname, severity, project, target, rule
    annotations: dict[str, str]  # summary, description
    starts_at: datetime         # aware UTC
    ends_at: datetime | None    # aware UTC; set when resolved
    generator_url: str          # link to GET /monitoring/redis/alerts/{id}

    def __post_init__(self) -> None:
        if self.status not in ("firing", "resolved"):
            raise ValueError(f"status: expected 'firing' or 'resolved', got {self.status!r}")
        if self.status == "resolved" and self.ends_at is None:
            raise ValueError("ends_at: required for a resolved alert")

    @property
    def firing(self) -> bool:
        return self.status == "firing"


class DeliveryError(Exception):
    """Sending failed; `retryable` is False when a retry cannot help (4xx but 408/429, config)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class _Options:
    receiver: str
    external_url: str
    timeout: float


# --- configuration ---------------------------------------------------------------------------

_FIELDS: dict[str, frozenset[str]] = {
    "webhook": frozenset({"url", "headers"}),
    "slack": frozenset({"url", "channel"}),
    "email": frozenset({"to", "from", "smtp_host", "smtp_port", "username", "password",
                        "starttls"}),
    "alertmanager": frozenset({"url"}),
    "log": frozenset(),
}


def validate_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Return the normalised config of a channel kind, or raise ValueError naming the field."""
    if kind not in KINDS:
        raise ValueError(f"kind: unknown channel kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not isinstance(config, dict):
        raise ValueError("config: expected an object")  # noqa: TRY004 - the contract is ValueError
    unknown = sorted(set(config) - _FIELDS[kind])
    if unknown:  # a typo like "smtp_hots" must not silently fall back to a default
        raise ValueError(f"{unknown[0]}: unknown field for a {kind} channel")
    return _VALIDATORS[kind](config)


def _validate_webhook(config: dict[str, Any]) -> dict[str, Any]:
    """Normalise a webhook config."""
    return {"url": _http_url(config, "url"), "headers": _headers(config.get("headers"))}


def _validate_slack(config: dict[str, Any]) -> dict[str, Any]:
    """Normalise a Slack incoming-webhook config."""
    clean: dict[str, Any] = {"url": _http_url(config, "url")}
    channel = _optional_str(config, "channel")
    if channel is not None:
        clean["channel"] = channel
    return clean


def _validate_alertmanager(config: dict[str, Any]) -> dict[str, Any]:
    """Normalise an Alertmanager config; the API path is appended at send time."""
    url = _http_url(config, "url")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError("url: expected Alertmanager's base URL, without ?query or #fragment")
    return {"url": url.rstrip("/")}


def _validate_log(config: dict[str, Any]) -> dict[str, Any]:
    """Normalise a log config (it has no fields)."""
    return {}


def _validate_email(config: dict[str, Any]) -> dict[str, Any]:
    """Normalise an email config."""
    clean: dict[str, Any] = {
        "to": _addresses(config.get("to")),
        "from": _address(config.get("from"), "from"),
        "smtp_host": _host(config.get("smtp_host")),
        "smtp_port": _port(config.get("smtp_port", 25)),
        "starttls": _bool(config.get("starttls", False), "starttls"),
    }
    username = _optional_str(config, "username")
    password = config.get("password")
    if password is not None and not isinstance(password, str):
        raise ValueError("password: expected a string")
    if password and username is None:
        raise ValueError("password: given without username")
    if username is not None:
        clean["username"], clean["password"] = username, password or ""
    return clean


_VALIDATORS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "webhook": _validate_webhook,
    "slack": _validate_slack,
    "email": _validate_email,
    "alertmanager": _validate_alertmanager,
    "log": _validate_log,
}


def _http_url(config: Mapping[str, Any], field: str) -> str:
    """Return a checked http(s) URL; error messages show it masked."""
    url = config.get(field)
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{field}: required, an http:// or https:// URL")
    url = url.strip()
    if any(char.isspace() or ord(char) < 32 for char in url):
        raise ValueError(f"{field}: must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"{field}: not a valid URL (bad host or port)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{field}: expected an http:// or https:// URL with a host, "
                         f"got {_public_url(url)!r}")
    return url


def _headers(raw: Any) -> dict[str, str]:
    """Return checked extra HTTP headers; values are never echoed (they often hold tokens)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("headers: expected an object of name to value")  # noqa: TRY004
    for name, value in raw.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ValueError(f"headers: {name!r} is not a valid header name")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"headers.{name}: expected a single-line string")
    return dict(raw)


def _optional_str(config: Mapping[str, Any], field: str) -> str | None:
    """Return a non-empty single-line string field, or None when absent."""
    value = config.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n\0"):
        raise ValueError(f"{field}: expected a non-empty single-line string")
    return value.strip()


def _address(raw: Any, field: str) -> str:
    """Return one checked email address (a display name is allowed)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{field}: required, an email address like redismon@example.com")
    address = parseaddr(raw)[1]
    if "@" not in address or any(c in raw for c in "\r\n\0"):
        raise ValueError(f"{field}: {raw.strip()!r} is not an email address")
    return raw.strip()


def _addresses(raw: Any) -> list[str]:
    """Return the checked recipient list; one address may be given as a plain string."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ValueError("to: required, a list of one or more email addresses")
    return [_address(item, "to") for item in raw]


def _host(raw: Any) -> str:
    """Return a checked SMTP host name."""
    if not isinstance(raw, str) or not raw.strip() or any(c.isspace() for c in raw.strip()):
        raise ValueError("smtp_host: required, a host name like smtp.example.com")
    return raw.strip()


def _port(raw: Any) -> int:
    """Return a TCP port from an int or a string of digits."""
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw < 65536:
        raise ValueError(f"smtp_port: expected a port number 1-65535, got {raw!r}")
    return raw


def _bool(raw: Any, field: str) -> bool:
    """Return a boolean field, refusing strings like "false" that would read as true."""
    if isinstance(raw, bool):
        return raw
    raise ValueError(f"{field}: expected true or false")


# --- masking ---------------------------------------------------------------------------------

def public_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Return the config with secrets (URL credentials, tokens, passwords) shown as '***'."""
    if kind not in KINDS:
        raise ValueError(f"kind: unknown channel kind {kind!r}; expected one of {', '.join(KINDS)}")
    shown = dict(config)
    if isinstance(shown.get("url"), str):
        shown["url"] = _public_url(shown["url"], secret_tail=kind == "slack")
    if shown.get("password"):
        shown["password"] = MASK
    if isinstance(shown.get("headers"), dict):
        shown["headers"] = {name: MASK for name in shown["headers"]}
    return shown


def _public_url(url: str, secret_tail: bool = False) -> str:
    """Return the URL with credentials, token-like path segments and query values masked."""
    try:
        parts = urlsplit(mask_url(url))
    except ValueError:
        return MASK
    netloc = parts.netloc
    if parts.username is not None and parts.password is None:  # a token used as the user name
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    segments = parts.path.split("/")
    path = "/".join(MASK if _secret_segment(segments, i, secret_tail) else segment
                    for i, segment in enumerate(segments))
    query = "&".join(_mask_query_item(item) for item in parts.query.split("&") if item)
    return urlunsplit((parts.scheme, netloc, path, query, MASK if parts.fragment else ""))


def _secret_segment(segments: list[str], index: int, secret_tail: bool) -> bool:
    """Tell whether a path segment looks like a token (long and mixing letters and digits)."""
    segment = segments[index]
    last = max((i for i, s in enumerate(segments) if s), default=-1)
    if secret_tail and index == last:
        return True  # a Slack webhook's last segment is its secret, whatever it looks like
    mixed = any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment)
    return (len(segment) >= 16 and mixed) or len(segment) >= 32


def _mask_query_item(item: str) -> str:
    """Mask the value of one query item, or the whole item when it has no name."""
    name, equals, _ = item.partition("=")
    return f"{name}={MASK}" if equals else MASK


def _secrets(kind: str, config: Mapping[str, Any]) -> list[str]:
    """Return every secret string of a config, to scrub from error text."""
    found = [str(config.get("password") or "")]
    found += [str(value) for value in (config.get("headers") or {}).values()]
    url = config.get("url")
    if isinstance(url, str):
        found += _url_secrets(url, kind == "slack")
    # shorter strings are no credible secret (a query "x=1"), and scrubbing them would garble
    # status codes; longest first, so a secret containing another is removed whole
    return sorted({secret for secret in found if len(secret) >= 6}, key=len, reverse=True)


def _url_secrets(url: str, secret_tail: bool) -> list[str]:
    """Return the credential, token-like path segments and query values of a URL."""
    parts = urlsplit(url)
    found = [parts.password or parts.username or "", parts.fragment]
    segments = parts.path.split("/")
    found += [s for i, s in enumerate(segments) if _secret_segment(segments, i, secret_tail)]
    found += [item.partition("=")[2] or item for item in parts.query.split("&")]
    return [unquoted for secret in found for unquoted in {secret, unquote(secret)}]


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in a text by the mask."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


# --- sending ---------------------------------------------------------------------------------

def send(kind: str, config: dict[str, Any], messages: list[AlertMessage], *, receiver: str,
         external_url: str, timeout: float = 10.0) -> None:
    """Deliver messages through one channel; raise DeliveryError on failure."""
    if not messages:
        return
    try:
        clean = validate_config(kind, config)
    except ValueError as exc:
        raise DeliveryError(f"{kind} channel is misconfigured: {exc}", retryable=False) from None
    try:
        _SENDERS[kind](clean, messages, _Options(receiver, external_url, timeout))
    except DeliveryError as exc:
        # error text may quote a server's answer; no secret may leave through it
        raise DeliveryError(_scrub(str(exc), _secrets(kind, clean)), exc.retryable) from None


def _send_webhook(config: dict[str, Any], messages: list[AlertMessage], options: _Options) -> None:
    """POST Alertmanager's webhook payload (version 4)."""
    payload = _webhook_payload(messages, options.receiver, options.external_url)
    _post_json(config["url"], payload, config["headers"], options.timeout)


def _send_slack(config: dict[str, Any], messages: list[AlertMessage], options: _Options) -> None:
    """POST a Slack incoming-webhook message: one line per alert."""
    payload: dict[str, Any] = {"text": "\n".join(_slack_escape(_alert_line(m)) for m in messages)}
    if "channel" in config:
        payload["channel"] = config["channel"]
    _post_json(config["url"], payload, {}, options.timeout, secret_tail=True)


def _send_alertmanager(config: dict[str, Any], messages: list[AlertMessage],
                       options: _Options) -> None:
    """POST the alerts to Alertmanager's v2 API, as Prometheus does."""
    body = [_alertmanager_alert(m) for m in messages]
    _post_json(config["url"] + "/api/v2/alerts", body, {}, options.timeout)


def _send_log(config: dict[str, Any], messages: list[AlertMessage], options: _Options) -> None:
    """Log one line per alert: WARNING while firing, INFO once resolved."""
    for m in messages:
        level = logging.WARNING if m.firing else logging.INFO
        log.log(level, "%s (alert %d, fingerprint %s, %s)", _alert_line(m), m.alert_id,
                m.fingerprint, m.generator_url,
                extra={"alert_id": m.alert_id, "alert_fingerprint": m.fingerprint,
                       "alert_status": m.status})


def _send_email(config: dict[str, Any], messages: list[AlertMessage], options: _Options) -> None:
    """Send one plain-text email for the batch over SMTP."""
    message = _email_message(config, messages, options)
    server = f"{config['smtp_host']}:{config['smtp_port']}"
    try:
        with smtplib.SMTP(config["smtp_host"], config["smtp_port"],
                          timeout=options.timeout) as smtp:
            _smtp_session(smtp, config)
            smtp.send_message(message)
    except smtplib.SMTPException as exc:  # before OSError: SMTPException is one
        raise _smtp_error(server, exc) from None
    except OSError as exc:
        # a certificate that does not verify is a configuration problem, not a hiccup
        retryable = not isinstance(exc, ssl.SSLCertVerificationError)
        raise DeliveryError(f"email via {server} failed: {_reason(exc)}", retryable) from None


_SENDERS: dict[str, Callable[[dict[str, Any], list[AlertMessage], _Options], None]] = {
    "webhook": _send_webhook,
    "slack": _send_slack,
    "email": _send_email,
    "alertmanager": _send_alertmanager,
    "log": _send_log,
}


# --- payloads --------------------------------------------------------------------------------

def _webhook_payload(messages: list[AlertMessage], receiver: str,
                     external_url: str) -> dict[str, Any]:
    """Build the webhook body, field for field (and in the order) Alertmanager sends."""
    common = _common(m.labels for m in messages)
    return {
        "receiver": receiver,
        "status": "firing" if any(m.firing for m in messages) else "resolved",
        "alerts": [_webhook_alert(m) for m in messages],
        "groupLabels": common,
        "commonLabels": common,
        "commonAnnotations": _common(m.annotations for m in messages),
        "externalURL": external_url,
        "version": "4",
        "groupKey": _group_key(common),
        "truncatedAlerts": 0,
    }


def _webhook_alert(m: AlertMessage) -> dict[str, Any]:
    """Build one alert of the webhook body."""
    return {
        "status": m.status,
        "labels": dict(m.labels),
        "annotations": dict(m.annotations),
        "startsAt": _rfc3339(m.starts_at),
        "endsAt": ZERO_TIME if m.firing or m.ends_at is None else _rfc3339(m.ends_at),
        "generatorURL": m.generator_url,
        "fingerprint": m.fingerprint,
    }


def _alertmanager_alert(m: AlertMessage) -> dict[str, Any]:
    """Build one alert for POST /api/v2/alerts; endsAt only once resolved."""
    alert: dict[str, Any] = {
        "labels": dict(m.labels),
        "annotations": dict(m.annotations),
        "startsAt": _rfc3339(m.starts_at),
        "generatorURL": m.generator_url,
    }
    if not m.firing and m.ends_at is not None:
        alert["endsAt"] = _rfc3339(m.ends_at)
    return alert


def _common(label_sets: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """Return the name/value pairs shared by every mapping, sorted by name."""
    sets = [set(labels.items()) for labels in label_sets]
    shared = set.intersection(*sets) if sets else set()
    return dict(sorted(shared))


def _group_key(labels: Mapping[str, str]) -> str:
    """Format a group key like Alertmanager's root route: {}:{name="value", ...}."""
    # json.dumps quotes like Go's %q for every printable value
    pairs = ", ".join(f"{name}={json.dumps(value, ensure_ascii=False)}"
                      for name, value in sorted(labels.items()))
    return "{}:{" + pairs + "}"


def _rfc3339(moment: datetime) -> str:
    """Format a time as Go's RFC3339Nano in UTC does: Z, fraction without trailing zeros."""
    if moment.tzinfo is None:  # naive times read back from the database are UTC
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _where(labels: Mapping[str, str]) -> str:
    """Return project/target, or whichever of them is known."""
    return "/".join(labels[name] for name in ("project", "target") if labels.get(name))


def _alert_line(m: AlertMessage) -> str:
    """Return the one-line headline: [FIRING:critical] Name project/target — summary."""
    head = f"[FIRING:{m.labels.get('severity', 'unknown')}]" if m.firing else "[RESOLVED]"
    words = [head, m.labels.get("alertname", "alert"), _where(m.labels)]
    line = " ".join(word for word in words if word)
    summary = m.annotations.get("summary") or m.annotations.get("description")
    return f"{line} — {summary}" if summary else line


def _slack_escape(text: str) -> str:
    """Escape the three characters Slack treats as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _email_subject(messages: list[AlertMessage]) -> str:
    """Return a subject like Alertmanager's: [FIRING:2] Name project/target, or [RESOLVED] …."""
    firing = sum(m.firing for m in messages)
    head = f"[FIRING:{firing}]" if firing else "[RESOLVED]"
    names = _unique(m.labels.get("alertname", "alert") for m in messages)
    places = _unique(_where(m.labels) for m in messages)
    subject = " ".join(part for part in (head, ", ".join(names), ", ".join(places)) if part)
    return " ".join(subject.split())  # a header must stay on one line


def _unique(values: Iterable[str]) -> list[str]:
    """Return the non-empty values once each, in first-seen order."""
    return [value for value in dict.fromkeys(values) if value]


def _email_body(messages: list[AlertMessage], options: _Options) -> str:
    """Return the plain-text body: every label, annotation, time and link of each alert."""
    blocks = [_email_block(m) for m in messages]
    footer = f"Sent by redismon to receiver {options.receiver!r}. {options.external_url}"
    return "\n\n".join([*blocks, footer]) + "\n"


def _email_block(m: AlertMessage) -> str:
    """Return the text of one alert in an email."""
    lines = [_alert_line(m), "", "Labels:"]
    lines += [f"  {name} = {value}" for name, value in sorted(m.labels.items())]
    lines += ["Annotations:"]
    lines += [f"  {name} = {value}" for name, value in sorted(m.annotations.items())]
    lines += [f"Started: {_rfc3339(m.starts_at)}"]
    if not m.firing and m.ends_at is not None:
        lines += [f"Ended: {_rfc3339(m.ends_at)}"]
    lines += [f"Fingerprint: {m.fingerprint}", f"Details: {m.generator_url}"]
    return "\n".join(lines)


def _email_message(config: dict[str, Any], messages: list[AlertMessage],
                   options: _Options) -> EmailMessage:
    """Build the email with its headers."""
    message = EmailMessage()
    message["Subject"] = _email_subject(messages)
    message["From"] = config["from"]
    message["To"] = ", ".join(config["to"])
    message["Date"] = formatdate(usegmt=True)
    # the sender's domain, because make_msgid's default asks DNS for our host name
    domain = parseaddr(config["from"])[1].rpartition("@")[2] or "redismon.invalid"
    message["Message-ID"] = make_msgid("redismon", domain=domain)
    message.set_content(_email_body(messages, options))
    return message


# --- transports ------------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would turn our POST into a GET and report success."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post_json(url: str, body: Any, headers: Mapping[str, str], timeout: float,
               secret_tail: bool = False) -> None:
    """POST a JSON body; map failures to DeliveryError with the URL masked."""
    target, auth = _split_credentials(url)
    request = urllib.request.Request(
        target, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **auth,
                 **headers})
    where = _public_url(url, secret_tail)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:  # before OSError: HTTPError is one
        raise _status_error(where, exc) from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"POST {where} failed: {_reason(exc)}", retryable=True) from None


def _split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """Move user:password out of the URL into a Basic Authorization header (urllib cannot)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    host = parts.netloc.rpartition("@")[2]
    token = base64.b64encode(pair.encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


def _status_error(where: str, exc: urllib.error.HTTPError) -> DeliveryError:
    """Map a non-2xx answer: 408, 429 and 5xx are worth a retry, the rest are not."""
    status = exc.code
    try:
        detail = " ".join(exc.read(_MAX_ERROR_BODY).decode(errors="replace").split())
    except (OSError, http.client.HTTPException):
        detail = ""
    finally:
        exc.close()
    if 300 <= status < 400:
        detail = "redirects are not followed; configure the final URL"
    retryable = status in (408, 429) or status >= 500
    return DeliveryError(f"POST {where} answered {status}" + (f": {detail}" if detail else ""),
                         retryable)


def _smtp_session(smtp: smtplib.SMTP, config: dict[str, Any]) -> None:
    """Upgrade to TLS and log in as configured."""
    if config["starttls"]:
        smtp.starttls(context=ssl.create_default_context())
    if "username" in config:
        smtp.login(config["username"], config["password"])


def _smtp_error(server: str, exc: smtplib.SMTPException) -> DeliveryError:
    """Map an SMTP failure: 4xx replies and dropped connections are worth a retry."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        refused = ", ".join(f"{rcpt} ({code})" for rcpt, (code, _) in exc.recipients.items())
        return DeliveryError(f"email via {server}: recipients refused: {refused}",
                             any(400 <= code < 500 for code in codes))
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        return DeliveryError(f"email via {server} answered {exc.smtp_code}: {text}",
                             400 <= exc.smtp_code < 500)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"email via {server} failed: {_reason(exc)}", retryable=True)
    # what is left (STARTTLS or AUTH not offered, no common AUTH method) is configuration
    return DeliveryError(f"email via {server} failed: {_reason(exc)}", retryable=False)


def _reason(exc: BaseException) -> str:
    """Describe a low-level error in a few words."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, BaseException):
        return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
    return str(reason)
