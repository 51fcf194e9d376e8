"""The house rules, checked on the source: imports point one way, and no circle hides anywhere.

Every import statement counts (module level, inside functions, under ``TYPE_CHECKING``): a lazy
import that closes a circle is still a circle to the reader. Imports inside one top-level
package are allowed by the layer rule; the cycle search and the explicit rules below are what
keep them one-way too.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "voicebot"

# Top to bottom; a module may import only from layers below its own (or from its own package).
LAYERS = [
    {"__main__"},
    {"cli"},
    {"app"},
    {"telegram", "core", "login"},
    {"engine", "state", "llm"},
    {"audio", "storage", "config", "formatting", "logs", "metrics"},
    {"errors", "messages", "__init__"},
]

# (importer prefix, imported prefix): never, even inside one package.
FORBIDDEN = [
    # The core is Telethon-free and knows the engine's interface only.
    ("voicebot.core", "voicebot.engine.local"),
    ("voicebot.core", "voicebot.engine.remote"),
    ("voicebot.core", "voicebot.engine.loader"),
    # The owner's controls, recovery and backfill meet the pipeline through ports.
    ("voicebot.core.controls", "voicebot.core.pipeline"),
    ("voicebot.core.jobs", "voicebot.core.pipeline"),
    ("voicebot.core.backfill", "voicebot.core.pipeline"),
    ("voicebot.core.pipeline", "voicebot.core.controls"),
    ("voicebot.core.pipeline", "voicebot.core.dispatch"),
    ("voicebot.core.pipeline", "voicebot.core.assembly"),
    # The interface is a leaf; only the loader names implementations; they never meet.
    ("voicebot.engine.base", "voicebot.engine.local"),
    ("voicebot.engine.base", "voicebot.engine.remote"),
    ("voicebot.engine.base", "voicebot.engine.loader"),
    ("voicebot.engine.remote", "voicebot.engine.local"),
    ("voicebot.engine.remote", "voicebot.engine.loader"),
    ("voicebot.engine.local", "voicebot.engine.remote"),
    ("voicebot.engine.local", "voicebot.engine.loader"),
]

# The adapter sees plain data, errors and settings; never the core, the engines or the state.
# And the metrics leaf: observability, like logging. Flood waits it sleeps through never reach
# the core, so only the adapter can count them (docs/architecture.md).
TELEGRAM_MAY_IMPORT = {"voicebot", "voicebot.messages", "voicebot.errors", "voicebot.config", "voicebot.metrics"}


def module_name(path: pathlib.Path, package: pathlib.Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str, package: pathlib.Path = PACKAGE) -> bool:
    path = package.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: pathlib.Path, package: pathlib.Path = PACKAGE) -> set[str]:
    """The voicebot modules ``path`` imports, by every import statement in it."""
    module = module_name(path, package)
    home = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = home.split(".")[: len(home.split(".")) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if is_module(candidate, package) else base)
    return {name for name in found if name == "voicebot" or name.startswith("voicebot.")}


def voicebot_imports(package: pathlib.Path = PACKAGE) -> list[tuple[str, str]]:
    """(importer, imported) for every import of a voicebot module by another."""
    return sorted(
        (module_name(path, package), target)
        for path in package.rglob("*.py")
        for target in imports_of(path, package)
        if target != module_name(path, package)
    )


def cycles(edges: list[tuple[str, str]]) -> list[list[str]]:
    """Every import circle, each as one path that closes on itself (depth-first search)."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    found, done, on_path = [], set(), []

    def visit(node: str) -> None:
        if node in on_path:
            found.append(on_path[on_path.index(node) :] + [node])
            return
        if node in done:
            return
        on_path.append(node)
        for target in sorted(graph.get(node, ())):
            visit(target)
        on_path.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
    return found


def top(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def rank(module: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if top(module) in layer)


def test_every_top_level_module_has_a_layer():
    names = {top(module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert names <= set().union(*LAYERS), f"no layer for {names - set().union(*LAYERS)}"


def test_imports_point_down_or_stay_home():
    wrong = [
        f"{module} → {target}"
        for module, target in voicebot_imports()
        if top(module) != top(target) and rank(target) <= rank(module)
    ]
    assert not wrong, "reaches up or sideways:\n" + "\n".join(wrong)


def test_no_import_cycles():
    found = cycles(voicebot_imports())
    assert not found, "import circles:\n" + "\n".join(" → ".join(c) for c in found)


@pytest.mark.parametrize("importer, imported", FORBIDDEN)
def test_forbidden_imports(importer, imported):
    def under(module: str, prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    wrong = [f"{m} → {t}" for m, t in voicebot_imports() if under(m, importer) and under(t, imported)]
    assert not wrong, "\n".join(wrong)


def test_the_adapter_imports_only_data_errors_and_settings():
    wrong = [
        f"{m} → {t}"
        for m, t in voicebot_imports()
        if m.startswith("voicebot.telegram") and not t.startswith("voicebot.telegram") and t not in TELEGRAM_MAY_IMPORT
    ]
    assert not wrong, "\n".join(wrong)


def test_only_the_app_imports_both_the_adapter_and_the_core():
    edges = voicebot_imports()
    both = {m for m, t in edges if top(t) == "telegram"} & {m for m, t in edges if top(t) == "core"}
    assert both == {"voicebot.app"}


def test_the_folder_stays_small():
    top_level = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top_level) <= 12, top_level
    long = {
        str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 450
    }
    assert not long, long


# -- the checks check: each finds what it is for on a tree made to have it ----------------------


def test_cycles_finds_a_lazy_circle_and_not_a_chain():
    assert cycles([("a", "b"), ("b", "c")]) == []
    assert cycles([("a", "b"), ("b", "c"), ("c", "a")]) == [["a", "b", "c", "a"]]


def test_imports_of_counts_lazy_and_type_checking_imports(tmp_path):
    root = tmp_path / "voicebot"
    (root / "core").mkdir(parents=True)
    for name in ("__init__.py", "core/__init__.py", "core/pipeline.py", "messages.py"):
        (root / name).write_text("")
    (root / "core" / "commands.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from ..messages import Sent\n"
        "if TYPE_CHECKING:\n    from .pipeline import Pipeline\n"
        "def later():\n    from voicebot.core import pipeline\n"
    )
    assert imports_of(root / "core" / "commands.py", root) == {"voicebot.messages", "voicebot.core.pipeline"}
