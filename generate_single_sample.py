"""Generate one note with the trained VAE: encode a note of the data set, decode it and write both
the generated note and the original spectrogram, each inverted to audio.

The thesis's command line `python generate_single_sample.py ...`; the command itself is
semantic_timbre/cli/generate_single_sample.py (installed as `semantic-timbre-generate-sample`).
"""

import sys

from semantic_timbre.cli import run_main
from semantic_timbre.cli.generate_single_sample import main

if __name__ == "__main__":
    sys.exit(run_main(main))
