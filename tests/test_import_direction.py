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


# --------------------------------------------------------------------------- cycles


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Imports under ``if TYPE_CHECKING:`` name a type, they run nothing: not an edge."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skipped.update(id(child) for child in ast.walk(node))
    return skipped


def import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports (anywhere in the file, a function's
    lazy import included: it is still a dependency). ``from pkg import name`` points at
    ``pkg.name`` when that is a module, else at ``pkg``; importing ``pkg.sub`` does not count
    as importing ``pkg`` (Python runs ``pkg/__init__`` first, but that is not a design edge)."""
    files = {_module_name(p): p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skipped = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(0, node.level - 1)):
                    base = base.rpartition(".")[0]
                module = (
                    (f"{base}.{node.module}" if node.module else base)
                    if node.level
                    else (node.module or "")
                )
                candidates = [
                    f"{module}.{alias.name}" if f"{module}.{alias.name}" in files else module
                    for alias in node.names
                ]
            else:
                continue
            for target in candidates:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_cycle_finder_sees_a_cycle() -> None:
    graph = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}
    assert cycles(graph) == [["a.x", "a.y", "a.z"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
