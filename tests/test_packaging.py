"""One import name: the code folders at the top of the repository install as ``synthface.*`` only."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib import metadata

from tests.conftest import ROOT

FOLDERS = ("generator", "pipeline", "trainer", "manifests")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_bare_folder_names_do_not_import_even_from_the_repository_root():
    for folder in FOLDERS:
        run = subprocess.run([sys.executable, "-c", f"import {folder}"], cwd=ROOT, capture_output=True, text=True)
        assert run.returncode != 0
        assert f"import it as synthface.{folder}" in run.stderr.strip().splitlines()[-1], run.stderr
    code = "import synthface.generator, synthface.pipeline, synthface.trainer, synthface.manifests"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_every_folder_is_a_listed_package():
    """The package list is explicit (the folders are mapped), so a new sub-folder must be added to it."""
    tool = _pyproject()["tool"]["setuptools"]
    mapping = tool["package-dir"]
    assert {f"synthface.{f}": f for f in FOLDERS}.items() <= mapping.items()
    found = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found == set(tool["packages"])


def test_every_third_party_import_is_declared():
    declared = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-")
                for d in _pyproject()["project"]["dependencies"]}
    owners = metadata.packages_distributions()
    used = set()
    for folder in ("synthface", *FOLDERS):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    used |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    used.add(node.module.split(".")[0])
    third_party = used - set(sys.stdlib_module_names) - {"synthface", "__future__"}
    missing = {m: owners.get(m) for m in third_party
               if not {d.lower().replace("_", "-") for d in owners.get(m, [m])} & declared}
    assert not missing, f"imported but not in [project] dependencies: {missing}"


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from (f"{node.module}.{a.name}" for a in node.names)  # a module, or a name in one


def test_the_trainer_knows_the_build_side_only_through_the_dataset_format():
    """Other trainers read the same shards: the trainer needs the schema, not the generator or the pipeline."""
    for path in (ROOT / "trainer").rglob("*.py"):
        for name in _imports(path):
            if name.startswith(("synthface.generator", "synthface.pipeline")):
                assert name.startswith("synthface.pipeline.schema"), f"{path.relative_to(ROOT)} imports {name}"

