"""The `redismon` command line."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from monitor.settings import Settings, SettingsError, load_settings, mask_url

WORKER_CONCURRENCY = "2"


def _fail(message: str) -> None:
    click.echo(f"redismon: {message}", err=True)
    sys.exit(2)


def with_settings(func: Callable[..., Any]) -> Callable[..., Any]:
    """Load settings first, turning a bad value into one line and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            settings = load_settings()
        except SettingsError as exc:
            _fail(str(exc))
        return func(settings, *args, **kwargs)

    return wrapper


def _runtime(settings: Settings, migrate_first: bool = True) -> Any:
    from sqlalchemy.exc import OperationalError

    from monitor.runtime import bootstrap, build_runtime

    rt = build_runtime(settings)
    if migrate_first:
        try:
            bootstrap(rt)
        except OperationalError as exc:
            _fail(f"cannot reach the database {mask_url(settings.database_url)}: "
                  f"{str(exc.orig).splitlines()[0]}")
    return rt


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Redis Monitor: watch Redis servers on a schedule and keep their history."""


@main.command()
@with_settings
def migrate(settings: Settings) -> None:
    """Bring the database to the newest schema and register REDIS_URL as the default target."""
    _runtime(settings)
    click.echo(f"database {mask_url(settings.database_url)} is at the newest schema")


def _web_command(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "web:create_app()",
            "--bind", f"{settings.web_host}:{settings.web_port}", "--workers", "2",
            "--log-level", "warning"]


def _worker_command(loglevel: str = "WARNING") -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
            "--concurrency", WORKER_CONCURRENCY, "--loglevel", loglevel, "--without-gossip",
            "--without-mingle"]


def _beat_command(settings: Settings, loglevel: str = "WARNING") -> list[str]:
    from monitor.settings import embedded_broker_path

    schedule = embedded_broker_path(settings.database_url).replace("-broker.db", "-beat")
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat",
            "--loglevel", loglevel, "--schedule", schedule]


@main.command()
@with_settings
def web(settings: Settings) -> None:
    """Run the web process (REST API and Prometheus text) with gunicorn."""
    _runtime(settings)
    os.execv(sys.executable, _web_command(settings))


@main.command()
@with_settings
def worker(settings: Settings) -> None:
    """Run a Celery worker consuming every queue."""
    _runtime(settings)
    os.execv(sys.executable, _worker_command("INFO"))


@main.command()
@with_settings
def beat(settings: Settings) -> None:
    """Run Celery beat (exactly one should run; a second one duplicates nothing)."""
    _runtime(settings)
    os.execv(sys.executable, _beat_command(settings, "INFO"))


@main.command()
@with_settings
def up(settings: Settings) -> None:
    """Migrate, then run web, worker and beat together until Ctrl-C."""
    _runtime(settings)
    _require_free_port(settings.web_host, settings.web_port)
    commands = {"web": _web_command(settings), "worker": _worker_command(),
                "beat": _beat_command(settings)}
    children = {name: subprocess.Popen(cmd, preexec_fn=_die_with_parent)
                for name, cmd in commands.items()}
    base = f"http://{settings.web_host}:{settings.web_port}/monitoring/redis"
    click.echo(f"Redis Monitor is up, watching {mask_url(settings.redis_url)}")
    click.echo(f"  API:        {base}/metrics")
    click.echo(f"  Prometheus: {base}/metrics/prometheus")
    click.echo(f"  Status:     {base}/monitoring/status")
    click.echo("Press Ctrl-C to stop.")
    sys.exit(_supervise(children))


def _die_with_parent() -> None:
    """Ask Linux to stop this child when `redismon up` dies, even by SIGKILL."""
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:  # not Linux: Ctrl-C and SIGTERM still stop every child
        pass


def _require_free_port(host: str, port: int) -> None:
    """Fail with one line when the API address is taken, before starting anything."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            _fail(f"cannot listen on {host}:{port} ({exc.strerror}); "
                  "set WEB_PORT or stop what uses it")


def _supervise(children: dict[str, subprocess.Popen[bytes]]) -> int:
    """Wait until Ctrl-C, SIGTERM or a child's exit, then stop every child."""
    stopping = False

    def _stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    exited: str | None = None
    while not stopping and exited is None:
        exited = next((n for n, p in children.items() if p.poll() is not None), None)
        time.sleep(0.2)
    if exited is not None:
        click.echo(f"redismon: {exited} exited with code {children[exited].returncode}; "
                   "stopping the others", err=True)
    _terminate(children)
    click.echo("Redis Monitor stopped.")
    return 1 if exited is not None else 0


