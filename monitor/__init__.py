"""Redis Monitor: the domain, importable without Celery or Flask."""
from __future__ import annotations

__version__ = "0.1.0"
