"""Explore the trained VAE's timbre space by ear: a local web page with the latent map (click a
note to hear it and its reconstruction), generation from a description, interpolation between two
notes, and a descriptor applied to your own note; every result downloadable as a WAV.

The thesis's command line `python explore_timbre_space.py ...`; the command itself is
semantic_timbre/cli/explore_timbre_space.py (installed as `semantic-timbre-explore`).
"""

import sys

from semantic_timbre.cli import run_main
from semantic_timbre.cli.explore_timbre_space import main

if __name__ == "__main__":
    sys.exit(run_main(main))
