"""visualise_latent_space.py and the latent-space helpers on real small data and a tiny trained model."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import run_script
from semantic_timbre.latent import plot as latent_plot
from semantic_timbre.data import processed_data

SCRIPT = "visualise_latent_space.py"


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def assert_plot_files(png: Path, count: int, html: bool = True):
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size < 500_000
    rows = read_csv(png.with_suffix(".csv"))
    assert len(rows) == count
    assert set(rows[0]) == {"x", "y", "descriptor", "magnitude", "pitch", "string", "fret", "file"}
    assert all(np.isfinite([float(r["x"]), float(r["y"])]).all() for r in rows)
    assert len({r["file"] for r in rows}) == count
    if html:
        text = png.with_suffix(".html").read_text()
        # Offline: plotly.js beside the plot, no CDN.
        assert 'src="plotly.min.js"' in text and "cdn.plot.ly" not in text
        assert "CrunchX100X1-0.wav.npy" in text and (png.parent / "plotly.min.js").stat().st_size > 1_000_000
    return rows


def test_default_plot_as_the_thesis_names_it(trained_project, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(trained_project, project)
    result = run_script(SCRIPT, cwd=project)
    assert result.returncode == 0, result.stderr
    png = project / "Visualise_VAE_Latent_Space_tSNE.png"
    rows = assert_plot_files(png, 21)
    assert "Visualise_VAE_Latent_Space_tSNE.png" in result.stdout
    assert {(r["descriptor"], r["magnitude"], r["pitch"]) for r in rows} >= {("Crunch", "100", "E4"),
                                                                            ("Fluttery", "0", "E5")}


@pytest.mark.parametrize("flag, name", [
    ("-timbre", "Visualise_VAE_Latent_Space_tSNE_TimbreLabel.png"),
    ("-magnitude", "Visualise_VAE_Latent_Space_tSNE_MagnitudeLabel.png"),
    ("-pitch", "Visualise_VAE_Latent_Space_tSNE_PitchLabel.png"),
])
def test_each_flag_writes_its_plot(trained_project, tmp_path, monkeypatch, flag, name):
    from semantic_timbre.cli import visualise_latent_space

    monkeypatch.chdir(tmp_path)
    assert visualise_latent_space.main([flag, "--model-dir", str(trained_project / "model"),
                                        "--spectrograms-dir", str(trained_project / "spectrograms")]) == 0
    assert_plot_files(tmp_path / name, 21)


def test_pca_output_path_and_no_html(trained_project, tmp_path):
    from semantic_timbre.cli import visualise_latent_space

    png = tmp_path / "plots" / "latent.png"
    assert visualise_latent_space.main(["-pitch", "--method", "pca", "--no-html", "--output", str(png),
                                        "--model-dir", str(trained_project / "model"),
                                        "--spectrograms-dir", str(trained_project / "spectrograms")]) == 0
    assert_plot_files(png, 21, html=False)
    assert not png.with_suffix(".html").exists()
    assert latent_plot.plot_file_name("magnitude", "pca") == "Visualise_VAE_Latent_Space_PCA_MagnitudeLabel.png"


def test_errors_are_one_line(trained_project, tmp_path):
    result = run_script(SCRIPT, "-timbre", "-pitch", cwd=tmp_path)
    assert result.returncode == 2 and "not allowed with argument" in result.stderr
    result = run_script(SCRIPT, "--spectrograms-dir", trained_project / "spectrograms", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "train_timbre_generation_vae.py" in result.stderr
    result = run_script(SCRIPT, "--model-dir", trained_project / "model", cwd=tmp_path)
    assert result.returncode == 2 and "process_audio_into_spectrograms.py" in result.stderr
    assert not list(tmp_path.glob("Visualise*"))


def test_legend_orders():
    assert latent_plot.order_pitches(["C5", "E4", "B4", "F#4", "E4", "D6", "A#4"]) == ["E4", "F#4", "A#4", "B4",
                                                                                        "C5", "D6"]
    assert latent_plot.order_pitches(["C4", "B3", "E2"]) == ["E2", "B3", "C4"]
    assert latent_plot.order_magnitudes([100, 25, 5, 0, 25]) == [0, 5, 25, 100]


def test_reduce_to_2d_handles_tiny_sets():
    codes = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    for method in ("tsne", "pca"):
        points = latent_plot.reduce_to_2d(codes, method)
        assert points.shape == (5, 2) and np.all(np.isfinite(points))
    np.testing.assert_array_equal(latent_plot.reduce_to_2d(codes, "tsne"), latent_plot.reduce_to_2d(codes, "tsne"))
    with pytest.raises(ValueError):
        latent_plot.reduce_to_2d(codes[:1], "pca")


def test_encode_notes_in_batches_matches_one_batch(trained_project):
    from semantic_timbre.latent import encode_notes
    from semantic_timbre.network.vae import VAE

    vae = VAE.load(trained_project / "model")
    folder = trained_project / "spectrograms"
    notes = processed_data.require_spectrograms(folder)
    codes = encode_notes(vae, notes, folder, batch_size=4, progress=False)
    mu, _, _ = vae.encode(np.stack([processed_data.load_spectrogram(folder / n.spectrogram_name) for n in notes]))
    assert codes.shape == (21, vae.latent_space_dimension)
    np.testing.assert_allclose(codes, mu, rtol=1e-4, atol=1e-5)
    sampled = encode_notes(vae, notes, folder, batch_size=4, use_mean=False, seed=2, progress=False)
    np.testing.assert_array_equal(sampled, encode_notes(vae, notes, folder, batch_size=4, use_mean=False,
                                                        seed=2, progress=False))
    assert not np.allclose(sampled, codes)
    assert encode_notes(vae, [], folder, progress=False).shape == (0, vae.latent_space_dimension)



def test_the_views_share_one_cached_embedding_recomputed_when_the_model_or_key_changes(trained_project, tmp_path):
    from semantic_timbre.cli import visualise_latent_space

    project = tmp_path / "project"
    shutil.copytree(trained_project, project)
    data = ["--model-dir", str(project / "model"), "--spectrograms-dir", str(project / "spectrograms"), "--no-html"]
    plots = tmp_path / "plots"
    cache = plots / "Visualise_VAE_Latent_Space_embedding_tsne.npz"
    result = run_script(SCRIPT, "--output", plots / "all.png", *data, cwd=tmp_path)
    assert result.returncode == 0 and "reusing" not in result.stderr, result.stderr
    first, stamp = cache.read_bytes(), cache.stat().st_mtime_ns
    # Another view reuses the embedding (no encoding, same points) and leaves the cache as it was.
    result = run_script(SCRIPT, "-pitch", "--output", plots / "pitch.png", *data, cwd=tmp_path)
    assert result.returncode == 0 and "reusing the 2-D embedding cached in" in result.stderr
    assert "encoding" not in result.stderr
    assert cache.read_bytes() == first and cache.stat().st_mtime_ns == stamp
    assert [(r["x"], r["y"]) for r in read_csv(plots / "all.csv")] == \
        [(r["x"], r["y"]) for r in read_csv(plots / "pitch.csv")]
    # The method's parameters are part of the key: another perplexity is computed again.
    parameters = latent_plot.embedding_parameters("tsne", 21)
    key = latent_plot.embedding_fingerprint(project / "model", project / "spectrograms", parameters)
    assert latent_plot.embedding_fingerprint(project / "model", project / "spectrograms",
                                             latent_plot.embedding_parameters("tsne", 21, perplexity=4)) != key
    assert latent_plot.embedding_fingerprint(project / "model", project / "spectrograms",
                                             latent_plot.embedding_parameters("tsne", 21, random_state=1)) != key
    assert latent_plot.embedding_parameters("tsne-sklearn", 21)["implementation"].startswith("scikit-learn")
    result = run_script(SCRIPT, "-timbre", "--perplexity", "4", "--output", plots / "timbre.png", *data, cwd=tmp_path)
    assert result.returncode == 0 and "reusing" not in result.stderr
    assert cache.read_bytes() != first
    # A changed model (its weights re-saved) is computed again, and so is a changed spectrograms folder.
    weights = project / "model" / "weights.h5"
    weights.write_bytes(weights.read_bytes())
    result = run_script(SCRIPT, "-timbre", "--perplexity", "4", "--output", plots / "timbre.png", *data, cwd=tmp_path)
    assert result.returncode == 0 and "reusing" not in result.stderr
    (project / "spectrograms" / "CrunchX50X1-0.wav.npy").unlink()
    assert latent_plot.load_embedding(cache, latent_plot.embedding_fingerprint(
        project / "model", project / "spectrograms", latent_plot.embedding_parameters("tsne", 20, perplexity=4)),
        processed_data.require_spectrograms(project / "spectrograms")) is None
    # PCA has a cache of its own beside the t-SNE one.
    assert run_script(SCRIPT, "--method", "pca", "--output", plots / "pca.png", *data, cwd=tmp_path).returncode == 0
    assert (plots / "Visualise_VAE_Latent_Space_embedding_pca.npz").is_file() and cache.is_file()
    result = run_script(SCRIPT, "--perplexity", "0", *data, cwd=tmp_path)
    assert result.returncode == 2 and "--perplexity must be above 0" in result.stderr
