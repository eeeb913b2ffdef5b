"""The house's seams: no import cycle among tritonsym's modules (lazy imports inside
functions count: they hide a cycle, they do not remove it), and no module reads another
module's underscore names; ``ops/`` imports torch and triton only, never tritonsym; every
package is listed for installation."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tritonsym"


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: pathlib.Path, modules: dict[str, pathlib.Path]):
    """(module imported, names taken from it) for every import of a tritonsym module in
    ``path``, at any depth (a function's lazy import included)."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    for block in ast.walk(tree):  # imports for type annotations only are no dependency at run time
        if isinstance(block, ast.If) and getattr(block.test, "id", None) == "TYPE_CHECKING":
            block.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("tritonsym"):
                continue
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:  # "from . import metric": the module itself
                    yield f"{target}.{alias.name}", []
                else:
                    yield target, [alias.name]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tritonsym"):
                    yield alias.name, []


def test_no_import_cycle_between_modules():
    modules = _modules()
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}
    edges = {name: set() for name in modules if name not in packages}
    for name in edges:
        for target, _ in _imports(modules[name], modules):
            if target in edges and target != name:
                edges[name].add(target)
    cycles, state = [], {}

    def visit(name, trail):
        state[name] = "open"
        for target in sorted(edges[name]):
            if state.get(target) == "open":
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_reads_another_modules_private_names():
    modules = _modules()
    readers = []
    for name, path in modules.items():
        for target, names in _imports(path, modules):
            same_package = target.rsplit(".", 1)[0] == name.rsplit(".", 1)[0] and path.name != "__init__.py"
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != name and not (target.endswith("._common") and same_package):
                readers.append(f"{name} imports {', '.join(private)} from {target}")
    assert not readers, "; ".join(readers)


def test_ops_never_imports_tritonsym():
    for path in (ROOT / "ops").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("tritonsym"):
                raise AssertionError(f"{path.name} imports {node.module}")
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                raise AssertionError(f"{path.name} imports from outside ops/ (level {node.level})")


def test_every_package_is_installed_by_a_plain_pip_install():
    """pyproject.toml lists the packages one by one (ops/ installs as tritonsym.ops): a folder
    left out would be missing from a wheel, though an editable install still finds it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])

    def packages(folder: pathlib.Path, name: str) -> set[str]:
        return {".".join([name, *p.parent.relative_to(folder).parts]) for p in folder.rglob("__init__.py")}

    found = packages(PACKAGE, "tritonsym") | packages(ROOT / "ops", "tritonsym.ops")
    assert found <= listed, f"not in pyproject.toml's packages: {sorted(found - listed)}"
