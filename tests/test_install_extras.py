"""README's first command installs only the `local` extra: it must bring every moto service
the local code imports (moto imports a service's own dependencies only with its extra)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib

from tests.conftest import REPO


def moto_services_imported(package: str) -> set[str]:
    """moto's top-level modules that `package`'s code imports (moto.cloudformation, ...)."""
    found = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [])
            found.update(name.split(".")[1] for name in names if name.startswith("moto."))
    return found


def moto_extras_of(extra: str) -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras: set[str] = set()
    for requirement in project["optional-dependencies"][extra]:
        if (match := re.match(r"moto\[([^\]]*)\]", requirement)):
            extras.update(part.strip() for part in match.group(1).split(","))
    return extras


def test_the_local_extra_brings_every_moto_service_the_local_code_imports() -> None:
    offered = set(importlib.metadata.metadata("moto").get_all("Provides-Extra") or [])
    needed = {service.replace("_", "-") for service in moto_services_imported("animl_local")}
    assert "cloudformation" in needed  # the embedded stage is provisioned from the template
    missing = (needed & offered) - moto_extras_of("local")
    assert not missing, f"pyproject.toml's `local` extra lacks moto[{','.join(sorted(missing))}]"
