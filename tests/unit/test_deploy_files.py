"""The production files are accepted by the tools that read them."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docker_compose_accepts_the_file() -> None:
    env = {**os.environ, "POSTGRES_PASSWORD": "test", "GRAFANA_ADMIN_PASSWORD": "test"}
    result = subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_to_run_without_passwords() -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD")}
    result = subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "POSTGRES_PASSWORD" in result.stderr


def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(["promtool", "check", "config",
                             str(ROOT / "deploy/prometheus/prometheus.yml")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_procfile_has_the_three_processes() -> None:
    names = [line.split(":")[0] for line in (ROOT / "Procfile").read_text().splitlines() if line]
    assert {"web", "worker", "beat"} <= set(names)
