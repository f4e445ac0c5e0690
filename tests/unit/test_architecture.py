"""The design rules of the package, checked on its source (ast): the folders are the layers and imports go one
way (``ALLOWED``, as the README states it: service -> worker -> engine, simulation -> engine), the engine is pure
compute, one environment reader that never pulls in torch, no pickle-based loading, short modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "beal_backend"

# which top-level parts of the package each part may import (itself always allowed); ``acquisition`` is the
# public, pure-NumPy math of the method (``beal_backend.acquisition.expected_confidence``): a leaf for all
ALLOWED = {
    "acquisition": set(),
    "engine": {"acquisition"},
    "labelstudio": set(),
    "store": {"engine"},
    "worker": {"engine", "store", "labelstudio", "config", "acquisition"},
    "simulation": {"engine", "acquisition"},
    "service": {"worker", "store", "labelstudio", "config", "wiring", "acquisition"},
    "config": {"acquisition"},  # the strategy registry's names (acquisition: pure NumPy, no torch)
    "wiring": {"worker", "engine", "store", "labelstudio", "config"},
    "cli": {"service", "worker", "engine", "store", "labelstudio", "simulation", "config", "wiring", "acquisition"},
    "__main__": {"cli"},
}
# the engine and the simulation are pure compute: no web, queue or Label Studio libraries
FORBIDDEN_LIBS = {
    "engine": {"flask", "redis", "rq", "label_studio_sdk", "requests", "werkzeug"},
    "acquisition": {"flask", "redis", "rq", "label_studio_sdk", "requests", "werkzeug", "torch"},
    "simulation": {"flask", "redis", "rq", "label_studio_sdk", "werkzeug"},
    "store": {"flask", "redis", "rq", "label_studio_sdk"},
}
MAX_LINES = 360


def _modules():
    return [p for p in PKG.rglob("*.py") if p.name != "__init__.py"]


def _part(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> set[str]:
    """Fully qualified names of every module that ``path`` imports (absolute or relative)."""
    out: set[str] = set()
    package = ".".join(("beal_backend", *path.relative_to(PKG).parts[:-1]))
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            mod = ".".join(x for x in (base, node.module) if x)
            out.add(mod)
            out.update(f"{mod}.{alias.name}" for alias in node.names)
    return out


def test_parts_import_only_what_they_may():
    wrong = []
    for path in _modules():
        part = _part(path)
        assert part in ALLOWED, f"{path.relative_to(PKG)}: new top-level part {part!r} needs a rule here"
        for name in _imports(path):
            if name.startswith("beal_backend."):
                target = name.split(".")[1]
                if target in ALLOWED and target != part and target not in ALLOWED[part]:
                    wrong.append(f"{path.relative_to(PKG)} -> {name}")
    assert wrong == []


def test_the_readme_states_these_rules():
    """The README's *Code layout* block lists ``ALLOWED`` exactly, one ``part -> parts`` line each."""
    text = (PKG.parent / "README.md").read_text(encoding="utf-8")
    block = text.split("**Code layout.**", 1)[1].split("```", 2)[1]
    stated = {}
    for line in block.strip().splitlines():
        part, _, targets = line.partition(" -> ")
        stated[part.strip()] = set() if targets.strip() == "nothing" else {t.strip() for t in targets.split(",")}
    assert stated == ALLOWED


def test_engine_is_pure_compute():
    wrong = []
    for path in _modules():
        banned = FORBIDDEN_LIBS.get(_part(path), set())
        wrong += [f"{path.relative_to(PKG)} -> {n}" for n in _imports(path) if n.split(".")[0] in banned]
    assert wrong == []


def test_only_config_reads_the_environment():
    readers = [
        str(p.relative_to(PKG)) for p in _modules() if "os.environ" in p.read_text() or "os.getenv" in p.read_text()
    ]
    assert readers == ["config.py"]


def test_reading_settings_does_not_import_torch():
    code = "import sys, beal_backend.config as c; c.Settings.from_env(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PKG.parent, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_modules_stay_short():
    long = {str(p.relative_to(PKG)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_wiring_builds_the_runtime_the_workers_use(tmp_path) -> None:
    """Workers type ``rt`` as ``worker.runtime.Runtime`` (a Protocol) and never import the wiring that builds it:
    mypy checks this annotated assignment member by member, types included; the loop checks the names when run."""
    from beal_backend.config import Settings
    from beal_backend.wiring import Runtime as Built
    from beal_backend.worker.runtime import Runtime

    rt: Runtime = Built.build(Settings(model_dir=str(tmp_path)))
    members = set(Runtime.__annotations__) | {n for n in vars(Runtime) if not n.startswith("_")}
    assert members >= {"settings", "store", "coordinator", "queue", "client", "webhook_authorization"}
    assert [n for n in sorted(members) if not hasattr(rt, n)] == []


def test_no_pickle_based_loading():
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "load" and isinstance(node.value, ast.Name):
                assert node.value.id not in ("torch", "pickle", "joblib"), f"{path.name}: {node.value.id}.load"
        assert not {n.split(".")[0] for n in _imports(path)} & {"pickle", "joblib", "dill"}, path.name
