"""Notes read for the model outside the data set: a user's own note (read_note: the 0.74 s window
the model reads, aligned at its onset, pre-processed as the data set was), the data set's clean note
of a description (clean_note), and the output checks of the commands that write one note. Shared by
apply_timbre_descriptor.py, generate_from_description.py and the explorer."""

from __future__ import annotations

import sys
from pathlib import Path

from semantic_timbre import layout
from semantic_timbre.errors import UserError

SHORT_NOTE_SECONDS = 0.37  # half of the 0.74 s the thesis reads
SKIP_NOTICE_SECONDS = 0.01  # skips longer than this are reported on stdout
ONSET_SEARCH_SECONDS = 10.0  # the onset is looked for in the first 10 s only: nothing later is decoded


def note_window(path, *, trim: bool = True, native: bool = False):
    """Return (the 0.74 s of INPUT the model reads, mono at 22,050 Hz; the samples skipped before it).

    Only the first seconds are decoded (`spectrogram.read_frames`, the header checked first), so
    a file's length or sample rate cannot make it costly. With `trim`, the silence before the
    note's onset is skipped (a few ms of pre-roll kept), the onset looked for in the first
    ONSET_SEARCH_SECONDS s, and 0.74 s are taken from there, zero-padded at the end. A note that
    starts at once skips nothing and gets exactly the thesis's window; so does every note without
    `trim`: `spectrogram.load_note`.

    With `native`, a third value: the same 0.74 s as the file holds them, mono at its own rate,
    and that rate (what the perceptual features are computed from), as a pair.
    """
    from semantic_timbre.data import onset, spectrogram

    skipped = 0
    if trim:
        head, rate = spectrogram.read_frames(path, ONSET_SEARCH_SECONDS + spectrogram.DURATION_SECONDS + 0.1)
        whole = spectrogram.resample(head, rate) if head.size else head
        search = whole[:int(ONSET_SEARCH_SECONDS * spectrogram.SAMPLE_RATE)]
        skipped = onset.leading_silence(search, sample_rate=spectrogram.SAMPLE_RATE)
    window = spectrogram.pad_or_trim(whole[skipped:], spectrogram.NUM_SAMPLES) if skipped else \
        spectrogram.load_note(path)
    if not native:
        return window, skipped
    own, rate = spectrogram.read_frames(path, spectrogram.DURATION_SECONDS, skipped / spectrogram.SAMPLE_RATE)
    return window, skipped, (spectrogram.pad_or_trim(own, int(rate * spectrogram.DURATION_SECONDS)), rate)


def read_note(path: Path, *, trim: bool = True, native: bool = False):
    """Pre-process INPUT as the data set was, aligned at its onset with `trim` (said on stdout);
    one clear error for a missing, unreadable, damaged, outlandish or silent file. With `native`,
    a fourth value: the window at the file's own rate, (samples, rate) (see `note_window`)."""
    from semantic_timbre.data import spectrogram

    if path.is_dir():
        raise UserError(f"input note {path} is a folder: give one audio file, e.g. {path}/1-0.wav")
    if not path.exists() and not path.is_symlink():
        raise UserError(f"input note {path} does not exist")
    advice = "give a WAV, FLAC, AIFF or OGG file of one note"
    try:
        with spectrogram.open_audio(path) as sound:
            frames, rate = sound.frames, sound.samplerate
        if frames == 0:
            raise UserError(f"input note {path} holds no samples")
        if frames / rate < SHORT_NOTE_SECONDS:
            print(f"warning: {path} lasts only {1000 * frames / rate:.0f} ms (a truncated file?); the model was "
                  f"trained on the first {spectrogram.DURATION_SECONDS} s of whole notes, the rest is silence",
                  file=sys.stderr)
        read = note_window(path, trim=trim, native=native)
    except spectrogram.AudioInputError as error:
        raise UserError(f"input note {path} {error}: {advice}") from None
    window, skipped = read[:2]
    if skipped / spectrogram.SAMPLE_RATE > SKIP_NOTICE_SECONDS:
        print(f"aligned at the onset: skipped {skipped / spectrogram.SAMPLE_RATE:.2f} s of leading silence "
              "(--no-trim for the thesis's exact window)")
    try:
        spectrogram_ = spectrogram.normalise(spectrogram.log_spectrogram(window))
    except spectrogram.SilentNoteError as error:
        raise UserError(f"input note {path} cannot be used: {error}") from None
    return (*spectrogram_, read[2]) if native else spectrogram_


def check_output(output: Path, input_path: Path, overwrite: bool) -> None:
    """Refuse to write over the input note ever, and over any existing file without --overwrite;
    check the output's folder can be written (all before any work)."""
    from semantic_timbre import safe_io

    if output.suffix.lower() != ".wav":
        raise UserError(f"the output {output} must end in .wav")
    if output.is_dir():
        raise UserError(f"the output {output} is a folder: give a file name ending in .wav")
    if output.resolve() == input_path.resolve() or (output.exists() and input_path.exists()
                                                    and output.samefile(input_path)):
        raise UserError(f"the output {output} is the input note itself: it is never written over; "
                        "choose another -o")
    if output.exists() and not overwrite:
        raise UserError(f"the output {output} already exists: add --overwrite to replace it, or choose another -o")
    safe_io.check_writable_folder(output.parent)


def clean_note(notes, pitch: str, string: int | None, spectrograms_dir, pickup: str | None = None):
    """The clean note (magnitude 0) at `pitch` (on `string`, with the pickup variant `pickup`, if
    given); one line listing the pitches (or the pickups) that have one otherwise."""
    from semantic_timbre.pipeline import NoteRequestError, pickups_of, pitch_sort_key

    clean = [note for note in notes if note.is_clean]
    pitches = sorted({note.pitch for note in clean}, key=pitch_sort_key)
    if not clean:
        raise NoteRequestError(f"{spectrograms_dir}/ holds no clean note (magnitude 0) to generate from")
    candidates = [note for note in clean if note.pitch == layout.canonical_pitch(pitch)]
    if not candidates:
        raise NoteRequestError(f"no clean note at pitch '{pitch}' in {spectrograms_dir}/; choose one of "
                               f"{', '.join(pitches)}")
    if string is not None:
        on_string = [note for note in candidates if note.string == string]
        if not on_string:
            raise NoteRequestError(f"no clean {candidates[0].pitch} on string {string}; it is on string(s) "
                                   f"{', '.join(str(s) for s in sorted({n.string for n in candidates}))}")
        candidates = on_string
    if pickup is not None:
        chosen = [note for note in candidates if note.answers_to_pickup(pickup)]
        if not chosen:
            have = ", ".join(name or "(plain: no --pickup)" for name in pickups_of(candidates))
            raise NoteRequestError(f"no clean {candidates[0].pitch} with --pickup {pickup} in {spectrograms_dir}/: "
                                   f"it has {have}")
        candidates = chosen
    # The thesis's string 1 first, then the lowest string number; a plain file name before variants.
    return min(candidates, key=lambda note: (note.string, note.variant, note.spectrogram_name))
