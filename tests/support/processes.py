"""Run the monitor's own processes (web, worker, beat, up) as real subprocesses."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import die_with_parent

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def monitor_env(**settings: str) -> dict[str, str]:
    """The environment of a monitor process: ours, plus the given settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_",
                                                                       "CELERY_", "METRICS_"))}
    env.update(settings)
    env["PYTHONPATH"] = str(ROOT)
    return env


class Processes:
    """Start processes with logs in a folder, and stop them all at the end."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs, self.env = logs, env
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(list(args), cwd=self.logs, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent)
        self.running[name] = proc
        return proc

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        return self.start(name, str(BIN / "celery"), "-A", "workers.celery_app", "worker",
                          "--loglevel", "INFO", "--concurrency", "2", "--hostname",
                          f"{name}@%h", "--without-mingle", "--without-gossip")

    def beat(self, name: str) -> subprocess.Popen[bytes]:
        return self.start(name, str(BIN / "celery"), "-A", "workers.celery_app", "beat",
                          "--loglevel", "INFO", "--schedule", str(self.logs / f"{name}-schedule"))

    def web(self, port: int) -> subprocess.Popen[bytes]:
        return self.start("web", str(BIN / "gunicorn"), "web:create_app()", "--bind",
                          f"127.0.0.1:{port}", "--workers", "1")

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.running.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.running.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def scrape(url: str) -> dict[tuple[str, str], float] | None:
    """Return {(series name, target label): value} from a Prometheus endpoint, None if down."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    return {(s.name, s.labels.get("target", "")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def fetch_text(url: str) -> str:
    """Return the body of a GET."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def descendants(pid: int) -> set[int]:
    """Return every living descendant of a process, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
