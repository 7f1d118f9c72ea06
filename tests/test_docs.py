"""README.md stays short, every relative link of the README and docs/ resolves, and every command's
options in the docs are its current --help (tools/render_docs_help.py)."""

from __future__ import annotations

import importlib.util
import re

from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("render_docs_help", REPO_ROOT / "tools" / "render_docs_help.py")
render_docs_help = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_docs_help)

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_at_most_15000_bytes():
    assert (REPO_ROOT / "README.md").stat().st_size <= 15_000


def test_every_relative_link_resolves_to_a_file():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(REPO_ROOT)}: {target}")
    assert not broken


def test_the_readme_links_every_docs_page():
    readme = (REPO_ROOT / "README.md").read_text()
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in readme, page.name


def test_every_command_has_a_help_block_equal_to_its_current_help():
    blocks = {}
    for page in PAGES:
        for match in render_docs_help.BLOCK.finditer(page.read_text()):
            blocks[match.group("script")] = match.group("body")
    assert set(blocks) == {f"{name}.py" for name in (*render_docs_help.COMMANDS, "train_timbre_generation_vae")}
    for script, body in blocks.items():
        assert body == f"```\n{render_docs_help.help_text(script).rstrip()}\n```\n", \
            f"{script}'s --help changed: run .venv/bin/python tools/render_docs_help.py"
