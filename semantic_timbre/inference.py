"""Running a trained model: with ONNX Runtime (no TensorFlow: answers in well under a second) or
with TensorFlow (the VAE itself).

A model folder's ONNX export lies beside its weights: encoder.onnx (spectrograms, and a
conditioned model's condition -> mu, log_variance), decoder.onnx (z, and the condition ->
spectrograms) and onnx.json, which records the sha256 of the weights and parameter files they were
exported from. VAE.save writes them; a folder that lacks them (the author's released model) gets
them on first use. They are "fresh" while that fingerprint matches the folder's files.

Both runtimes have the same interface, the VAE's: `encode(spectrograms, batch_size, seed, *,
conditions=None) -> (mu, log_variance, z)`, `decode(z, batch_size, *, conditions=None)`,
`reconstruct`, `config`, `conditioning`, `latent_space_dimension`, so every module that runs a
model (generation, latent, descriptor_control, evaluation) takes either. This module imports
neither TensorFlow nor Keras unless a TensorFlow model is asked for or an export is needed.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from . import layout, safe_io
from .errors import UserError
from .latent_sampling import sample_latent
from .model_files import (PARAMETERS_JSON, PARAMETERS_PICKLE, WEIGHTS_FILE, ModelFolderError, check_model_config,
                          spectrogram_batch)

ENCODER_ONNX = "encoder.onnx"
DECODER_ONNX = "decoder.onnx"
ONNX_RECORD = "onnx.json"
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
    from . import layout

    parser.add_argument("--model-dir", default=layout.MODEL_DIR, help="trained model folder (default: model)")
    add_runtime_option(parser)
    parser.add_argument("--spectrograms-dir", default=layout.SPECTROGRAMS_DIR, help=spectrograms_help)
    parser.add_argument("--minmax-dir", default=layout.MINMAX_DIR, help=minmax_help)
    if audio_help is not None:
        parser.add_argument("--audio-dir", default=layout.AUDIO_DIR, help=audio_help)


def weights_fingerprint(folder) -> str:
    """sha256 over the model folder's weights.h5 and parameter files (what an export came from)."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, PARAMETERS_JSON, PARAMETERS_PICKLE):
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0")
            safe_io.update_digest(digest, path)
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    return safe_io.update_digest(hashlib.sha256(), path).hexdigest()


def onnx_fresh(folder) -> bool:
    """Whether `folder` holds an ONNX export made from its current weights and parameters: the
    record's fingerprint of those is theirs now, and the .onnx files are the ones it recorded
    (their sha256: another model's export copied in is not fresh)."""
    folder = Path(folder)
    try:
        record = json.loads((folder / ONNX_RECORD).read_text())
        if not (isinstance(record, dict) and record.get("weights_sha256") == weights_fingerprint(folder)):
            return False
        files = record.get("files_sha256")
        return isinstance(files, dict) and all(
            (folder / name).is_file() and files.get(name) == _file_sha256(folder / name)
            for name in (ENCODER_ONNX, DECODER_ONNX))
    except (OSError, ValueError):
        return False


