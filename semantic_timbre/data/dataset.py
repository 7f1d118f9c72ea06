"""Streaming spectrograms from disk with tf.data, for training.

The thesis loaded every spectrogram into memory at once (about 36 GB for the full release).
Here only the list of file names is held; each epoch shuffles the names, reads the files in
parallel, batches and prefetches, so memory does not grow with the number of spectrograms.
Every file's .npy header is checked before training, so a wrong file is reported at the start
instead of in the middle of an epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semantic_timbre import layout
from semantic_timbre.data.processed_data import ProcessedDataError, require_spectrograms
from semantic_timbre.data.spectrogram import SPECTROGRAM_SHAPE


@dataclass(frozen=True)
class NpyLayout:
    """Where and how a .npy file stores its array."""

    shape: tuple
    dtype: np.dtype
    fortran_order: bool
    data_offset: int


def read_npy_layout(path: str | Path) -> NpyLayout:
    """Read only the header of a .npy file.

    Raises
    ------
    ProcessedDataError
        If the file is not a readable .npy file, or is shorter than its header says.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
            else:  # version 3.0 (utf-8 field names) has no public reader
                shape, fortran_order, dtype = np.lib.format._read_array_header(handle, version)
            data_offset = handle.tell()
    except (OSError, ValueError, EOFError) as error:
        raise ProcessedDataError(f"spectrogram {path} is not a readable .npy file ({error}): delete it "
                                 "and re-run the pre-processor") from None
    if dtype.hasobject:
        raise ProcessedDataError(f"spectrogram {path} holds Python objects, not numbers: delete it and "
                                 "re-run the pre-processor")
    expected_size = data_offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual_size = path.stat().st_size
    if actual_size < expected_size:
        raise ProcessedDataError(f"spectrogram {path} is truncated ({actual_size} bytes, its header "
                                 f"needs {expected_size}): delete it and re-run the pre-processor")
    return NpyLayout(tuple(shape), dtype, bool(fortran_order), data_offset)


def check_spectrogram_files(paths, shape=SPECTROGRAM_SHAPE) -> list[NpyLayout]:
    """Check the header of every spectrogram file (shape, numeric dtype, size) without reading its data.

    Returns
    -------
    list of NpyLayout, one per path.

    Raises
    ------
    ProcessedDataError
        Naming the first file of the wrong shape or form, and its shape.
    """
    layouts = []
    for path in paths:
        npy = read_npy_layout(path)
        if npy.shape != tuple(shape):
            raise ProcessedDataError(f"spectrogram {path} has shape {npy.shape}, expected {tuple(shape)}: "
                                     "delete it and re-run the pre-processor")
        if npy.dtype.kind not in "fiu":
            raise ProcessedDataError(f"spectrogram {path} holds {npy.dtype} values, expected float32: "
                                     "delete it and re-run the pre-processor")
        layouts.append(npy)
    return layouts


def spectrogram_files(spectrograms_dir: str | Path = layout.SPECTROGRAMS_DIR) -> list[Path]:
    """Return the paths of every spectrogram in `spectrograms_dir`, sorted, with headers checked.

    Raises
    ------
    ProcessedDataError
        If the folder is missing or empty (naming the pre-processor), or a file has the wrong shape.
    """
    folder = Path(spectrograms_dir)
    paths = [folder / note.spectrogram_name for note in require_spectrograms(folder)]
    check_spectrogram_files(paths)
    return paths


def split_validation(paths, fraction: float, seed: int = 0) -> tuple[list, list]:
    """Split file paths into (training, validation) at random (reproducible with `seed`).

    A fraction of 0 gives no validation files; any positive fraction gives at least one, and at
    least one file is always left for training.
    """
    paths = list(paths)
    if not 0 <= fraction < 1:
        raise ValueError(f"the validation fraction must be in [0, 1), got {fraction}")
    if fraction == 0:
        return paths, []
    count = min(max(1, int(round(fraction * len(paths)))), len(paths) - 1)
    if count < 1:
        raise ProcessedDataError(f"a validation split needs at least 2 spectrograms, found {len(paths)}")
    order = np.random.default_rng(seed).permutation(len(paths))
    validation = sorted(order[len(paths) - count:])
    training = sorted(order[: len(paths) - count])
    return [paths[i] for i in training], [paths[i] for i in validation]


def _all_plain_float32(layouts) -> bool:
    return all(npy.dtype == np.dtype("<f4") and not npy.fortran_order for npy in layouts)


