"""Measure a trained timbre VAE: reconstruction quality on held-out notes, the latent-space
study's metrics, a cross-validated descriptor classifier, descriptor-transfer recognition and
how often an independent audio-domain judge recognises the intended descriptor in generated notes.

The thesis's command line `python evaluate_timbre_generation_vae.py ...`; the command itself is
semantic_timbre/cli/evaluate_timbre_generation_vae.py (installed as `semantic-timbre-evaluate`).
"""

import sys

from semantic_timbre.cli import run_main
from semantic_timbre.cli.evaluate_timbre_generation_vae import main

if __name__ == "__main__":
    sys.exit(run_main(main))
