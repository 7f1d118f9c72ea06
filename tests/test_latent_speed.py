"""The first latent view's fast paths (issue 21): encode_notes reading a batch ahead of the model,
ONNX Runtime without spinning threads, and openTSNE with exact neighbours, on real small data."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from semantic_timbre import latent_plot, processed_data
from semantic_timbre.latent import encode_notes


def test_encode_notes_reading_ahead_gives_each_notes_own_code_in_order(trained_project):
    from semantic_timbre.inference import OnnxModel

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
    from semantic_timbre.inference import OnnxModel

    folder = tmp_path / "spectrograms"
    shutil.copytree(trained_project / "spectrograms", folder)
    notes = processed_data.require_spectrograms(folder)
    damaged = folder / notes[-1].spectrogram_name  # in the last batch, read while the one before is encoded
    damaged.write_bytes(b"not a spectrogram")
    with pytest.raises(processed_data.ProcessedDataError, match=damaged.name):
        encode_notes(OnnxModel(trained_project / "model"), notes, folder, batch_size=4, progress=False)


def test_onnx_sessions_do_not_spin(trained_project):
    from semantic_timbre.inference import OnnxModel

    model = OnnxModel(trained_project / "model")
    for session in (model._encoder, model._decoder):
        assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"


def clustered_codes(count: int = 1_200, clusters: int = 6, size: int = 16, seed: int = 0):
    """`count` codes of `size` values around `clusters` centres, and each one's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(clusters, size))
    labels = rng.integers(0, clusters, count)
    return (centres[labels] + rng.normal(size=(count, size))).astype(np.float32), labels


def neighbours_kept(codes: np.ndarray, points: np.ndarray, k: int = 10) -> float:
    """The mean share of each code's k nearest codes that are among its point's k nearest points."""
    from sklearn.neighbors import NearestNeighbors

    def nearest(values):
        return NearestNeighbors(n_neighbors=k + 1).fit(values).kneighbors(values, return_distance=False)[:, 1:]

    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(nearest(codes), nearest(points))]))


def test_tsne_with_exact_neighbours_is_deterministic_and_keeps_the_clusters_and_neighbours():
    from sklearn.metrics import silhouette_score

    codes, labels = clustered_codes()
    assert latent_plot.tsne_neighbours(len(codes)) == "exact"
    assert latent_plot.tsne_neighbours(latent_plot.EXACT_NEIGHBOURS_MAX + 1) == "annoy"
    points = latent_plot.reduce_to_2d(codes, "tsne")
    assert points.shape == (len(codes), 2) and points.dtype == np.float32 and np.all(np.isfinite(points))
    np.testing.assert_array_equal(points, latent_plot.reduce_to_2d(codes, "tsne"))
    assert not np.array_equal(points, latent_plot.reduce_to_2d(codes, "tsne", random_state=1))
    assert silhouette_score(points, labels) > 0.5
    # As good a map as openTSNE's approximate (Annoy) neighbours gave, by the neighbours it keeps.
    from openTSNE import TSNE

    approximate = np.asarray(TSNE(perplexity=30, n_iter=latent_plot.OPENTSNE_ITERATIONS, random_state=42, n_jobs=1,
                                  neighbors="annoy").fit(codes.astype(np.float64)))
    assert neighbours_kept(codes, points) >= neighbours_kept(codes, approximate) - 0.02


def test_the_neighbour_search_is_part_of_the_embedding_cache_key():
    small, large = latent_plot.EXACT_NEIGHBOURS_MAX, latent_plot.EXACT_NEIGHBOURS_MAX + 1
    assert latent_plot.embedding_parameters("tsne", small)["neighbours"] == "exact"
    assert latent_plot.embedding_parameters("tsne", large)["neighbours"] == "annoy"
    assert "neighbours" not in latent_plot.embedding_parameters("pca", small)