def _decoder(layouts, shape):
    """Return a tf function (path, offset) -> float32 tensor of `shape`."""
    import tensorflow as tf

    if _all_plain_float32(layouts):
        nbytes = int(np.prod(shape)) * 4

        def decode(path, offset):
            raw = tf.strings.substr(tf.io.read_file(path), offset, nbytes)
            return tf.reshape(tf.io.decode_raw(raw, tf.float32, little_endian=True), shape)

        return decode

    # Any other numeric .npy (float64, big-endian, Fortran order): numpy reads it.
    def load(path):
        return np.load(path.decode(), allow_pickle=False).astype(np.float32).reshape(shape)

    def decode(path, offset):
        array = tf.numpy_function(load, [path], tf.float32, stateful=False)
        return tf.ensure_shape(array, shape)

    return decode


def spectrogram_dataset(paths, batch_size: int, shuffle: bool = True, seed: int = 0, first_epoch: int = 0,
                        repeat: bool = True, shard: tuple[int, int] | None = None, layouts=None,
                        shape=SPECTROGRAM_SHAPE, conditions=None):
    """A tf.data pipeline of spectrogram batches of shape (B, 512, 64, 1), float32, read from disk
    (with `conditions`: (spectrograms, conditions) batches, each file with its row).

    Parameters
    ----------
    paths : list of str or Path
        Spectrogram .npy files.
    batch_size : int
    shuffle : bool
        Shuffle the file names each epoch. Epoch e's order depends only on (seed, e), so a
        resumed run sees the same orders as an uninterrupted one.
    seed : int
    first_epoch : int
        Index of the first epoch the stream starts with (for resuming).
    repeat : bool
        True: an endless stream of epochs, each ending with its own (possibly smaller) last
        batch (use with steps_per_epoch = ceil(len(paths) / batch_size)). False: one epoch.
    shard : (count, index) or None
        Keep only every count-th file of each epoch's order, starting at index (one input
        pipeline per worker under multi-worker training).
    layouts : list of NpyLayout or None
        The files' headers, as returned by check_spectrogram_files (read here when None).
    conditions : np.ndarray (len(paths), size) or None
        A conditioned model's condition of each file.

    Values are not checked for NaN here (see find_non_finite).
    """
    import tensorflow as tf

    paths = [str(path) for path in paths]
    if not paths:
        raise ValueError("no spectrogram files to stream")
    if layouts is None:
        layouts = check_spectrogram_files(paths, shape)
    decode = _decoder(layouts, tuple(shape))
    names = tf.constant(paths)
    offsets = tf.constant([npy.data_offset for npy in layouts], dtype=tf.int64)
    seed = int(seed)

    def epoch_files(epoch):
        indices = tf.range(len(paths), dtype=tf.int64)
        if shuffle:
            indices = tf.random.experimental.stateless_shuffle(
                indices, seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        files = tf.data.Dataset.from_tensor_slices(indices)
        if shard is not None:
            files = files.shard(*shard)
        return files.map(lambda i: (tf.gather(names, i), tf.gather(offsets, i), i))

    table = None if conditions is None else tf.constant(np.asarray(conditions, dtype=np.float32))

    # No finiteness check in the pipeline: an error raised inside tf.data can hang the process at
    # exit. A NaN value shows as a NaN loss, and training then looks for the file (find_non_finite).
    def load(path, offset, index):
        spectrogram = tf.expand_dims(decode(path, offset), -1)
        return spectrogram if table is None else (spectrogram, tf.gather(table, index))

    def epoch_batches(epoch):
        return epoch_files(epoch).map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)

    last_epoch = np.iinfo(np.int64).max if repeat else first_epoch + 1
    dataset = tf.data.Dataset.range(first_epoch, last_epoch).flat_map(epoch_batches)
    if not repeat:  # a known length lets Keras tell the end of the data from running out
        files = len(paths) if shard is None else len(range(shard[1], len(paths), shard[0]))
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps_per_epoch(files, batch_size)))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def find_non_finite(paths) -> list:
    """Return the files among `paths` that hold NaN or infinite values (read one at a time)."""
    return [path for path in paths
            if not np.all(np.isfinite(np.load(path, allow_pickle=False, mmap_mode="r")))]


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Number of batches in one epoch of `count` files (the last one may be smaller)."""
    return -(-count // batch_size)