def _terminate(children: dict[str, subprocess.Popen[bytes]], grace: float = 15.0) -> None:
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@main.group()
def targets() -> None:
    """Add, list and remove monitored Redis servers."""


@targets.command("list")
@with_settings
def targets_list(settings: Settings) -> None:
    """List targets with their masked URL."""
    from monitor.targets import list_targets

    rt = _runtime(settings)
    with rt.sessions() as session:
        rows = list_targets(session)
    click.echo(f"{'ID':>4}  {'PROJECT':<16} {'NAME':<20} {'ENABLED':<8} URL")
    for target, project in rows:
        click.echo(f"{target.id:>4}  {project:<16} {target.name:<20} "
                   f"{'yes' if target.enabled else 'no':<8} {mask_url(target.url)}")


@targets.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--project", default="default", show_default=True, help="Project of the target.")
@click.option("--read-only", is_flag=True, help="Never write to this target (health checks).")
@click.option("--disabled", is_flag=True, help="Add it without collecting yet.")
@with_settings
def targets_add(settings: Settings, name: str, url: str, project: str, read_only: bool,
                disabled: bool) -> None:
    """Add target NAME at URL (redis://[user:password@]host:port/db)."""
    from monitor.db import transaction
    from monitor.targets import TargetError, add_target

    rt = _runtime(settings)
    try:
        with transaction(rt.sessions) as session:
            target = add_target(session, project=project, name=name, url=url, now=rt.clock(),
                                enabled=not disabled, read_only=read_only)
    except TargetError as exc:
        _fail(str(exc))
    click.echo(f"added target {target.id}: {project}/{name} {mask_url(url)}")


@targets.command("remove")
@click.argument("target")
@click.option("--project", default="default", show_default=True)
@with_settings
def targets_remove(settings: Settings, target: str, project: str) -> None:
    """Remove TARGET (an id or a name) and its history."""
    from monitor.db import transaction
    from monitor.targets import TargetError, find_target

    rt = _runtime(settings)
    try:
        with transaction(rt.sessions) as session:
            found = find_target(session, target, project)
            name = found.name
            session.delete(found)
    except TargetError as exc:
        _fail(str(exc))
    click.echo(f"removed target {name}")


STATUS_COLOURS = {"healthy": "green", "degraded": "yellow", "unhealthy": "red",
                  "unknown": "magenta", "closed": "green", "open": "red", "half_open": "yellow"}


def _coloured(word: str, width: int = 0) -> str:
    """Colour a status word when stdout is a terminal (click strips colour otherwise)."""
    return click.style(word.ljust(width), fg=STATUS_COLOURS.get(word), bold=word != "healthy")


@main.command()
@click.option("--target", "target_name", help="Only this target (name).")
@click.option("--project", "project_id", type=int, help="Only targets of this project id.")
@with_settings
def check(settings: Settings, target_name: str | None, project_id: int | None) -> None:
    """Run the health checks now and print a table; exit 1 if a target is unhealthy."""
    from sqlalchemy import select

    from monitor.collect import ClientCache
    from monitor.db import Target
    from monitor.health.service import check_target

    rt = _runtime(settings)
    query = select(Target.id).where(Target.enabled.is_(True)).order_by(Target.id)
    if target_name:
        query = query.where(Target.name == target_name)
    if project_id is not None:
        query = query.where(Target.project_id == project_id)
    with rt.sessions() as session:
        ids = list(session.scalars(query))
    if not ids:
        _fail("no enabled target matches")
    clients = ClientCache(settings.redis_connection_timeout, settings.redis_operation_timeout,
                          settings.redis_max_connections)
    reports = [r for i in ids if (r := check_target(rt.sessions, clients, i, rt.clock(),
                                                    settings)) is not None]
    clients.close()
    for report in reports:
        _print_report(report)
    sys.exit(1 if any(r.status == "unhealthy" for r in reports) else 0)


def _print_report(report: Any) -> None:
    click.echo(f"{report.project}/{report.target}: {_coloured(report.status)}  "
               f"(circuit {_coloured(report.circuit['state'])}, "
               f"{report.response_time_ms:.1f} ms)")
    for result in report.checks:
        click.echo(f"  {str(result.check):<16} {_coloured(str(result.status), 10)} "
                   f"{result.response_time_ms:>8.2f} ms  {result.message}")


