"""Generate a note from its description: a descriptor at any magnitude from 0 to 100 on a pitch.

The clean note of the data set at that pitch is encoded and decoded as the description says. A
conditioned model (train_timbre_generation_vae.py --conditioning descriptor or perceptual)
decodes the clean note's code with the description's condition: the one-hot and the magnitude,
or the descriptor's mean timbral features at that magnitude, interpolated between the magnitudes
its training notes held. The thesis's unconditioned model moves the code along the descriptor's
latent direction, as apply_timbre_descriptor.py does. Writes a 24-bit 22,050 Hz WAV file,
singlesample/generated/<DESCRIPTOR><MAGNITUDE>_<PITCH>.wav by default.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semantic_timbre import layout
from semantic_timbre.cli import entry_point
from semantic_timbre.cli.generation_options import add_inversion_options, parse_generation_arguments
from semantic_timbre.pipeline import PICKUP_HELP
from semantic_timbre.runtime.inference import add_model_options
from semantic_timbre.notes import check_output, clean_note


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("descriptor", metavar="DESCRIPTOR", help=f"one of {', '.join(layout.DESCRIPTORS)}")
    parser.add_argument("magnitude", metavar="MAGNITUDE", help="0 (the clean note) to 100 (strongest), e.g. 60")
    parser.add_argument("pitch", metavar="PITCH", help="a note name with a clean note in the data, e.g. A4")
    parser.add_argument("--string", type=int, default=None,
                        help="string (1-6) of the clean note, for a pitch that sits on several strings")
    parser.add_argument("--pickup", metavar="NAME", default=None, help=f"of the clean note: {PICKUP_HELP}")
    parser.add_argument("-o", "--output", metavar="OUT.wav",
                        help="where to write the note (default: "
                             "singlesample/generated/<DESCRIPTOR><MAGNITUDE>_<PITCH>.wav)")
    parser.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    add_model_options(parser)
    add_inversion_options(parser, seed_help="seed of Griffin-Lim's initial phase")
    return parser


def parse_magnitude(text: str) -> float:
    from semantic_timbre.latent.directions import DescriptorRequestError

    try:
        return float(text)
    except ValueError:
        raise DescriptorRequestError(f"magnitude '{text}' is not a number; choose a number from 0 (clean) to "
                                     f"100 (strongest)") from None


def main(argv=None) -> int:
    arguments = parse_generation_arguments(build_parser(), argv)
    from semantic_timbre.network import conditioning
    from semantic_timbre.latent import directions as descriptor_control
    from semantic_timbre import pipeline as generation
    from semantic_timbre.data import processed_data
    from semantic_timbre.network.model_files import check_model_config

    descriptor = layout.canonical_descriptor(arguments.descriptor)
    magnitude = parse_magnitude(arguments.magnitude)
    descriptor_control.check_request(descriptor, magnitude)
    notes = processed_data.require_spectrograms(arguments.spectrograms_dir)
    note = clean_note(notes, arguments.pitch, arguments.string, arguments.spectrograms_dir, arguments.pickup)
    (normalised,), ((low, high),) = generation.load_notes([note], arguments.spectrograms_dir, arguments.minmax_dir)
    config = check_model_config(arguments.model_dir)
    own_condition = None
    if config.conditioned:
        config.conditioning.target(descriptor, magnitude)  # a descriptor it never saw: said now
        own_condition = conditioning.note_conditions(config.conditioning, [note], audio_dir=arguments.audio_dir,
                                                     minmax_dir=arguments.minmax_dir)[0]
    elif magnitude > 0 and descriptor not in {n.descriptor for n in notes if not n.is_clean}:
        present = sorted({n.descriptor for n in notes if not n.is_clean})
        raise descriptor_control.DescriptorRequestError(
            f"the processed data has no notes of {descriptor} above magnitude 0; choose one of "
            f"{', '.join(present) if present else '(none: only clean notes)'}")
    output = Path(arguments.output) if arguments.output else (
        Path(layout.SINGLE_SAMPLE_DIR) / layout.GENERATED_SUBDIR / f"{descriptor}{magnitude:g}_{note.pitch}.wav")
    check_output(output, Path(arguments.spectrograms_dir) / note.spectrogram_name, arguments.overwrite)

    from semantic_timbre import safe_io
    from semantic_timbre.data import spectrogram
    from semantic_timbre.runtime.inference import load_model

    vae = load_model(arguments.model_dir, arguments.runtime, config=config)
    directions = None
    if not config.conditioned:
        directions, _ = descriptor_control.load_or_compute_directions(
            vae, arguments.model_dir, arguments.spectrograms_dir, arguments.minmax_dir)
    decoded = descriptor_control.apply_description(vae, normalised, descriptor, magnitude,
                                                   own_condition=own_condition, directions=directions)
    audio = spectrogram.spectrogram_to_audio(decoded, low, high, n_iter=arguments.griffin_lim_iters,
                                             random_state=arguments.seed)
    safe_io.write_wav_atomic(output, generation.limit_for_writing(audio, output), spectrogram.SAMPLE_RATE)
    how = {"none": "along its latent direction (unconditioned model)", "descriptor": "from the descriptor condition",
           "perceptual": "from the descriptor's timbral features"}[config.conditioning.kind]
    print(f"wrote {output} ({descriptor} at {magnitude:g} on {note.pitch}, {how}, from "
          f"{Path(arguments.spectrograms_dir) / note.spectrogram_name})")
    return 0


run = entry_point(main)  # `semantic-timbre-generate-from-description` (pyproject.toml)
