"""Runs a service's app factory under uvicorn with settings from the environment."""

from __future__ import annotations

import importlib

import uvicorn

from shared.logging import configure_logging
from shared.settings import load_settings


def serve(factory_path: str, port_setting: str) -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, settings.log_hash_customer_ids,
                      settings.log_hash_salt.get_secret_value().encode()
                      if settings.log_hash_salt else None)
    module_name, _, factory_name = factory_path.partition(":")
    factory = getattr(importlib.import_module(module_name), factory_name)
    app = factory(settings)
    uvicorn.run(app, host=settings.host, port=getattr(settings, port_setting),
                log_config=None, access_log=False, server_header=False)
