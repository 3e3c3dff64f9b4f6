"""Celery app and thin tasks: they load ids, call monitor, and handle retries and logging."""
