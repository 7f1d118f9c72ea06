"""Train the timbre VAE on the spectrograms in spectrograms/ and save it in model/.

With no arguments it trains the thesis's model as the thesis did: learning rate 0.0005, batch 64,
300 epochs, every spectrogram in spectrograms/. Spectrograms are streamed from disk, a
checkpoint is written every epoch and a killed run resumes where it stopped.

The thesis's command line `python train_timbre_generation_vae.py ...`; the command itself is
semantic_timbre/cli/train_timbre_generation_vae.py (installed as `semantic-timbre-train`).
"""

import sys

from semantic_timbre.cli import run_main
from semantic_timbre.cli.train_timbre_generation_vae import main

if __name__ == "__main__":
    sys.exit(run_main(main))
