"""Apply a semantic timbre descriptor at a magnitude to your own guitar note.

The thesis's command line `python apply_timbre_descriptor.py ...`; the command itself is
semantic_timbre/cli/apply_timbre_descriptor.py (installed as `semantic-timbre-apply-descriptor`).
"""

import sys

from semantic_timbre.cli import run_main
from semantic_timbre.cli.apply_timbre_descriptor import main

if __name__ == "__main__":
    sys.exit(run_main(main))
