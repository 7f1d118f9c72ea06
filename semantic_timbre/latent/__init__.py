"""Encoding many notes into latent codes, reading their spectrograms in batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semantic_timbre import layout


def encode_notes(vae, notes, spectrograms_dir=layout.SPECTROGRAMS_DIR, batch_size: int = 64, use_mean: bool = True,
                 seed=None, progress: bool = True, conditions=None) -> np.ndarray:
    """Encode the spectrograms of `notes`, reading `batch_size` files at a time.

    Parameters
    ----------
    vae : VAE
        A model with `encode(spectrograms, batch_size, seed) -> (mu, log_variance, z)`.
    notes : sequence of layout.Note
    use_mean : bool
        True (default): return mu; False: return a sampled z.
    seed : int or None
        With `use_mean=False`, makes the samples reproducible (each batch draws from its own
        generator spawned from `seed`).
    progress : bool
        Show a tqdm progress bar.
    conditions : np.ndarray (len(notes), size) or None
        A conditioned model's condition of each note (conditioning.note_conditions).

    Returns
    -------
    codes : np.ndarray, shape (len(notes), latent), float32
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from semantic_timbre.data.processed_data import load_spectrogram

    notes = list(notes)
    folder = Path(spectrograms_dir)
    starts = range(0, len(notes), batch_size)
    batch_seeds = np.random.SeedSequence(seed).spawn(len(starts)) if seed is not None else None

    def read(start: int) -> np.ndarray:
        return np.stack([load_spectrogram(folder / note.spectrogram_name) for note in notes[start:start + batch_size]])

    codes = []
    # One pass over the files, read one batch ahead on a second thread while the model encodes the
    # current one (numpy's file reading and ONNX Runtime both release the GIL): the same batches in
    # the same order, so the same codes.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-spectrograms") as reader, \
            tqdm(total=len(notes), desc="encoding", unit="note", disable=not progress) as bar:
        pending = reader.submit(read, starts[0]) if starts else None
        for index, start in enumerate(starts):
            batch = pending.result()
            if index + 1 < len(starts):
                pending = reader.submit(read, starts[index + 1])
            batch_seed = None if batch_seeds is None else int(batch_seeds[index].generate_state(1)[0])
            batch_conditions = None if conditions is None else conditions[start:start + batch_size]
            mu, _, z = vae.encode(batch, batch_size=batch_size, seed=batch_seed, conditions=batch_conditions)
            codes.append(mu if use_mean else z)
            bar.update(len(batch))
    if not codes:
        return np.zeros((0, vae.latent_space_dimension), np.float32)
    return np.concatenate(codes).astype(np.float32, copy=False)
