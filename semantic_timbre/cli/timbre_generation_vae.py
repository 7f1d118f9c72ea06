"""Build the timbre VAE of the thesis and print its encoder, decoder and whole-model summaries.

The model itself lives in semantic_timbre/network/vae.py (class VAE); this script is the thesis's
`python timbre_generation_vae.py`, which builds the thesis's configuration (2,766,017 parameters)
and shows it. Nothing is written.

It is also the thesis's module: `from timbre_generation_vae import VAE` gives the model class, as
the thesis's own training and generation scripts import it (TensorFlow is imported only then).
"""

from __future__ import annotations

import argparse

from semantic_timbre.cli import entry_point, quiet_tensorflow


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(
        description="Build the thesis's timbre VAE and print its summaries (nothing is written).")
    parser.add_argument("--demo", action="store_true",
                        help="show the smaller demo configuration (train_timbre_generation_vae.py --preset demo) "
                             "instead of the thesis's")
    return parser


def main(argv=None) -> int:
    arguments = build_parser().parse_args(argv)
    quiet_tensorflow()
    from semantic_timbre.network import vae as vae_module
    from semantic_timbre.network import config

    configuration = config.DEMO_CONFIGURATION if arguments.demo else config.THESIS_CONFIGURATION
    vae = vae_module.VAE(**configuration)
    vae.summary()
    name = "demo" if arguments.demo else "thesis"
    print(f"{name} configuration: {', '.join(f'{key} {value}' for key, value in configuration.items())}")
    print(f"total parameters: {vae.count_params():,} (encoder {vae.encoder.count_params():,}, "
          f"decoder {vae.decoder.count_params():,})")
    return 0


run = entry_point(main)  # `semantic-timbre-summary` (pyproject.toml)
