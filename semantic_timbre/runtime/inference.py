"""Running a trained model: with ONNX Runtime (no TensorFlow: answers in well under a second) or
with TensorFlow (the VAE itself).

A model folder's ONNX export (network/onnx_export.py) lies beside its weights; a folder that lacks
it (the author's released model) gets it on first use.

Both runtimes have the same interface, the VAE's: `encode(spectrograms, batch_size, seed, *,
conditions=None) -> (mu, log_variance, z)`, `decode(z, batch_size, *, conditions=None)`,
`reconstruct`, `config`, `conditioning`, `latent_space_dimension`, so every module that runs a
model (generation, latent, descriptor_control, evaluation) takes either. This module imports
neither TensorFlow nor Keras unless a TensorFlow model is asked for or an export is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from semantic_timbre import layout
from semantic_timbre.errors import UserError
from semantic_timbre.network.latent_sampling import sample_latent
from semantic_timbre.network.config import ModelFolderError
from semantic_timbre.network.model_files import check_model_config, spectrogram_batch
from semantic_timbre.network.onnx_export import (DECODER_ONNX, ENCODER_ONNX, ONNX_RECORD, export_onnx, onnx_fresh,
                                                 try_export_onnx)

RUNTIMES = ("auto", "onnx", "tensorflow")


def add_runtime_option(parser) -> None:
    """The --runtime option every command that runs a model has."""
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="run the model with ONNX Runtime (fast start, no TensorFlow) or TensorFlow; auto "
                             "(default): ONNX when the model folder's export is fresh for its weights, else "
                             "TensorFlow (and the export is written for next time)")


_AUDIO_DIR_HELP = "the notes' audio, for a perceptual-conditioned model's features not yet cached (default: audio)"


def add_model_options(parser, *, spectrograms_help: str = "processed spectrograms (default: spectrograms)",
                      minmax_help: str = "min/max folder (default: minmax)",
                      audio_help: str | None = _AUDIO_DIR_HELP) -> None:
    """The folders a command that runs a model reads, and --runtime: --model-dir, --runtime,
    --spectrograms-dir, --minmax-dir, --audio-dir (left out when `audio_help` is None), each
    folder's help text the command's own where it says more than the default."""
    from semantic_timbre import layout

    parser.add_argument("--model-dir", default=layout.MODEL_DIR, help="trained model folder (default: model)")
    add_runtime_option(parser)
    parser.add_argument("--spectrograms-dir", default=layout.SPECTROGRAMS_DIR, help=spectrograms_help)
    parser.add_argument("--minmax-dir", default=layout.MINMAX_DIR, help=minmax_help)
    if audio_help is not None:
        parser.add_argument("--audio-dir", default=layout.AUDIO_DIR, help=audio_help)


def _onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


class OnnxModel:
    """A model folder's ONNX export run with ONNX Runtime, with the VAE's inference interface.

    Parameters
    ----------
    folder : the model folder (its ONNX export must be fresh: see `load_model`)
    threads : ONNX Runtime's intra-op threads (0: its default, one per core)
    config : the folder's checked configuration (check_model_config), when the caller has read it
        already; by default the folder's parameters are read and checked here
    """

    def __init__(self, folder=layout.MODEL_DIR, threads: int = 0, *, config=None):
        import onnxruntime

        folder = Path(folder)
        self.config = check_model_config(folder) if config is None else config
        self.conditioning = self.config.conditioning
        self.parameters = self.config.parameters
        self.latent_space_dimension = int(self.parameters[4])
        self.spectrogram_shape = tuple(int(size) for size in self.parameters[0])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # Threads that wait for work sleep rather than spin: on cores shared with other processes
        # (or with encode_notes's reader thread) spinning threads take the cores from the work, and
        # encoding 17,710 notes took 1.5 to 2 times as long with them.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._encoder, self._decoder = (
                onnxruntime.InferenceSession(str(folder / name), options, providers=["CPUExecutionProvider"])
                for name in (ENCODER_ONNX, DECODER_ONNX))
        except Exception as error:  # noqa: BLE001  (onnxruntime raises its own untyped errors)
            raise ModelFolderError(f"{folder}/'s ONNX export cannot be read ({error}): remove {folder}/{ONNX_RECORD} "
                                   f"and run again (it is exported anew), or use --runtime tensorflow") from None
        self._check_signatures(folder)

    def _check_signatures(self, folder: Path) -> None:
        """Refuse an export whose inputs are not this folder's model's (another model's files)."""
        size = self.conditioning.size
        expected = {ENCODER_ONNX: (self._encoder, {"spectrogram": list(self.spectrogram_shape)}),
                    DECODER_ONNX: (self._decoder, {"z": [self.latent_space_dimension]})}
        for name, (session, inputs) in expected.items():
            if size:
                inputs = {**inputs, "condition": [size]}
            found = {item.name: list(item.shape[1:]) for item in session.get_inputs()}
            if found != inputs:
                raise ModelFolderError(
                    f"{folder / name} takes {found}, not this model's {inputs} (another model's export?): remove "
                    f"{folder}/{ONNX_RECORD} and run again (it is exported anew), or use --runtime tensorflow")

    def _as_batch(self, spectrograms) -> np.ndarray:
        return spectrogram_batch(spectrograms, self.spectrogram_shape)

    def _as_conditions(self, conditions, count: int):
        return self.conditioning.checked(conditions, count)

    @staticmethod
    def _run(session, name: str, values: np.ndarray, conditions, start: int, stop: int):
        feed = {name: values[start:stop]}
        if conditions is not None:
            feed["condition"] = conditions[start:stop]
        return session.run(None, feed)

    def encode(self, spectrograms, batch_size=64, seed=None, *, conditions=None):
        """As VAE.encode: (mu, log_variance, z), z drawn with numpy.random.default_rng(seed)."""
        spectrograms = self._as_batch(spectrograms)
        conditions = self._as_conditions(conditions, len(spectrograms))
        outputs = [self._run(self._encoder, "spectrogram", spectrograms, conditions, start, start + batch_size)
                   for start in range(0, len(spectrograms), batch_size)]
        empty = np.zeros((0, self.latent_space_dimension), np.float32)
        mu = np.concatenate([mu for mu, _ in outputs]) if outputs else empty
        log_variance = np.concatenate([log_variance for _, log_variance in outputs]) if outputs else empty
        return mu, log_variance, sample_latent(mu, log_variance, seed)

    def decode(self, latent, batch_size=64, *, conditions=None):
        """As VAE.decode: spectrograms (N, 512, 64, 1) in [0, 1]."""
        latent = np.asarray(latent, dtype=np.float32)
        if latent.ndim != 2 or latent.shape[1] != self.latent_space_dimension:
            raise ValueError(f"expected latent codes of shape (N, {self.latent_space_dimension}), got {latent.shape}")
        conditions = self._as_conditions(conditions, len(latent))
        outputs = [self._run(self._decoder, "z", latent, conditions, start, start + batch_size)[0]
                   for start in range(0, len(latent), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0, *self.spectrogram_shape), np.float32)

    def reconstruct(self, spectrograms, seed=None, batch_size=64, *, conditions=None):
        """As VAE.reconstruct: (reconstructions, z)."""
        _, _, z = self.encode(spectrograms, batch_size=batch_size, seed=seed, conditions=conditions)
        return self.decode(z, batch_size=batch_size, conditions=conditions), z


def load_model(folder=layout.MODEL_DIR, runtime: str = "auto", log=None, *, config=None):
    """Load a model folder for inference: an OnnxModel or the TensorFlow VAE.

    Parameters
    ----------
    runtime : "auto" (ONNX when its export is fresh for the weights, else TensorFlow, exporting the
        ONNX files for next time), "onnx" (exported first when needed) or "tensorflow"
    log : where the runtime chosen by "auto" is said (default: a line on stderr)
    config : the folder's configuration as check_model_config returned it, when the caller has
        checked the folder already (the Pipeline does): its parameters are then not read again,
        here or by the runtime. The ONNX export's freshness is checked either way (its
        fingerprint hashes the weights and parameter files: it is what refuses a stale export).

    The folder is checked without TensorFlow first (ModelFolderError names what is wrong).
    """
    from semantic_timbre.backend import quiet_tensorflow

    log = log or (lambda message: print(message, file=sys.stderr))
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}: choose {', '.join(RUNTIMES)}")
    if config is None:
        config = check_model_config(folder)
    fresh = onnx_fresh(folder)
    if runtime != "tensorflow" and not _onnxruntime_available():
        if runtime == "onnx":
            raise UserError("--runtime onnx needs onnxruntime: pip install onnxruntime (requirements.txt), "
                                   "or use --runtime tensorflow")
        log("runtime: TensorFlow (onnxruntime is not installed)")
        runtime = "tensorflow"
    if runtime == "onnx" or (runtime == "auto" and fresh):
        if not fresh:
            log(f"runtime: ONNX; exporting {folder}/ to ONNX first (once, with TensorFlow)")
            quiet_tensorflow()
            from semantic_timbre.network.vae import VAE

            export_onnx(VAE.load(folder, config=config), folder)
        return OnnxModel(folder, config=config)
    quiet_tensorflow()
    from semantic_timbre.network.vae import VAE

    vae = VAE.load(folder, config=config)
    if runtime == "auto":
        log(f"runtime: TensorFlow ({folder}/ has no ONNX export for its current weights; writing it for next time)")
        try_export_onnx(vae, folder)
    return vae