STALE_TEMPORARY_SECONDS = 120  # a temporary export file older than this is from an export that died


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove the temporary files of exports that were killed (kill -9, a power cut) before they
    could clean up: `.encoder.onnx.<random>.tmp.onnx` and the like, older than two minutes (a
    younger one may be another process's export under way)."""
    import time

    removed = []
    for name in (ENCODER_ONNX, DECODER_ONNX, ONNX_RECORD):
        for path in Path(folder).glob(f".{name}.*.tmp*"):
            try:
                if time.time() - path.stat().st_mtime > STALE_TEMPORARY_SECONDS:
                    path.unlink()
                    removed.append(path)
            except OSError:
                pass
    return removed


def export_onnx(vae, folder) -> list[Path]:
    """Export `vae` (a semantic_timbre.vae.VAE, loaded from or saved to `folder`) to ONNX beside its
    weights; return the files written. Each is written to a temporary name and renamed into place,
    the record last, so an interrupted export is never taken for a fresh one."""
    import keras
    import tensorflow as tf

    folder = Path(folder)
    remove_stale_temporaries(folder)
    fingerprint = weights_fingerprint(folder)
    size = vae.conditioning.size

    def spec(shape, name):
        return tf.TensorSpec((None, *shape), tf.float32, name=name)

    condition = {"condition": spec((size,), "condition")} if size else {}
    encoder = keras.Model(vae.encoder.inputs, vae.encoder.outputs[:2])  # mu, log_variance: z is drawn in numpy
    signatures = {
        ENCODER_ONNX: (encoder, {"spectrogram": spec(vae.spectrogram_shape, "spectrogram"), **condition}
                       if size else spec(vae.spectrogram_shape, "spectrogram")),
        DECODER_ONNX: (vae.decoder, {"z": spec((vae.latent_space_dimension,), "z"), **condition}
                       if size else spec((vae.latent_space_dimension,), "z")),
    }
    written = []
    for name, (model, signature) in signatures.items():
        with safe_io.atomic_path(folder / name) as temporary, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf2onnx's deprecation notices
            model.export(str(temporary), format="onnx", verbose=False, input_signature=[signature])
        written.append(folder / name)
    record = {"weights_sha256": fingerprint, "encoder": ENCODER_ONNX, "decoder": DECODER_ONNX,
              "files_sha256": {path.name: _file_sha256(path) for path in written},
              "conditioning": vae.conditioning.kind, "keras": keras.__version__, "tensorflow": tf.__version__}
    safe_io.write_bytes_atomic(folder / ONNX_RECORD, (json.dumps(record, indent=1) + "\n").encode())
    return written + [folder / ONNX_RECORD]


def try_export_onnx(vae, folder) -> bool:
    """export_onnx, with a one-line warning instead of a failure (the weights are what matters:
    commands then run with TensorFlow)."""
    try:
        export_onnx(vae, folder)
        return True
    except Exception as error:  # noqa: BLE001  (tf2onnx or a read-only folder: the model is still usable)
        print(f"warning: could not export {folder}/ to ONNX ({type(error).__name__}: {error}); "
              f"commands will run it with TensorFlow", file=sys.stderr)
        return False


def _onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


class OnnxModel:
    """A model folder's ONNX export run with ONNX Runtime, with the VAE's inference interface.

    Parameters
    ----------
    folder : the model folder (its ONNX export must be fresh: see `load_model`)
    threads : ONNX Runtime's intra-op threads (0: its default, one per core)
    """

    def __init__(self, folder=layout.MODEL_DIR, threads: int = 0):
        import onnxruntime

        folder = Path(folder)
        self.config = check_model_config(folder)
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


def load_model(folder=layout.MODEL_DIR, runtime: str = "auto", log=None):
    """Load a model folder for inference: an OnnxModel or the TensorFlow VAE.

    Parameters
    ----------
    runtime : "auto" (ONNX when its export is fresh for the weights, else TensorFlow, exporting the
        ONNX files for next time), "onnx" (exported first when needed) or "tensorflow"
    log : where the runtime chosen by "auto" is said (default: a line on stderr)

    The folder is checked without TensorFlow first (ModelFolderError names what is wrong).
    """
    from .cli import quiet_tensorflow

    log = log or (lambda message: print(message, file=sys.stderr))
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}: choose {', '.join(RUNTIMES)}")
    check_model_config(folder)
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
            from .vae import VAE

            export_onnx(VAE.load(folder), folder)
        return OnnxModel(folder)
    quiet_tensorflow()
    from .vae import VAE

    vae = VAE.load(folder)
    if runtime == "auto":
        log(f"runtime: TensorFlow ({folder}/ has no ONNX export for its current weights; writing it for next time)")
        try_export_onnx(vae, folder)
    return vae
