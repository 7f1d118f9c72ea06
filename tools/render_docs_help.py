"""Render every command's --help into the docs pages, so the options documented cannot drift.

Each block between `<!-- help: SCRIPT.py -->` and `<!-- /help -->` in docs/*.md (and README.md) is
replaced by SCRIPT.py's --help, as its argparse parser formats it (built in this process, no
command is run), 100 columns wide. `--check` changes nothing and exits 1, listing the stale
blocks, when a page is not what rendering would write (tests/test_docs.py does the same).

Usage: python tools/render_docs_help.py [--check]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGES = (REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")))
BLOCK = re.compile(r"(<!-- help: (?P<script>[A-Za-z0-9_]+\.py) -->\n)(?P<body>.*?)(<!-- /help -->)", re.S)
COLUMNS = "100"
# The command modules (semantic_timbre/cli/), each with a build_parser().
COMMANDS = ("make_demo_audio", "process_audio_into_spectrograms", "timbre_generation_vae",
            "train_timbre_generation_vae", "visualise_latent_space",
            "generate_single_sample", "generate_timbre_interpolation", "evaluate_timbre_generation_vae",
            "apply_timbre_descriptor", "generate_from_description", "explore_timbre_space")


@contextlib.contextmanager
def _as_command_line(script: str):
    """argparse's program name (sys.argv[0]) and width (COLUMNS) as `python SCRIPT.py` in a
    100-column terminal."""
    saved_argv, saved_columns = sys.argv[:], os.environ.get("COLUMNS")
    sys.argv[:] = [script]
    os.environ["COLUMNS"] = COLUMNS
    try:
        yield
    finally:
        sys.argv[:] = saved_argv
        if saved_columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved_columns


def help_text(script: str) -> str:
    """SCRIPT.py's --help output."""
    name = Path(script).stem
    with _as_command_line(script):
        if name in COMMANDS:
            parser = importlib.import_module(f"semantic_timbre.cli.{name}").build_parser()
            parser.prog = script
            return parser.format_help()
    raise ValueError(f"no command {script}")


def render(text: str) -> str:
    """`text` with every help block rendered anew."""
    def block(match):
        return f"{match.group(1)}```\n{help_text(match.group('script')).rstrip()}\n```\n{match.group(4)}"
    return BLOCK.sub(block, text)


def stale_pages() -> list[Path]:
    """The pages whose help blocks are not what rendering would write."""
    return [page for page in PAGES if render(page.read_text()) != page.read_text()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page is out of date")
    arguments = parser.parse_args(argv)
    if arguments.check:
        stale = stale_pages()
        for page in stale:
            print(f"{page.relative_to(REPO_ROOT)}: a --help block is out of date: run python tools/render_docs_help.py")
        return 1 if stale else 0
    for page in PAGES:
        text = page.read_text()
        rendered = render(text)
        if rendered != text:
            page.write_text(rendered)
            print(f"rendered {page.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
