"""The package shows the pipeline: sub-packages by step, imports running one way
(each step imports only itself and earlier steps), reports never touching the model,
and no import cycles. Read from the source (every import, function-level ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "model"
# Each step may import itself and the steps before it. model.logs and the package's
# own __init__ (its version) import nothing from model, so every step may use them.
STEPS = {"model": 0, "model.logs": 0, "model.case": 1, "model.lp": 2, "model.analysis": 3,
         "model.reports": 4, "model.runs": 5, "model.cli": 6}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def step(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def imports(path: Path) -> set[str]:
    """Every module of model/ this file imports (`from model.x import y` may name a
    module y of package model.x: both are counted when y is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "model"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "model":
            found.add(node.module)
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if (ROOT / (sub.replace(".", "/") + ".py")).exists() or (ROOT / sub.replace(".", "/")).is_dir():
                    found.add(sub)
    return found


def third_party(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
    return out


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_belongs_to_a_step_and_every_step_says_what_it_takes_and_gives():
    for mod in graph():
        assert step(mod) in STEPS, f"{mod} is outside the steps {sorted(STEPS)}"
    for pkg in ("case", "lp", "analysis", "reports", "runs"):
        doc = ast.get_docstring(ast.parse((PACKAGE / pkg / "__init__.py").read_text()))
        assert doc and "takes" in doc.lower() and "gives" in doc.lower(), f"model/{pkg}/__init__.py: what the step takes and gives"


def test_imports_run_one_way_from_each_step_to_earlier_ones():
    backwards = [f"{mod} ({step(mod)}) imports {imp} ({step(imp)})"
                 for mod, imps in graph().items() for imp in imps if STEPS[step(imp)] > STEPS[step(mod)]]
    assert backwards == []


def test_reports_read_tables_only_never_the_model():
    for p in (PACKAGE / "reports").rglob("*.py"):
        touched = {i for i in imports(p) if step(i) == "model.lp"} | (third_party(p) & {"pyomo", "highspy"})
        assert not touched, f"{p.relative_to(ROOT)} imports {sorted(touched)}"


def test_no_import_cycles():
    full = graph()
    # A package's __init__ importing its own modules is how a package is made, not a cycle.
    g = {m: {i for i in imps if i in full and not i.startswith(m + ".")} for m, imps in full.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(g[m]):
            if state.get(n) == 1:
                cycles.append(path[path.index(n):] + [n] if n in path else path + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_citation_names_this_version_and_the_changelog_has_an_unreleased_section():
    import yaml
    from model import __version__
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["version"] == __version__ and cff["cff-version"] == "1.2.0" and cff["title"]
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text()
