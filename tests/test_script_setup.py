"""scripts/script_setup.py puts this checkout's `qa` ahead of any installed copy, and
every script that imports `qa` imports it first."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"


def test_a_script_imports_this_checkouts_qa_without_pythonpath(tmp_path):
    # As `python scripts/x.py` from another folder: scripts/ first on sys.path, no
    # PYTHONPATH (the venv's installed qa may be another checkout's).
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import script_setup, qa; "
            "print(qa.__file__)")
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    shown = subprocess.run([sys.executable, "-c", code, str(SCRIPTS)], cwd=tmp_path,
                           env=environment, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert Path(shown.stdout.strip()) == REPO / "qa" / "__init__.py"


def _imported(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


def test_every_script_that_uses_qa_imports_script_setup_first():
    late = []
    for script in sorted(SCRIPTS.glob("*.py")):
        if script.name == "script_setup.py":
            continue
        names = [(node.lineno, name) for node in ast.walk(ast.parse(script.read_text()))
                 if isinstance(node, ast.stmt) for name in _imported(node)]
        ours = [line for line, name in names if name.split(".")[0] in ("qa", "tests")]
        setup = [line for line, name in names if name == "script_setup"]
        if ours and (not setup or min(setup) > min(ours)):
            late.append(script.name)
    assert late == []
