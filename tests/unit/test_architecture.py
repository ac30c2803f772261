"""The conventions that keep the code testable, checked on the source itself.

GIVEN the layer package and the test suite, WHEN their syntax trees are read, THEN domain code
takes its collaborators as parameters (it never reads the environment or the process-wide
settings) and no test swaps a module's constant in place of passing a parameter.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "calendly_sync" / "calendly_sync"
#: Where the environment may be read: the typed settings, and the AWS client wiring (region and
#: endpoint, which boto3 itself reads from the environment too).
READS_THE_ENVIRONMENT = {"settings.py", "adapters/aws_clients.py"}


def _modules(root: Path) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(root.rglob("*.py")):
        yield path.relative_to(root).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _environment_reads(tree: ast.Module) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        reads_os = (
            isinstance(node, ast.Attribute)
            and node.attr in {"environ", "getenv"}
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        )
        imports_from_os = (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in {"environ", "getenv"} for alias in node.names)
        )
        if reads_os or imports_from_os:
            lines.append(node.lineno)
    return lines


def _settings_calls(tree: ast.Module) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "get_settings")
            or (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in {"get_settings", "from_environment"}
            )
        )
    ]


def test_no_module_of_the_layer_reads_the_environment_or_the_process_settings() -> None:
    # GIVEN every module of the layer package but the two whose job it is
    offenders: dict[str, list[int]] = {}
    for name, tree in _modules(PACKAGE):
        if name in READS_THE_ENVIRONMENT:
            continue
        # WHEN its code reads os.environ or asks for the settings itself
        found = _environment_reads(tree) + _settings_calls(tree)
        if found:
            offenders[name] = sorted(found)
    # THEN there is none: handlers build settings and pass them in
    assert offenders == {}


def _constant_patches(tree: ast.Module) -> list[int]:
    """``monkeypatch.setattr(module, "NAME", …)`` or ``("pkg.module.NAME", …)`` with an upper-case NAME."""
    lines = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setattr"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "monkeypatch"
        ):
            continue
        names = [
            arg.value for arg in node.args[:2] if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        ]
        if any(name.rsplit(".", 1)[-1].isupper() for name in names):
            lines.append(node.lineno)
    return lines


def test_no_test_swaps_a_module_constant() -> None:
    # GIVEN every test module
    offenders = {name: lines for name, tree in _modules(ROOT / "tests") if (lines := _constant_patches(tree))}
    # THEN none patches an upper-case module attribute: a test passes a parameter instead
    assert offenders == {}
