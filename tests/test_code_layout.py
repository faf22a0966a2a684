"""Meta-tests: the core, the server and the CLI read as their concepts, a few hundred lines a
module, with no import cycles."""

from __future__ import annotations

import ast
import inspect
from collections import Counter
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent
CORE = ROOT / "registry"
PACKAGES = [CORE, ROOT / "server", ROOT / "tool"]
MAX_LINES = 400


def module_name(path: Path, root: Path = CORE) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_modules(root: Path = CORE) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The core modules `path` imports: at the top, inside functions, under TYPE_CHECKING alike."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # `from registry import artifacts` imports a module; `from registry import X` a name.
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def import_graph(root: Path = CORE) -> dict[str, set[str]]:
    modules = core_modules(root)
    return {name: imported_modules(path, name, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return list(exc.args[1])
    return None


def long_modules(root: Path = CORE, limit: int = MAX_LINES) -> dict[str, int]:
    lengths = {
        str(p.relative_to(root)): len(p.read_text().splitlines()) for p in root.rglob("*.py")
    }
    return {path: n for path, n in sorted(lengths.items()) if n > limit}


@pytest.mark.parametrize("root", PACKAGES, ids=[p.name for p in PACKAGES])
def test_modules_import_each_other_without_a_cycle(root: Path) -> None:
    cycle = find_cycle(import_graph(root))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("root", PACKAGES, ids=[p.name for p in PACKAGES])
def test_no_module_is_over_400_lines(root: Path) -> None:
    too_long = long_modules(root)
    assert too_long == {}, f"split these modules (over {MAX_LINES} lines): {too_long}"


def test_the_server_runtime_does_not_know_litestar() -> None:
    """The runtime is what every protocol calls; HTTP adapts to it, never the other way."""
    graph = import_graph(ROOT / "server")
    runtime = [m for m in graph if m.startswith("server.runtime")]
    assert runtime, "server/runtime/ is gone"
    for name in runtime:
        source = (ROOT / Path(*name.split("."))).with_suffix(".py")
        if not source.exists():
            source = ROOT / Path(*name.split(".")) / "__init__.py"
        text = source.read_text()
        assert "from litestar" not in text and "import litestar" not in text, name
        assert not {
            m for m in graph[name] if not m.startswith(("server.runtime", "server.usage"))
        }, name


def test_the_server_imports_no_private_litestar_module() -> None:
    for path in (ROOT / "server").rglob("*.py"):
        assert "litestar._" not in path.read_text(), path


def test_no_guard_or_dependency_hops_to_the_thread_pool(tmp_path: Path) -> None:
    """Litestar runs a sync guard, or a sync dependency without `sync_to_thread=False`, in its
    thread pool: a thread hop on every request it guards (the invoke path paid two)."""
    from litestar.utils.sync import AsyncCallable

    from registry import Registry
    from server import create_app

    app = create_app(Registry.init(tmp_path / "reg"))
    hops = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for guard in handler.resolve_guards():
                if isinstance(guard, AsyncCallable):
                    hops.append(f"{route.path}: guard {guard.func.__qualname__}")
            for key, provide in handler.resolve_dependencies().items():
                if isinstance(provide.dependency, AsyncCallable):
                    hops.append(f"{route.path}: dependency {key}")
    assert any(route.path == "/v2/models/{name:str}/infer" for route in app.routes)
    assert not hops, hops


def _parameters(fn: Any) -> set[str]:
    return set(inspect.signature(getattr(fn, "func", fn)).parameters)


def _depths(handler: Any) -> Counter[int]:
    """How many of the dependencies a handler uses stand at each depth of its graph."""
    deps = handler.resolve_dependencies()
    depth: dict[str, int] = {}

    def depth_of(key: str) -> int:
        if key not in depth:
            subs = _parameters(deps[key].dependency) & set(deps)
            depth[key] = 1 + max((depth_of(s) for s in subs), default=0)
        return depth[key]

    used: set[str] = set()
    todo = list(_parameters(handler.fn) & set(deps))
    while todo:
        key = todo.pop()
        if key not in used:
            used.add(key)
            todo.extend(_parameters(deps[key].dependency) & set(deps))
    return Counter(depth_of(key) for key in used)


def test_every_handler_resolves_its_dependencies_one_by_one(tmp_path: Path) -> None:
    """Dependencies of the same depth Litestar resolves in an anyio task group, one task each
    (they cost more than the dependencies): the server's form one chain instead."""
    from registry import Registry
    from server import create_app

    app = create_app(Registry.init(tmp_path / "reg"))
    side_by_side = [
        f"{sorted(handler.http_methods)} {route.path}"
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if any(n > 1 for n in _depths(handler).values())
    ]
    assert not side_by_side, side_by_side


def test_the_writes_and_the_engine_do_not_reach_back_into_registry_py() -> None:
    graph = import_graph()
    for name in ("registry.commits", "registry.artifacts", "registry.history", "registry.base"):
        assert "registry.registry" not in graph[name], name
    writers = [m for m in graph if m.startswith("registry.writes.")]
    assert writers, "registry/writes/ is gone"
    for name in writers:
        assert "registry.registry" not in graph[name], name


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize(
    "files",
    [
        # at the top of both modules
        {"a.py": "from registry import b\n", "b.py": "import registry.a\n"},
        # one side only inside a function, the other under TYPE_CHECKING
        {
            "a.py": "def f():\n    from registry.b import g\n",
            "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from registry.a import f\n",
        },
        # through a subpackage, with a relative import
        {"a.py": "from registry.sub.c import x\n", "sub/c.py": "from ..a import y\n"},
    ],
    ids=["top-level", "function-and-type-checking", "relative"],
)
def test_the_cycle_check_sees_every_kind_of_import(tmp_path: Path, files: dict[str, str]) -> None:
    root = write(tmp_path / "registry", {"__init__.py": "", **files})
    cycle = find_cycle(import_graph(root))
    assert cycle is not None and "registry.a" in cycle


def test_the_cycle_check_passes_a_one_way_import(tmp_path: Path) -> None:
    root = write(
        tmp_path / "registry",
        {"__init__.py": "", "a.py": "from registry import b\n", "b.py": "import os\n"},
    )
    assert find_cycle(import_graph(root)) is None
    assert import_graph(root)["registry.a"] == {"registry.b"}


def test_the_length_check_counts_lines(tmp_path: Path) -> None:
    root = write(tmp_path / "registry", {"short.py": "x = 1\n" * 400, "long.py": "x = 1\n" * 401})
    assert long_modules(root) == {"long.py": 401}
