"""Runs a service's app factory under uvicorn with settings from the environment.

With more than one worker, uvicorn starts that many processes on the one port, each building
its own app through `worker_app` in the factory's module (see `worker_factory`); Prometheus
metrics then go through
files in `PROMETHEUS_MULTIPROC_DIR` (a fresh temporary folder unless set), and `/metrics`
sums them.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from services.devstack.lifetime import die_with_parent
from services.web.observability import MULTIPROCESS_ENV
from shared.logging import configure_logging
from shared.settings import Settings, load_settings


def configure_service_logging(settings: Settings) -> None:
    """Logging as the settings ask, for a service process or a worker of one."""
    configure_logging(settings.log_level, settings.log_format, settings.log_hash_customer_ids,
                      settings.log_hash_salt.get_secret_value().encode()
                      if settings.log_hash_salt else None)


def _build(factory_path: str, settings: Settings) -> FastAPI:
    module_name, _, factory_name = factory_path.partition(":")
    return getattr(importlib.import_module(module_name), factory_name)(settings)


def _settings() -> Settings:
    settings = load_settings()
    configure_service_logging(settings)
    return settings


def worker_factory(create_app: Callable[[Settings], FastAPI]) -> Callable[[], FastAPI]:
    """The `worker_app` a service module defines for several workers: in each worker process
    (which ends with the server process, even when that one is killed), settings from the
    environment and logging, then the app."""

    def worker_app() -> FastAPI:
        die_with_parent()
        return create_app(_settings())

    return worker_app


def fresh_metrics_dir() -> Path:
    """The folder the workers' metric files go to, emptied of an earlier run's files."""
    configured = os.environ.get(MULTIPROCESS_ENV)
    if not configured:
        path = Path(tempfile.mkdtemp(prefix="touchpoint-metrics-"))
    else:
        path = Path(configured)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROCESS_ENV] = str(path)
    return path


def serve(factory_path: str, port_setting: str, workers_setting: str | None = None) -> None:
    """Serves `factory_path` (module:function taking the settings); with `workers_setting`
    above 1, that many processes, each built by the module's `worker_app`."""
    settings = _settings()
    workers = getattr(settings, workers_setting) if workers_setting else 1
    options = {"host": settings.host, "port": getattr(settings, port_setting),
               "log_config": None, "access_log": False, "server_header": False}
    if workers <= 1:
        uvicorn.run(_build(factory_path, settings), **options)
        return
    fresh_metrics_dir()
    module_name = factory_path.partition(":")[0]
    uvicorn.run(f"{module_name}:worker_app", factory=True, workers=workers, **options)
