"""Plot the trained VAE's latent space: every spectrogram encoded (mu), reduced to 2-D with t-SNE
(or PCA) and scatter-plotted, coloured by descriptor, magnitude or pitch.

The thesis's command line `python visualise_latent_space.py ...`; the command itself is
semantic_timbre/cli/visualise_latent_space.py (installed as `semantic-timbre-visualise`).
"""

import sys

from semantic_timbre.cli import run_main
from semantic_timbre.cli.visualise_latent_space import main

if __name__ == "__main__":
    sys.exit(run_main(main))
