"""Dependencies are pinned, and none has a known vulnerability (pip-audit, when PyPI answers)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Vulnerabilities we accept, each with the reason; empty while nothing needs accepting.
ACCEPTED: dict[str, str] = {}


def declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    return requirements


def test_every_dependency_is_pinned_to_one_version():
    loose = [r for r in declared() if "==" not in r or any(op in r for op in (">", "<", "~", "*"))]
    assert loose == [], f"pin these with ==: {loose}"


def pypi_reachable() -> bool:
    try:
        return httpx.get("https://pypi.org/pypi/pip-audit/json", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_no_installed_dependency_has_a_known_vulnerability(tmp_path):
    audit = shutil.which("pip-audit", path=str(Path(sys.executable).parent))
    if audit is None:
        pytest.skip("pip-audit is not installed (it is in the test extra)")
    if not pypi_reachable():
        pytest.skip("PyPI is not reachable from this machine; CI (which has PyPI access) runs "
                    "this audit")
    report = tmp_path / "audit.json"
    done = subprocess.run(
        [audit, "--local", "--skip-editable", "--format", "json", "--progress-spinner", "off",
         "--timeout", "20", "--output", str(report)],
        capture_output=True, text=True, timeout=240)
    if not report.exists():
        pytest.fail(f"pip-audit did not produce a report: {done.stderr[-2000:]}")
    dependencies = json.loads(report.read_text("utf-8"))["dependencies"]
    found = [(d["name"], d["version"], v["id"], v.get("fix_versions"))
             for d in dependencies for v in d.get("vulns", []) if v["id"] not in ACCEPTED]
    print(f"\npip-audit: {len(dependencies)} installed distributions checked, "
          f"{len(found)} known vulnerabilities")
    assert found == [], "\n".join(f"{n}=={ver}: {vid} (fixed in {fix})"
                                  for n, ver, vid, fix in found)
