"""Per-process runtime of a worker: one engine and one client cache, rebuilt after fork."""
from __future__ import annotations

from celery.signals import worker_process_init

from monitor.collect import ClientCache
from monitor.runtime import Runtime, build_runtime
from workers.celery_app import settings

_runtime: Runtime | None = None
_clients: ClientCache | None = None


def runtime() -> Runtime:
    """Return this process's runtime, creating it on first use."""
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(settings)
    return _runtime


def clients() -> ClientCache:
    """Return this process's persistent Redis clients."""
    global _clients
    if _clients is None:
        _clients = ClientCache(settings.redis_connection_timeout,
                               settings.redis_operation_timeout, settings.redis_max_connections)
    return _clients


@worker_process_init.connect
def _after_fork(**_: object) -> None:
    """Never share database or Redis sockets with the parent process."""
    global _runtime, _clients
    if _runtime is not None:
        _runtime.engine.dispose(close=False)
    _runtime, _clients = None, None
