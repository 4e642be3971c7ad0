"""The package's layers: no module imports from a layer above its own (see injector/__init__.py)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "injector"

# Lowest first; a module may import from its own layer and those below it.
LAYERS = {
    "injector.errors": 0,
    "injector.kube": 1,
    "injector.core": 2,
    "injector.service": 3,
    "injector.manifests": 3,
    "injector.cluster": 3,
    "injector.cli": 4,
    "injector.__main__": 4,
}


def layer(module: str) -> int:
    for prefix, rank in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return rank
    raise AssertionError(f"{module} is in no layer")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            imported |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in imported if name.startswith("injector.")}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_import_climbs_to_a_higher_layer(path: Path) -> None:
    importer = module_name(path)
    for imported in imported_modules(path):
        if imported == "injector":
            continue
        assert layer(imported) <= layer(importer), f"{importer} imports {imported}"


def test_every_subpackage_is_in_a_layer() -> None:
    for path in MODULES:
        layer(module_name(path))
