"""Write the synthetic demo data set: an audio/ tree in the Semantic Timbre Dataset's layout.

The thesis's command line `python make_demo_audio.py ...`; the command itself is
semantic_timbre/cli/make_demo_audio.py (installed as `semantic-timbre-make-demo-audio`).
"""

import sys

from semantic_timbre.cli import run_main
from semantic_timbre.cli.make_demo_audio import main

if __name__ == "__main__":
    sys.exit(run_main(main))
