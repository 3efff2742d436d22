"""The layer rule: ``app`` above ``remote`` above ``core``, never an import the other way;
``core`` knows nothing of Qt, HTTP, Azure or keyring, ``remote`` nothing of Qt; inside ``app``
only the CLI imports the CLI; the preprocessing path never loads torch.

Three independent checks: import-linter's contracts (pyproject.toml: one ``layers`` contract
that also follows chains of imports, plus ``forbidden`` contracts for third-party libraries),
an AST scan of every source file (catches lazy imports inside functions and
``importlib.import_module("...")`` too), and a fresh interpreter that imports the
preprocessing path and looks at ``sys.modules``.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

QT = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "qtpy")
FORBIDDEN = {
    "core": QT + ("requests", "urllib3", "httpx", "azure", "azureml", "keyring", "pynetdicom", "remote", "app"),
    "remote": QT + ("app",),
}
# Modules on the preprocessing path: torch must not even be imported at their top level.
TORCH_FREE = ("errors", "capture/metadata", "capture/files", "capture/camera_profiles", "spectral/chain",
              "spectral/rgb", "classes")
# Plain state and generator jobs of the GUI: importable, and tested, with no Qt at all.
QT_FREE_APP = ("app.overlay_state", "app.retraining.state", "app.retraining.runner", "app.retraining.run_snapshot",
               "app.labelling.session")
CONTRACTS = ("layers: app above remote above core", "core is free of Qt, network and cloud libraries",
             "remote is free of Qt", "app state and jobs are free of Qt",
             "core subpackages: each uses only those below it")


def imported_modules(path: Path, *, package: str, top_level_only: bool = False) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` for every import in a source file.

    ``package`` is the file's package (``"core"``) to resolve relative imports.
    Covers ``import x``, ``from x import y``, and ``importlib.import_module("x")`` /
    ``__import__("x")`` with a literal name. With ``top_level_only`` imports inside
    functions and classes are ignored (lazy imports).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = list(ast.walk(tree))
    if top_level_only:  # module level includes if/try blocks, but not def/class bodies
        stack, nodes = list(tree.body), []
        while stack:
            node = stack.pop()
            nodes.append(node)
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.extend(ast.iter_child_nodes(node))
    found: list[tuple[int, str]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            callee = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if callee in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return sorted(found)


def violations(path: Path, forbidden: tuple[str, ...], *, package: str, top_level_only: bool = False) -> list[str]:
    """``"file:line imports name"`` for each import of a forbidden package (or a sub-module of one)."""
    out = []
    for line, name in imported_modules(path, package=package, top_level_only=top_level_only):
        if name.split(".")[0] in forbidden:
            out.append(f"{path}:{line} imports {name}")
    return out


def package_of(path: Path) -> str:
    """``core/sub/x.py`` -> ``core.sub`` (what relative imports in the file are relative to)."""
    return ".".join(path.relative_to(ROOT).parts[:-1])


def test_import_linter_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.is_file(), "import-linter is a test dependency (requirements/test.txt)"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CONTRACTS)} kept, 0 broken" in result.stdout
    for name in CONTRACTS:
        assert f"{name} KEPT" in result.stdout


def test_layers_contract_checks_chains_of_imports_too():
    """One ``layers`` contract, in order, that does not let an indirect import up the layers pass."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    [layers] = [c for c in config["contracts"] if c["name"] == CONTRACTS[0]]
    assert layers["type"] == "layers" and layers["layers"] == ["app", "remote", "core"]
    [qt_free] = [c for c in config["contracts"] if c["name"] == "app state and jobs are free of Qt"]
    assert tuple(qt_free["source_modules"]) == QT_FREE_APP and "PySide6" in qt_free["forbidden_modules"]
    assert not any(c.get("allow_indirect_imports") for c in config["contracts"])
    assert config["include_external_packages"] is True  # the forbidden contracts name third-party packages


def test_only_the_cli_imports_the_cli():
    """``app.cli`` is the entry point above the GUI: a GUI module importing it (even lazily) runs up the layers."""
    problems = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        if path.is_relative_to(ROOT / "app" / "cli"):
            continue
        package = package_of(path)
        problems += [f"{path}:{line} imports {name}" for line, name in imported_modules(path, package=package)
                     if name == "app.cli" or name.startswith("app.cli.")]
    assert problems == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_forbidden_imports_anywhere_in_layer(layer):
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no sources under {layer}/"
    problems = [v for f in files for v in violations(f, FORBIDDEN[layer], package=package_of(f))]
    assert problems == []


def test_preprocessing_path_has_no_top_level_torch_import():
    problems = []
    for name in TORCH_FREE:
        path = ROOT / "core" / (name.replace(".", "/") + ".py")
        assert path.is_file(), path
        problems += violations(path, ("torch",), package=package_of(path), top_level_only=True)
    assert problems == []


def test_preprocessing_path_loads_without_torch_qt_or_network():
    code = (
        "import json, sys\n"
        "import core.capture.files, core.capture.camera_profiles, core.spectral.chain, core.spectral.rgb, core.classes\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = {name.split(".")[0] for name in json.loads(result.stdout)}
    assert "core" in loaded and "numpy" in loaded  # the probe really imported the chain
    assert loaded.isdisjoint({"torch", *QT, "requests", "azure", "keyring", "remote", "app"}), loaded


def test_app_state_and_jobs_import_with_qt_blocked():
    """Beyond the contract (static): the modules really import in an interpreter where Qt cannot load."""
    code = (
        "import json, sys\n"
        "for name in ('PySide6', 'shiboken6', 'pyqtgraph', 'superqt', 'qtpy'):\n"
        "    sys.modules[name] = None  # any import of it raises ImportError\n"
        f"for module in {QT_FREE_APP!r}:\n"
        "    __import__(module)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert set(QT_FREE_APP) <= set(json.loads(result.stdout))


def test_checker_catches_forbidden_imports(tmp_path):
    """The AST check above is not vacuous: it flags each way of importing a forbidden package."""
    bad = tmp_path / "core" / "bad_module.py"
    bad.parent.mkdir()
    bad.write_text(
        "import numpy as np\n"
        "import PySide6.QtCore\n"
        "from requests import Session\n"
        "from ..app import main_window\n"
        "import importlib\n"
        "if True:\n"
        "    import torch\n"
        "def lazy():\n"
        "    import azure.storage.blob\n"
        "    importlib.import_module('keyring')\n"
        "    import torch\n"
        "class Widget:\n"
        "    from pyqtgraph import ImageItem\n"
    )
    flagged = violations(bad, FORBIDDEN["core"], package="core")
    assert [v.split(":")[-1] for v in flagged] == [
        "2 imports PySide6.QtCore",
        "3 imports requests",
        "4 imports app",
        "9 imports azure.storage.blob",
        "10 imports keyring",
        "13 imports pyqtgraph",
    ]
    # torch only counts at module level on the preprocessing path: line 7, not the lazy one on line 11.
    assert [v.split(":")[-1] for v in violations(bad, ("torch",), package="core", top_level_only=True)] == [
        "7 imports torch"
    ]

    good = tmp_path / "core" / "good_module.py"
    good.write_text("import numpy\nfrom core.errors import CaptureError\nfrom . import metadata\nimport tifffile\n")
    assert violations(good, FORBIDDEN["core"], package="core") == []
    # A Qt import is fine in app/ but not in remote/.
    assert violations(bad, FORBIDDEN["remote"], package="remote") and not violations(good, FORBIDDEN["remote"], package="remote")
