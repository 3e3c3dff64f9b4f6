"""A real Alertmanager for tests: started on a free port, queried through its v2 API.

    with running_alertmanager() as am:
        post_alerts(am.url, ...)
        wait_until(lambda: am.alert_state(labels) == "active")

Every instance routes all alerts to one webhook receiver (send_resolved: true) served by an
`HTTPReceiver`, so a test sees the notifications Alertmanager itself sends (`am.notifications()`)
and can tell a resolved alert from one that never arrived.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.alerts.evaluation import fingerprint
from tests.support.receivers import HTTPReceiver
from tests.support.servers import die_with_parent, free_port, wait_until

RECEIVER = "redismon-test"
EXTERNAL_URL = "http://alertmanager.test:9093"

# group_by ['...'] makes every alert its own group, which is what the webhook channel mirrors;
# the short waits make Alertmanager notify within about a second.
CONFIG = """\
route:
  receiver: {receiver}
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: {receiver}
    webhook_configs:
      - url: {webhook}/alertmanager
        send_resolved: true
"""


def alertmanager_binary() -> str:
    """Return the Alertmanager executable, or fail with how to install it."""
    path = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if path is None:
        raise RuntimeError("Alertmanager is not installed: "
                           "apt-get install -y prometheus-alertmanager")
    return path


def labels_fingerprint(labels: Mapping[str, str]) -> str:
    """Return Alertmanager's fingerprint of a label set (the domain computes it)."""
    return fingerprint(dict(labels))


@dataclass
class Alertmanager:
    """A running Alertmanager and the webhook receiver it notifies."""

    url: str
    webhook: HTTPReceiver
    directory: Path

    def get(self, path: str) -> Any:
        """GET a path of the API and return the decoded JSON."""
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return json.load(response)

    def alerts(self, *, active: bool | None = None, silenced: bool | None = None,
               inhibited: bool | None = None, unprocessed: bool | None = None,
               filter: list[str] | None = None) -> list[dict[str, Any]]:
        """Return GET /api/v2/alerts with the given filters (Alertmanager's defaults if None)."""
        flags = {"active": active, "silenced": silenced, "inhibited": inhibited,
                 "unprocessed": unprocessed}
        query = [(name, str(value).lower()) for name, value in flags.items() if value is not None]
        query += [("filter", matcher) for matcher in filter or []]
        return list(self.get("/api/v2/alerts?" + urllib.parse.urlencode(query)))

    def find(self, labels: Mapping[str, str], **filters: Any) -> dict[str, Any] | None:
        """Return the alert whose label set is exactly `labels`, or None."""
        for alert in self.alerts(**filters):
            if alert["labels"] == dict(labels):
                return alert
        return None

    def notifications(self) -> list[dict[str, Any]]:
        """Return the webhook payloads Alertmanager has sent so far, oldest first."""
        return self.webhook.bodies()

    def alert_state(self, labels: Mapping[str, str]) -> str | None:
        """Return "active" (or "suppressed"/"unprocessed"), "resolved", or None if unknown.

        Observed with Alertmanager 0.25: an alert whose endsAt has passed disappears from
        GET /api/v2/alerts under every filter combination (active=false, the defaults, all
        false), and from /api/v2/alerts/groups; it is never listed with a "resolved" state.
        The API only reports status.state "active", "suppressed" or "unprocessed". So
        "resolved" is read from Alertmanager's own webhook notification (send_resolved): the
        alert is gone from the API and the last notification about it says "resolved".
        """
        listed = self.find(labels)
        if listed is not None:
            return str(listed["status"]["state"])
        statuses = [alert["status"] for payload in self.notifications()
                    for alert in payload["alerts"] if alert["labels"] == dict(labels)]
        return "resolved" if statuses and statuses[-1] == "resolved" else None

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False


@contextmanager
def running_alertmanager() -> Iterator[Alertmanager]:
    """Start a real Alertmanager in a temp folder; stop it and clean up on exit."""
    directory = Path(tempfile.mkdtemp(prefix="redismon-am-"))
    with HTTPReceiver() as webhook:
        config = directory / "alertmanager.yml"
        config.write_text(CONFIG.format(receiver=RECEIVER, webhook=webhook.url))
        port = free_port()
        am = Alertmanager(f"http://127.0.0.1:{port}", webhook, directory)
        process = _start(config, port, directory)
        try:
            wait_until(lambda: am._ready() or process.poll() is not None, 30,
                       message=f"Alertmanager on {port}")
            if process.poll() is not None:
                raise RuntimeError("Alertmanager exited: " + _log_tail(directory))
            yield am
        finally:
            _stop(process)
            shutil.rmtree(directory, ignore_errors=True)


def _start(config: Path, port: int, directory: Path) -> subprocess.Popen[bytes]:
    """Start the binary without clustering, its data and log in `directory`."""
    with open(directory / "alertmanager.log", "wb") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [alertmanager_binary(), f"--config.file={config}",
             f"--storage.path={directory / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             f"--web.external-url={EXTERNAL_URL}", "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the process, killing it if it does not stop in time."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _log_tail(directory: Path) -> str:
    """Return the end of Alertmanager's log for an error message."""
    path = directory / "alertmanager.log"
    return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"
