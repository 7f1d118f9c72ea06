"""Build the timbre VAE of the thesis and print its encoder, decoder and whole-model summaries.

The thesis's command line `python timbre_generation_vae.py ...`; the command itself is
semantic_timbre/cli/timbre_generation_vae.py (installed as `semantic-timbre-summary`).

It is also the thesis's module: `from timbre_generation_vae import VAE` gives the model class, as
the thesis's own training and generation scripts import it (TensorFlow is imported only then).
"""

import sys

from semantic_timbre.cli import run_main
from semantic_timbre.cli.timbre_generation_vae import main


def __getattr__(name):
    """The thesis's module API, imported on first use: VAE (and the two configurations)."""
    if name == "VAE":
        from semantic_timbre.network.vae import VAE

        return VAE
    if name in ("THESIS_CONFIGURATION", "DEMO_CONFIGURATION"):
        from semantic_timbre.network import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(run_main(main))
