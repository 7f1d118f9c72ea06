"""pyproject.toml: its dependencies are requirements.txt's, every console entry point resolves to a
command's entry function, and every top-level script calls the same main(argv) as its entry point."""

from __future__ import annotations

import importlib
import re
import tomllib

from conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
SCRIPTS = ("make_demo_audio", "process_audio_into_spectrograms", "timbre_generation_vae",
           "train_timbre_generation_vae", "visualise_latent_space",
           "generate_single_sample", "generate_timbre_interpolation", "evaluate_timbre_generation_vae",
           "apply_timbre_descriptor", "generate_from_description", "explore_timbre_space")


def _requirements(name: str) -> set[str]:
    lines = (REPO_ROOT / name).read_text().splitlines()
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def test_the_dependencies_and_extras_are_exactly_requirements_txt():
    project = PYPROJECT["project"]
    declared = set(project["dependencies"])
    for extra, requirements in project["optional-dependencies"].items():
        if extra != "all":
            declared |= set(requirements)
    assert declared == _requirements("requirements.txt")
    assert set(project["optional-dependencies"]) >= {"train", "inference", "explorer", "perceptual"}


def test_every_entry_point_resolves_and_every_script_has_one():
    targets = PYPROJECT["project"]["scripts"].values()
    for target in targets:
        module_name, function = target.split(":")
        assert callable(getattr(importlib.import_module(module_name), function)), target
    modules = {target.split(":")[0].rsplit(".", 1)[-1] for target in targets}
    assert modules >= set(SCRIPTS)


def test_every_top_level_script_is_a_shim_calling_the_commands_main():
    for name in SCRIPTS:
        script = importlib.import_module(name)
        command = importlib.import_module(f"semantic_timbre.cli.{name}")
        assert script.main is command.main, name
        # parse + call: no logic left at the top level
        assert not re.search(r"^def (?!__getattr__)", (REPO_ROOT / f"{name}.py").read_text(), re.M), name


def test_one_error_root_that_the_library_imports_from_errors_py():
    from semantic_timbre import cli, errors
    from semantic_timbre.network.config import ModelFolderError
    from semantic_timbre.data.processed_data import ProcessedDataError

    assert cli.UserError is errors.UserError  # the old import still works
    assert issubclass(ModelFolderError, errors.UserError) and issubclass(ProcessedDataError, errors.UserError)
    for module in (REPO_ROOT / "semantic_timbre").rglob("*.py"):
        if module.parent.name != "cli":
            assert not re.search(r"from (\.|semantic_timbre\.)cli import .*UserError", module.read_text()), module


def test_no_module_or_script_imports_a_top_level_script():
    """The library and the commands import nothing from the top level; no script imports another."""
    scripts = "|".join(SCRIPTS)
    pattern = re.compile(rf"^\s*(from ({scripts}) import|import ({scripts})\b)", re.M)
    files = [*(REPO_ROOT / "semantic_timbre").rglob("*.py"), *(REPO_ROOT / f"{name}.py" for name in SCRIPTS)]
    offenders = [str(path) for path in files if pattern.search(path.read_text())]
    assert offenders == []


def test_the_explorer_page_is_package_data():
    from semantic_timbre import explorer

    page = explorer.page_template()
    assert page.startswith("<!DOCTYPE html>") and "__MAX_UPLOAD__" in page and page.rstrip().endswith("</html>")
