"""Apply a semantic timbre descriptor at a magnitude to your own guitar note.

The note is pre-processed exactly as the data set was (first 0.74 s at 22,050 Hz, mono, dB
spectrogram normalised on its own min and max), encoded (mu), moved along the descriptor's
direction in latent space, decoded, de-normalised with the note's own min and max, inverted with
Griffin-Lim and written as a 24-bit 22,050 Hz WAV file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semantic_timbre import layout
from semantic_timbre.cli import UserError, quiet_tensorflow, run_main


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", metavar="INPUT", help="a mono or stereo note in any format libsndfile reads")
    parser.add_argument("descriptor", metavar="DESCRIPTOR", help=f"one of {', '.join(layout.DESCRIPTORS)}")
    parser.add_argument("magnitude", metavar="MAGNITUDE", type=float,
                        help="0 (clean: no change) to 100 (strongest); magnitudes between the data "
                             "set's interpolate")
    parser.add_argument("-o", "--output", metavar="OUTPUT.wav",
                        help="where to write the result (default: "
                             "singlesample/generated/<input name>_<DESCRIPTOR><MAGNITUDE>.wav)")
    parser.add_argument("--model-dir", default=layout.MODEL_DIR, help="trained model folder (default: model)")
    parser.add_argument("--spectrograms-dir", default=layout.SPECTROGRAMS_DIR,
                        help="processed spectrograms the directions are measured on (default: spectrograms)")
    parser.add_argument("--minmax-dir", default=layout.MINMAX_DIR,
                        help="min/max folder of the processed data (default: minmax); a change to it "
                             "re-measures the cached directions")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of Griffin-Lim's initial phase (default: unseeded, as the thesis)")
    parser.add_argument("--griffin-lim-iters", type=int, default=32, help="Griffin-Lim iterations (default: 32)")
    parser.add_argument("--thesis-inversion", action="store_true",
                        help="invert exactly as the thesis did (512 rows as they are, n_fft 1022)")
    arguments = parser.parse_args(argv)
    if arguments.griffin_lim_iters < 1:
        raise UserError(f"--griffin-lim-iters must be at least 1, got {arguments.griffin_lim_iters}")
    return arguments


def default_output(input_path: Path, descriptor: str, magnitude: float) -> Path:
    return (Path(layout.SINGLE_SAMPLE_DIR) / layout.GENERATED_SUBDIR
            / f"{input_path.stem}_{descriptor}{magnitude:g}.wav")


def read_note(path: Path):
    """Pre-process INPUT as the data set was; one clear error for a missing, unreadable or silent file."""
    import soundfile

    from semantic_timbre import spectrogram

    if not path.is_file():
        raise UserError(f"input note {path} does not exist")
    try:
        info = soundfile.info(str(path))
    except Exception as error:  # libsndfile reports unreadable files as several exception types
        detail = str(error).strip().splitlines()[0].split(": ")[-1] if str(error).strip() else type(error).__name__
        raise UserError(f"cannot read {path} as audio ({detail}): give a WAV, FLAC, AIFF or OGG file") from None
    if info.frames == 0:
        raise UserError(f"input note {path} holds no samples")
    try:
        return spectrogram.note_to_spectrogram(path)
    except spectrogram.SilentNoteError as error:
        raise UserError(f"input note {path} cannot be used: {error}") from None


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    from semantic_timbre.descriptor_control import check_request

    check_request(arguments.descriptor, arguments.magnitude)
    input_path = Path(arguments.input)
    output = Path(arguments.output) if arguments.output else default_output(
        input_path, arguments.descriptor, arguments.magnitude)
    if output.suffix.lower() != ".wav":
        raise UserError(f"the output {output} must end in .wav")

    quiet_tensorflow()
    from semantic_timbre import descriptor_control, processed_data, safe_io, spectrogram

    normalised, low, high = read_note(input_path)
    notes = processed_data.require_spectrograms(arguments.spectrograms_dir)
    present = sorted({note.descriptor for note in notes if not note.is_clean})
    if arguments.descriptor not in present:
        raise descriptor_control.DescriptorRequestError(
            f"the processed data has no notes of {arguments.descriptor} above magnitude 0; choose one of "
            f"{', '.join(present) if present else '(none: only clean notes)'}")
    from semantic_timbre.vae import VAE

    vae = VAE.load(arguments.model_dir)
    directions, computed = descriptor_control.load_or_compute_directions(
        vae, arguments.model_dir, arguments.spectrograms_dir, arguments.minmax_dir)
    cache = Path(arguments.model_dir) / descriptor_control.DIRECTIONS_FILE_NAME
    print(f"{'measured descriptor directions and cached them in' if computed else 'using cached descriptor directions from'} {cache}")
    direction = descriptor_control.direction_at(directions, arguments.descriptor, arguments.magnitude)
    top = max(directions[arguments.descriptor])
    if arguments.magnitude > top:
        print(f"note: the data has {arguments.descriptor} up to magnitude {top}; using that direction")

    decoded = descriptor_control.apply_direction(vae, normalised, direction)
    # De-normalised with the input's own min and max: the model predicts the shape of the
    # spectrogram in [0, 1], and the input's level range is the best estimate of the result's.
    audio = spectrogram.spectrogram_to_audio(decoded, low, high, n_iter=arguments.griffin_lim_iters,
                                             thesis_inversion=arguments.thesis_inversion,
                                             random_state=arguments.seed)
    safe_io.write_wav_atomic(output, audio, spectrogram.SAMPLE_RATE)
    print(f"wrote {output} ({arguments.descriptor} at {arguments.magnitude:g})")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
