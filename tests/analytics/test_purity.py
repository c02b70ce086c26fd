"""The analytics core stays pure: only the standard library, numpy, scipy and other core modules.

Adapters (the Redis store, the consumer, the API, the CLI, the benchmark) live next to the
core; the core never imports them, reads the clock or the environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import services.profiles.analytics as analytics
from tests.purity import imported_modules

PACKAGE = "services.profiles.analytics"
CORE = ("attribution", "journeys", "lift", "path_models", "outcomes", "keys")
ALLOWED = {
    "__future__",
    "calendar",
    "collections",
    "dataclasses",
    "datetime",
    "functools",
    "itertools",
    "math",
    "numpy",
    "scipy",
    "statistics",
    "typing",
}
ADAPTER_LIBRARIES = {"redis", "kafka", "fastapi", "starlette", "uvicorn", "httpx"}
FOLDER = Path(analytics.__file__).parent


imports = imported_modules


def test_every_core_module_exists():
    assert {p.stem for p in FOLDER.glob("*.py")} >= set(CORE)


@pytest.mark.parametrize("name", CORE)
def test_core_imports_no_adapter_clock_or_environment(name):
    path = FOLDER / f"{name}.py"
    for module in imports(path):
        if module.startswith(PACKAGE + "."):
            assert module.removeprefix(PACKAGE + ".") in CORE, module
        else:
            assert module.split(".")[0] in ALLOWED, module
    source = path.read_text()
    for forbidden in ("datetime.now", "datetime.utcnow", "time.time", "os.environ"):
        assert forbidden not in source


@pytest.mark.parametrize("name", ["facts", "costs", "schemas", "report", "demo_data"])
def test_translation_modules_import_no_adapter(name):
    roots = {module.split(".")[0] for module in imports(FOLDER / f"{name}.py")}
    assert not roots & ADAPTER_LIBRARIES
