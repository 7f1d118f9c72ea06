"""The first latent view's fast paths (issue 21): encode_notes reading a batch ahead of the model,
and ONNX Runtime without spinning threads, on real small data."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from semantic_timbre.data import processed_data
from semantic_timbre.latent import encode_notes


def test_encode_notes_reading_ahead_gives_each_notes_own_code_in_order(trained_project):
    from semantic_timbre.runtime.inference import OnnxModel

    model = OnnxModel(trained_project / "model")
    folder = trained_project / "spectrograms"
    notes = processed_data.require_spectrograms(folder)
    one_by_one = np.concatenate([model.encode(processed_data.load_spectrogram(folder / note.spectrogram_name)[None])[0]
                                 for note in notes])
    # 21 notes: batches of 4 (the last of 1), of 1 and of all of them, each read ahead of the model.
    for batch_size in (4, 1, 64):
        codes = encode_notes(model, notes, folder, batch_size=batch_size, progress=False)
        assert codes.shape == (len(notes), model.latent_space_dimension) and codes.dtype == np.float32
        np.testing.assert_allclose(codes, one_by_one, rtol=1e-5, atol=1e-6)
    # The order follows `notes`, not the order the files were read in.
    np.testing.assert_allclose(encode_notes(model, notes[::-1], folder, batch_size=4, progress=False),
                               one_by_one[::-1], rtol=1e-5, atol=1e-6)
    sampled = encode_notes(model, notes, folder, batch_size=4, use_mean=False, seed=3, progress=False)
    np.testing.assert_array_equal(sampled, encode_notes(model, notes, folder, batch_size=4, use_mean=False, seed=3,
                                                        progress=False))


def test_encode_notes_says_which_file_is_damaged_when_it_is_read_ahead(trained_project, tmp_path):
    from semantic_timbre.runtime.inference import OnnxModel

    folder = tmp_path / "spectrograms"
    shutil.copytree(trained_project / "spectrograms", folder)
    notes = processed_data.require_spectrograms(folder)
    damaged = folder / notes[-1].spectrogram_name  # in the last batch, read while the one before is encoded
    damaged.write_bytes(b"not a spectrogram")
    with pytest.raises(processed_data.ProcessedDataError, match=damaged.name):
        encode_notes(OnnxModel(trained_project / "model"), notes, folder, batch_size=4, progress=False)


def test_onnx_sessions_do_not_spin(trained_project):
    from semantic_timbre.runtime.inference import OnnxModel

    model = OnnxModel(trained_project / "model")
    for session in (model._encoder, model._decoder):
        assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
