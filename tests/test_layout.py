"""The import direction of DESIGN.md §1, checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dsmt", "gateways", "actors")
# package -> packages it must not import
FORBIDDEN = {"dsmt": {"actors", "gateways"}, "gateways": {"actors"}, "actors": set()}
COMPOSITION_ROOT = "dsmt/cli"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield package, path


@pytest.mark.parametrize("package,path", list(_modules()),
                         ids=lambda v: str(v).replace(str(ROOT), ""))
def test_module_respects_the_import_direction(package, path):
    relative = path.relative_to(ROOT).as_posix()
    if relative.startswith(COMPOSITION_ROOT):
        return
    bad = _imports(path) & FORBIDDEN[package]
    assert not bad, f"{relative} imports {sorted(bad)}, against DESIGN.md §1"


def test_the_import_walker_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import actors.sliver\nfrom gateways.psepr import xml\n")
    assert _imports(sample) >= {"actors", "gateways"}
