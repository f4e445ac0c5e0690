"""The design rules of the package, checked on its source (ast): one-way imports, one environment
reader, no pickle-based model loading."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "beal_backend"

# lower layers never import higher ones: HTTP -> service -> jobs -> engine -> math
LAYERS = {
    "acquisition": 0, "evaluation": 0, "labelconfig": 0, "promotion": 0, "statuspage": 0, "encoders": 0,
    "model": 1, "batching": 1, "embedding_cache": 1,
    "mc_dropout": 2,
    "scoring": 3,
    "training": 4,
    "store": 5, "features": 5, "labelstudio": 5, "coordination": 5, "config": 5,
    "runtime": 6, "learners": 6,
    "jobs": 7, "simulate": 7,
    "queues": 8,
    "service": 9, "metrics": 9,
    "api": 10,
    "cli": 11, "__main__": 12,
}


def _internal_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("beal_backend."):
            out.add(node.module.split(".")[1])
    return out - {"__init__"}


def test_every_module_has_a_layer():
    modules = {p.stem for p in PKG.glob("*.py")} - {"__init__"}
    assert modules <= set(LAYERS), f"assign a layer to: {modules - set(LAYERS)}"


def test_imports_only_go_down():
    upward = []
    for path in PKG.glob("*.py"):
        if path.stem == "__init__":
            continue
        for target in _internal_imports(path):
            if target in LAYERS and LAYERS[target] >= LAYERS[path.stem]:
                upward.append(f"{path.stem} -> {target}")
    assert upward == []


def test_only_config_reads_the_environment():
    readers = []
    for path in PKG.glob("*.py"):
        src = path.read_text()
        if "os.environ" in src or "os.getenv" in src:
            readers.append(path.stem)
    assert sorted(readers) == ["config"]


def test_no_pickle_based_loading():
    for path in PKG.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "load" and isinstance(node.value, ast.Name):
                assert node.value.id not in ("torch", "pickle", "joblib"), f"{path.name}: {node.value.id}.load"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                assert not any(n and n.split(".")[0] in ("pickle", "joblib", "dill") for n in names), path.name
