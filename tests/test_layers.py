"""The package's layering: data flows one way, no module imports one above it, no import cycles.

Every `import` of a tinyrhythm module is read from the source (module level and inside
functions alike), so an upward import hidden in a function fails here just as one at the
top; then every module is imported in a fresh interpreter in dependency order.
"""

import ast
import subprocess
import sys
from pathlib import Path

import tinyrhythm

ROOT = Path(tinyrhythm.__file__).parent

# Lowest first. A module belongs to the first layer with a prefix that matches it.
LAYERS = [
    ("base", ["tinyrhythm", "tinyrhythm.errors", "tinyrhythm.paths", "tinyrhythm.tasks"]),
    ("datasets", ["tinyrhythm.datasets"]),
    ("windows", ["tinyrhythm.windows", "tinyrhythm.samples"]),
    ("models", ["tinyrhythm.models", "tinyrhythm.checkpoint", "tinyrhythm.zoo"]),
    ("runtime", ["tinyrhythm.runtime", "tinyrhythm.evaluate.metrics", "tinyrhythm.evaluate.scoring"]),
    ("engines", ["tinyrhythm.streaming", "tinyrhythm.onepass", "tinyrhythm.inference"]),
    ("training", ["tinyrhythm.train"]),
    ("compression", ["tinyrhythm.compress"]),
    ("export", ["tinyrhythm.export"]),
    ("analysis", ["tinyrhythm.evaluate", "tinyrhythm.monitor", "tinyrhythm.figures", "tinyrhythm.holter_figures",
                  "tinyrhythm.inspect"]),
    ("reports", ["tinyrhythm.report", "tinyrhythm.demo"]),
    ("cli", ["tinyrhythm.cli", "tinyrhythm.__main__"]),
]


def modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def layer(module: str) -> int:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for pre in prefixes:
            if (module == pre or module.startswith(pre + ".")) and len(pre) > best_len:
                best, best_len = i, len(pre)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def imports(mods: dict[str, Path]) -> list[tuple[str, str, bool, int]]:
    """(importer, imported module, at module level, line) for every tinyrhythm import."""
    edges = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
                if not base.startswith("tinyrhythm"):
                    continue
                for a in node.names:
                    targets.append(f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("tinyrhythm")]
            for t in dict.fromkeys(targets):
                edges.append((name, t, id(node) in top, node.lineno))
    return edges


def test_no_upward_imports():
    mods = modules()
    wrong = [f"{a} (layer {LAYERS[layer(a)][0]}) imports {b} (layer {LAYERS[layer(b)][0]}), line {line}"
             for a, b, _, line in imports(mods) if layer(b) > layer(a)]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for a, b, _, _ in imports(mods):
        if a != b and not a.startswith(b + "."):  # a submodule's `from . import x` reaches its package, not a cycle
            graph[a].add(b)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_every_module_imports_in_dependency_order_in_a_fresh_interpreter():
    order = sorted((m for m in modules() if not m.endswith("__main__")), key=lambda m: (layer(m), m.count("."), m))
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint(len(sys.argv) - 1)"
    proc = subprocess.run([sys.executable, "-c", code, *order], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[-1]) == len(order)