@main.command()
@with_settings
def status(settings: Settings) -> None:
    """Print the monitoring switch, beat and worker liveness, tasks and circuit breakers."""
    from sqlalchemy import select

    from monitor.control import control_view
    from monitor.db import CircuitBreaker, Target
    from monitor.status import process_status, task_status

    rt = _runtime(settings)
    now = rt.clock()
    with rt.sessions() as session:
        control = control_view(session)
        processes = process_status(session, now)
        tasks = task_status(session)
        breakers = session.execute(select(Target.name, CircuitBreaker).join(
            CircuitBreaker, CircuitBreaker.target_id == Target.id)).all()
    changed = f" (by {control['changed_by']} at {control['changed_at']})" \
        if control["changed_by"] else ""
    click.echo(f"monitoring {control['monitoring']}{changed}")
    for kind in ("beat", "worker"):
        info = processes.get(kind, {"alive": False, "processes": []})
        seen = ", ".join(f"{p['hostname']}:{p['pid']} {p['age_seconds']:.0f}s ago"
                         for p in info["processes"]) or "never seen"
        click.echo(f"{kind:<7} {'alive' if info['alive'] else 'DOWN':<6} {seen}")
    for task in tasks:
        error = f"  error: {task['last_error']}" if task["last_error"] else ""
        click.echo(f"task {task['task']:<22} last {task['last_started_at']} "
                   f"({task['last_duration_seconds'] or 0:.3f}s, {task['runs']} runs){error}")
    for name, breaker in breakers:
        when = f", next probe {breaker.next_probe_at.isoformat()}" \
            if breaker.state != "closed" and breaker.next_probe_at else ""
        click.echo(f"circuit {name:<20} {_coloured(breaker.state)} "
                   f"{breaker.failures} failures{when}")


@main.group()
def alerts() -> None:
    """List, acknowledge and resolve alerts."""


@alerts.command("list")
@click.option("--status", type=click.Choice(["pending", "active", "acknowledged", "resolved"]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@with_settings
def alerts_list(settings: Settings, status: str | None, limit: int) -> None:
    """List the newest alerts."""
    from monitor.alerts.service import AlertFilter, list_alerts

    rt = _runtime(settings)
    with rt.sessions() as session:
        page, _ = list_alerts(session, AlertFilter(status=status, limit=limit))
    if not page:
        click.echo("no alerts")
    for alert in page:
        click.echo(f"{alert['id']:>5}  {_coloured(alert['status'], 12)} {alert['severity']:<8} "
                   f"{alert['project']}/{alert['target']:<16} {alert['rule']:<28} "
                   f"{alert['summary']}")


def _alert_action(settings: Settings, alert_id: int, action: str, user: str,
                  comment: str | None, duration: str | None = None) -> None:
    from monitor.alerts.service import ActionInput, AlertError, act
    from monitor.db import transaction

    rt = _runtime(settings)
    try:
        with transaction(rt.sessions) as session:
            alert, _ = act(session, alert_id, ActionInput(
                action=action, user=user, comment=comment, duration=duration), rt.clock())
            status = alert.status
    except AlertError as exc:
        _fail(str(exc))
    click.echo(f"alert {alert_id} is {status}")


def _default_user() -> str:
    import getpass

    return getpass.getuser()


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--user", default=_default_user, show_default="your login")
@click.option("--comment")
@click.option("--duration", help="Acknowledge until then, like 10m or 2h.")
@with_settings
def alerts_ack(settings: Settings, alert_id: int, user: str, comment: str | None,
               duration: str | None) -> None:
    """Acknowledge ALERT_ID: no more repeats while it lasts."""
    _alert_action(settings, alert_id, "acknowledge", user, comment, duration)


@alerts.command("resolve")
@click.argument("alert_id", type=int)
@click.option("--user", default=_default_user, show_default="your login")
@click.option("--comment")
@with_settings
def alerts_resolve(settings: Settings, alert_id: int, user: str, comment: str | None) -> None:
    """Resolve ALERT_ID by hand (it fires again as a new alert if the condition holds)."""
    _alert_action(settings, alert_id, "resolve", user, comment)


if __name__ == "__main__":
    main()
