"""Turn every note under audio/ into the thesis's spectrogram and its min/max.

The thesis's command line `python process_audio_into_spectrograms.py ...`; the command itself is
semantic_timbre/cli/process_audio_into_spectrograms.py (installed as `semantic-timbre-preprocess`).
"""

import sys

from semantic_timbre.cli import run_main
from semantic_timbre.cli.process_audio_into_spectrograms import main

if __name__ == "__main__":
    sys.exit(run_main(main))
