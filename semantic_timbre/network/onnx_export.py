"""The model's ONNX export, beside its weights in the model folder: encoder.onnx (spectrograms, and
a conditioned model's condition -> mu, log_variance), decoder.onnx (z, and the condition ->
spectrograms) and onnx.json, which records the sha256 of the weights and parameter files they were
exported from. VAE.save writes them (runtime/inference.py runs them with ONNX Runtime); a folder
that lacks them (the author's released model) gets them on first use. They are "fresh" while that
fingerprint matches the folder's files. TensorFlow and tf2onnx are imported only by an export.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from pathlib import Path

from semantic_timbre import safe_io
from semantic_timbre.network.model_files import PARAMETERS_JSON, PARAMETERS_PICKLE, WEIGHTS_FILE

ENCODER_ONNX = "encoder.onnx"

DECODER_ONNX = "decoder.onnx"

ONNX_RECORD = "onnx.json"



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
    """Export `vae` (a semantic_timbre.network.vae.VAE, loaded from or saved to `folder`) to ONNX beside its
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
