"""Generate a note from its description: a descriptor at any magnitude from 0 to 100 on a pitch.

The thesis's command line `python generate_from_description.py ...`; the command itself is
semantic_timbre/cli/generate_from_description.py (installed as `semantic-timbre-generate-from-description`).
"""

import sys

from semantic_timbre.cli import run_main
from semantic_timbre.cli.generate_from_description import main

if __name__ == "__main__":
    sys.exit(run_main(main))
