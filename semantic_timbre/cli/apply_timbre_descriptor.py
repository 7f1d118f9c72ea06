"""Apply a semantic timbre descriptor at a magnitude to your own guitar note.

The note is aligned at its onset (leading silence skipped; --no-trim for the thesis's exact
window), pre-processed as the data set was (0.74 s at 22,050 Hz, mono, dB spectrogram normalised
on its own min and max), encoded (mu), moved along the descriptor's direction in latent space,
decoded, de-normalised with the note's own min and max, inverted with Griffin-Lim and written as
a 24-bit 22,050 Hz WAV file. A conditioned model instead encodes the note with its own condition
(descriptor: a clean note's; perceptual: the note's timbral features) and decodes it with the
description's. It never writes over the input note, and writes over another
existing file only with --overwrite.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semantic_timbre import layout
from semantic_timbre.cli import entry_point
from semantic_timbre.cli.generation_options import add_inversion_options, parse_generation_arguments
from semantic_timbre.runtime.inference import add_model_options
from semantic_timbre.network.config import ModelFolderError
from semantic_timbre.network.model_files import check_model_config
from semantic_timbre.notes import check_output, read_note


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", metavar="INPUT", help="a mono or stereo note in any format libsndfile reads")
    parser.add_argument("descriptor", metavar="DESCRIPTOR", help=f"one of {', '.join(layout.DESCRIPTORS)}")
    parser.add_argument("magnitude", metavar="MAGNITUDE", type=float,
                        help="0 (clean: no change) to 100 (strongest); magnitudes between the data "
                             "set's interpolate")
    parser.add_argument("-o", "--output", metavar="OUTPUT.wav",
                        help="where to write the result (default: "
                             "singlesample/generated/<input name>_<DESCRIPTOR><MAGNITUDE>.wav)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUTPUT if it exists (the input note itself is never replaced)")
    add_model_options(parser,
                      spectrograms_help="processed spectrograms the directions are measured on (default: spectrograms)",
                      minmax_help="min/max folder of the processed data (default: minmax); a change to it "
                                  "re-measures the cached directions", audio_help=None)
    add_inversion_options(parser, seed_help="seed of Griffin-Lim's initial phase (default: unseeded, as the thesis)",
                          thesis_inversion_help="invert exactly as the thesis did (512 rows as they are, n_fft 1022)")
    parser.add_argument("--no-trim", action="store_true",
                        help="read the first 0.74 s of INPUT as the thesis did, leading silence included "
                             "(default: skip the silence before the note's onset)")
    return parser


def default_output(input_path: Path, descriptor: str, magnitude: float) -> Path:
    return (Path(layout.SINGLE_SAMPLE_DIR) / layout.GENERATED_SUBDIR
            / f"{input_path.stem}_{descriptor}{magnitude:g}.wav")


def conditioned_model_applies(arguments, input_path, normalised, config, native_window):
    """The note decoded with the description's condition by a conditioned model (its own condition:
    a clean note's for a descriptor model, for a perceptual one the timbral features of the 0.74 s
    the model encodes, `native_window` = (samples at the file's rate, rate)); `config`: the model
    folder's, checked already."""
    from semantic_timbre.latent import directions as descriptor_control

    conditioning = config.conditioning

    conditioning.target(arguments.descriptor, arguments.magnitude)  # a descriptor it never saw: said first
    if conditioning.kind == "descriptor":
        own = conditioning.of_descriptors([""], [0])[0]
    else:
        from semantic_timbre.data.perceptual import window_features

        own = conditioning.of_features(window_features(*native_window, name=input_path))[0]
    from semantic_timbre.runtime.inference import load_model

    vae = load_model(arguments.model_dir, arguments.runtime, config=config)
    print(f"generating from the description with the {conditioning.kind}-conditioned model")
    return descriptor_control.apply_description(vae, normalised, arguments.descriptor, arguments.magnitude,
                                                own_condition=own)


def direction_applies(arguments, normalised, config):
    """The note moved along the descriptor's latent direction (the unconditioned model; `config`:
    the model folder's, checked already)."""
    from semantic_timbre.latent import directions as descriptor_control
    from semantic_timbre.data import processed_data

    notes = processed_data.require_spectrograms(arguments.spectrograms_dir)
    present = sorted({note.descriptor for note in notes if not note.is_clean})
    if arguments.descriptor not in present:
        raise descriptor_control.DescriptorRequestError(
            f"the processed data has no notes of {arguments.descriptor} above magnitude 0; choose one of "
            f"{', '.join(present) if present else '(none: only clean notes)'}")
    from semantic_timbre.runtime.inference import load_model

    vae = load_model(arguments.model_dir, arguments.runtime, config=config)
    directions, computed = descriptor_control.load_or_compute_directions(
        vae, arguments.model_dir, arguments.spectrograms_dir, arguments.minmax_dir)
    cache = Path(arguments.model_dir) / descriptor_control.DIRECTIONS_FILE_NAME
    if not computed:
        print(f"using cached descriptor directions from {cache}")
    elif cache.is_file():  # (not when the model folder is read-only: a notice said so)
        print(f"measured descriptor directions and cached them in {cache}")
    top = max(directions[arguments.descriptor])
    if arguments.magnitude > top:
        print(f"note: the data has {arguments.descriptor} up to magnitude {top}; using that direction")
    return descriptor_control.apply_description(vae, normalised, arguments.descriptor, arguments.magnitude,
                                                directions=directions)


def main(argv=None) -> int:
    arguments = parse_generation_arguments(build_parser(), argv)
    from semantic_timbre.latent.directions import check_request

    arguments.descriptor = layout.canonical_descriptor(arguments.descriptor)
    check_request(arguments.descriptor, arguments.magnitude)
    input_path = Path(arguments.input)
    output = Path(arguments.output) if arguments.output else default_output(
        input_path, arguments.descriptor, arguments.magnitude)
    check_output(output, input_path, arguments.overwrite)

    from semantic_timbre import safe_io
    from semantic_timbre.data import spectrogram

    normalised, low, high, native_window = read_note(input_path, trim=not arguments.no_trim, native=True)
    try:
        config = check_model_config(arguments.model_dir)
    except ModelFolderError:
        from semantic_timbre.data import processed_data

        processed_data.require_spectrograms(arguments.spectrograms_dir)  # the first step missing is named first
        raise
    if config.conditioned:
        decoded = conditioned_model_applies(arguments, input_path, normalised, config, native_window)
    else:
        decoded = direction_applies(arguments, normalised, config)
    # De-normalised with the input's own min and max: the model predicts the shape of the
    # spectrogram in [0, 1], and the input's level range is the best estimate of the result's.
    audio = spectrogram.spectrogram_to_audio(decoded, low, high, n_iter=arguments.griffin_lim_iters,
                                             thesis_inversion=arguments.thesis_inversion,
                                             random_state=arguments.seed)
    from semantic_timbre.pipeline import limit_for_writing

    safe_io.write_wav_atomic(output, limit_for_writing(audio, output), spectrogram.SAMPLE_RATE)
    print(f"wrote {output} ({arguments.descriptor} at {arguments.magnitude:g})")
    return 0


run = entry_point(main)  # `semantic-timbre-apply-descriptor` (pyproject.toml)
