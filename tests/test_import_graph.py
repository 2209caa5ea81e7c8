"""Imports between apps go one way (DESIGN.md, "Layout"): front-ends → playback → streaming → library → ops,
with accounts beside the domain apps. An app reaches one above it only by sending a task by name."""

from __future__ import annotations

import ast
from pathlib import Path

APPS_DIR = Path(__file__).resolve().parent.parent / "apps"

# The layer of each app: an app may import apps of a lower layer only. A new app takes its place here
# (the test fails until it does): a domain app above what it builds on, a front-end at the top.
LAYERS: dict[str, int] = {
    "ops": 0,
    "accounts": 1,
    "library": 2,
    "streaming": 3,
    "playback": 4,
    "collections": 5,
    "podcasts": 5,
    "web": 9,
    "subsonic": 9,
}


def imported_apps(path: Path) -> set[tuple[str, int]]:
    """(app, line) for every `apps.<app>` this module imports, by statement or by `import_string(...)`."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        modules: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
            "import_string",
            "import_module",
        ):
            modules = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "apps" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def test_every_app_has_a_layer():
    apps = {p.name for p in APPS_DIR.iterdir() if (p / "__init__.py").exists()}
    assert apps - LAYERS.keys() == set(), "give each new app its place in LAYERS"


def test_imports_between_apps_go_one_way():
    upward = []
    for path in sorted(APPS_DIR.rglob("*.py")):
        app = path.relative_to(APPS_DIR).parts[0]
        for target, line in sorted(imported_apps(path)):
            if target != app and LAYERS[target] >= LAYERS[app]:
                upward.append(f"{path.relative_to(APPS_DIR.parent)}:{line}: {app} imports {target}")
    assert upward == []


def test_the_checker_sees_import_string(tmp_path: Path):
    module = tmp_path / "m.py"
    module.write_text(
        "from django.utils.module_loading import import_string\n"
        "from apps.ops import net\n"
        "def f():\n"
        "    import_string('apps.streaming.services.x')()\n"
    )
    assert imported_apps(module) == {("ops", 2), ("streaming", 4)}
