"""The package's shape: its modules' imports (at the top or inside functions) form no cycle, and
every import points down the layers, from the command lines to the foundations:

    cli -> explorer -> {evaluation, notes} -> {latent, pipeline, judge, training} -> runtime -> network
        -> data -> {errors, layout, safe_io, backend}

A module may import its own layer's modules only within its own sub-package."""

from __future__ import annotations

import ast

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "semantic_timbre"
LAYERS = (("errors", "layout", "safe_io", "backend"), ("data",), ("network",), ("runtime",),
          ("latent", "pipeline", "judge", "training"), ("notes", "evaluation"), ("explorer",), ("cli",))


def _modules() -> dict[str, ast.Module]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = ast.parse(path.read_text(), str(path))
    return modules


def import_graph() -> dict[str, set[str]]:
    """{module: the package's modules it imports}; `from package import name` counts as the
    sub-module package.name where there is one."""
    modules = _modules()
    graph = {}
    for name, tree in modules.items():
        is_package = (PACKAGE / name.replace(".", "/").removeprefix("semantic_timbre/") / "__init__.py").is_file() \
            if name != "semantic_timbre" else True
        base = name if is_package else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name.startswith("semantic_timbre")}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = base.split(".")
                    source = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if not source.startswith("semantic_timbre"):
                    continue
                for alias in node.names:
                    targets.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> tuple[int, str]:
    top = module.split(".")[1] if module != "semantic_timbre" else ""
    for number, names in enumerate(LAYERS):
        if top in names:
            return number, top
    raise AssertionError(f"{module} is in no layer: add its sub-package to LAYERS")


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    assert _cycles(import_graph()) == []


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in graph.items():
        if module == "semantic_timbre":
            continue
        layer, package = _layer(module)
        for target in targets:
            target_layer, target_package = _layer(target)
            if target_layer > layer or (target_layer == layer and target_package != package):
                wrong.append(f"{module} -> {target}")
    return sorted(wrong)


def test_the_layer_check_finds_an_upward_or_sideways_import():
    graph = {"semantic_timbre.data.spectrogram": {"semantic_timbre.cli.make_demo_audio", "semantic_timbre.layout"},
             "semantic_timbre.judge.features": {"semantic_timbre.training.loop"},
             "semantic_timbre.cli.make_demo_audio": {"semantic_timbre.data.spectrogram"}}
    assert layer_violations(graph) == ["semantic_timbre.data.spectrogram -> semantic_timbre.cli.make_demo_audio",
                                       "semantic_timbre.judge.features -> semantic_timbre.training.loop"]


def test_imports_point_down_the_layers():
    assert layer_violations(import_graph()) == []
