"""Where a note starts in a recording: the leading silence before it, for aligning a user's note
at its onset as the data set's notes are (they start at once).

Plain numpy arrays in and out; nothing here knows about the model or the file layout.
"""

from __future__ import annotations

import librosa
import numpy as np

TOP_DB = 25.0
PRE_ROLL_SECONDS = 0.005
FRAME_LENGTH = 256
HOP_LENGTH = 64


def leading_silence(
    signal: np.ndarray,
    *,
    sample_rate: int,
    top_db: float = TOP_DB,
    pre_roll: float = PRE_ROLL_SECONDS,
    frame_length: int = FRAME_LENGTH,
    hop_length: int = HOP_LENGTH,
) -> int:
    """Return the number of samples of silence (or background noise) before a note starts.

    The note starts at the first frame whose RMS level is within `top_db` decibels of the
    signal's loudest frame (`librosa.effects.trim`'s start index). The level is relative, so
    steady background noise well below the note counts as silence at any recording level: noise
    at -50 dBFS (RMS) under a note peaking at -6 dBFS, and still at -45 dBFS with the default
    `top_db`. `pre_roll` seconds before that start are kept so that the attack is not cut.
    An onset detector (`librosa.onset.onset_detect` with backtracking) is not used: it takes
    the start of the background noise for an onset and finds a note that starts at once tens
    of milliseconds late.

    Parameters
    ----------
    signal : np.ndarray, shape (n,) or (..., n)
        Audio, mono or multi-channel (a frame belongs to the note when any channel is loud
        enough).
    sample_rate : int, keyword-only
        Sample rate of `signal` in Hz (converts `pre_roll` to samples).
    top_db : float > 0, keyword-only
        How far below the loudest frame, in dB, a frame still belongs to the note. Lower is more
        robust to background noise; higher keeps more of a slow swell.
    pre_roll : float >= 0, keyword-only
        Seconds kept before the detected start.
    frame_length, hop_length : int > 0, keyword-only
        RMS frame and hop in samples (the defaults, 11.6 ms and 2.9 ms at 22,050 Hz, find the
        start of a plucked note within a few milliseconds).

    Returns
    -------
    int
        The samples to skip, in ``[0, n]``: those before the note's start less the pre-roll.
        0 for a note that starts at once, and for a signal that is silent throughout (nothing
        to align on).

    Raises
    ------
    ValueError
        For a negative `pre_roll`, a `top_db` that is not positive, or a non-positive rate.

    Examples
    --------
    >>> rate = 22050
    >>> note = np.sin(2 * np.pi * 440 * np.arange(rate) / rate) * np.exp(-3 * np.arange(rate) / rate)
    >>> signal = np.concatenate([np.zeros(2 * rate), note])
    >>> round(leading_silence(signal, sample_rate=rate) / rate, 2)
    1.99
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, not {sample_rate}")
    if not top_db > 0:
        raise ValueError(f"top_db must be positive, not {top_db}")
    if not pre_roll >= 0:
        raise ValueError(f"pre_roll must be 0 or more seconds, not {pre_roll}")
    signal = np.asarray(signal, dtype=np.float32)
    if signal.shape[-1] == 0 or not np.any(signal):
        return 0
    _, (start, _) = librosa.effects.trim(signal, top_db=top_db, frame_length=frame_length,
                                         hop_length=hop_length)
    return int(max(0, int(start) - round(pre_roll * sample_rate)))
