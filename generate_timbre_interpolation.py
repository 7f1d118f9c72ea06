"""Interpolate between two notes of the data set in the VAE's latent space.

The thesis's command line `python generate_timbre_interpolation.py ...`; the command itself is
semantic_timbre/cli/generate_timbre_interpolation.py (installed as `semantic-timbre-interpolate`).
"""

import sys

from semantic_timbre.cli import run_main
from semantic_timbre.cli.generate_timbre_interpolation import main

if __name__ == "__main__":
    sys.exit(run_main(main))
