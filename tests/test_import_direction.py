"""Imports point one way: certs <- router <- web <- addons. Walks every module's AST."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["certs", "router", "web", "addons"]
# What each layer may import from the project (itself and the layers before it).
ALLOWED = {layer: set(LAYERS[: i + 1]) for i, layer in enumerate(LAYERS)}
# The core stays free of the edges' frameworks.
FORBIDDEN_THIRD_PARTY = {
    "router": {"mitmproxy", "aiohttp.web"},
    "certs": {"mitmproxy", "aiohttp"},
    "web": {"mitmproxy"},
}


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_imports_point_one_way() -> None:
    wrong: list[str] = []
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            for name in imported_modules(path):
                top = name.split(".")[0]
                if top in LAYERS and top not in ALLOWED[layer]:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
                for banned in FORBIDDEN_THIRD_PARTY.get(layer, ()):
                    if name == banned or name.startswith(banned + "."):
                        wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "imports against certs <- router <- web <- addons:\n" + "\n".join(wrong)


def test_checker_sees_a_wrong_arrow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from addons.main import cli\nimport aiohttp.web\n")
    assert "addons.main" in imported_modules(bad)
    assert "aiohttp.web" in imported_modules(bad)
