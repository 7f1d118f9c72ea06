"""Train the timbre VAE on the spectrograms in spectrograms/ and save it in model/.

With no arguments it trains the thesis's model as the thesis did: learning rate 0.0005, batch 64,
300 epochs, every spectrogram in spectrograms/. Spectrograms are streamed from disk, a
checkpoint is written every epoch and a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import os

from semantic_timbre.cli import check_seeds, entry_point, quiet_tensorflow
from semantic_timbre.errors import UserError

# The demo preset's training (its architecture is config.DEMO_CONFIGURATION): under 10 minutes
# on two CPU cores, measured by bench/bench_demo_quality.py. A few epochs need a faster start than
# the thesis's 0.0005, and a cosine decay lets the last epochs settle. 40 epochs: at 16 the resize
# decoder with the spectral loss kept only 0.40 of its notes nearest a real note of their own
# descriptor, at 32 0.68 (docs/sound_quality.md).
DEMO_EPOCHS = 40
DEMO_BATCH_SIZE = 16
DEMO_LEARNING_RATE = 0.002
# Stability of the demo preset (bench/bench_training_stability.py, two seeds): a linear warm-up over
# the first 3 epochs gave the smallest log-variance run-aways of the first epochs (largest 15 against
# 17-23 without) and a first-epoch KL of 1e3-2e3 (4e3-7e4 without, 1.8e9 on another CPU); clipping
# the gradients' global norm (3e5 or 1e6, typical norms 1e5) made the spikes no smaller and one run
# worse, so the demo preset does not clip (--clip-gradient-norm is there to try).
DEMO_WARMUP_EPOCHS = 3.0
LOGICAL_CPUS_VARIABLE = "SEMANTIC_TIMBRE_LOGICAL_CPUS"


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(
        description="Train the timbre VAE on spectrograms/ and save it in model/ (thesis defaults).")
    parser.add_argument("--preset", choices=("thesis", "demo"), default="thesis",
                        help="thesis: the thesis's architecture and 300 epochs (default); demo: a smaller "
                             f"architecture and {DEMO_EPOCHS} epochs, for a quick run on a CPU")
    parser.add_argument("--epochs", type=int, help="number of epochs (thesis 300, demo %d)" % DEMO_EPOCHS)
    parser.add_argument("--batch-size", type=int, help=f"batch size (thesis 64, demo {DEMO_BATCH_SIZE})")
    parser.add_argument("--learning-rate", type=float,
                        help=f"Adam learning rate (thesis 0.0005, demo {DEMO_LEARNING_RATE})")
    parser.add_argument("--learning-rate-schedule", choices=("constant", "cosine"),
                        help="constant (the thesis's, its default) or cosine: decay to 2%% of the learning rate "
                             "over the run (the demo preset's default)")
    parser.add_argument("--warmup-epochs", type=float, metavar="N",
                        help="raise the learning rate linearly over the first N epochs' steps (thesis 0, demo "
                             f"{DEMO_WARMUP_EPOCHS:g})")
    parser.add_argument("--clip-gradient-norm", type=float, metavar="NORM",
                        help="clip the gradients' global norm to NORM (default: no clipping; the loss's "
                             "gradients have norms of about 1e5 in the demo preset's first epochs)")
    parser.add_argument("--no-nan-recovery", dest="nan_recovery", action="store_false",
                        help="stop at the first NaN or infinite loss (by default training puts back the last good "
                             "weights, halves the learning rate and goes on, up to 3 times a run)")
    parser.add_argument("--spectrograms-dir", default="spectrograms", help="spectrograms folder (default spectrograms)")
    parser.add_argument("--model-dir", default="model", help="model folder to write (default model)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of weights and shuffling (default 0)")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_const", const="resume", default="auto",
                        help="resume from model/checkpoint/ (and fail if there is none); by default a "
                             "checkpoint of the same configuration and folder is resumed automatically")
    resume.add_argument("--restart", dest="resume", action="store_const", const="restart",
                        help="ignore any checkpoint and train from scratch")
    parser.add_argument("--validation-split", type=float, default=0.0,
                        help="fraction of spectrograms held out for validation (default 0)")
    parser.add_argument("--tensorboard", metavar="LOG_DIR", help="also write TensorBoard logs to LOG_DIR")
    parser.add_argument("--mixed-precision", choices=("off", "bfloat16", "float16"), default="off",
                        help="compute in bfloat16 or float16 (loss and variables stay float32); for GPUs, and bfloat16 "
                             "for CPUs with AVX512_BF16 or AMX (refused on other CPUs: emulated, it is many "
                             "times slower)")
    parser.add_argument("--distribute", choices=("none", "mirrored", "multi-worker"), default="none",
                        help="mirrored: every GPU of this machine; multi-worker: several machines described "
                             "by the TF_CONFIG environment variable")
    parser.add_argument("--xla", choices=("auto", "on", "off"), default="auto",
                        help="XLA-compiled train step: auto (default) compiles on GPUs only; on CPUs "
                             "TensorFlow's own kernels measured faster (see bench/bench_training.py)")
    parser.add_argument("--no-xla", dest="xla", action="store_const", const="off", help="the same as --xla off")
    parser.add_argument("--no-batch-norm-recalibration", dest="recalibrate", action="store_false",
                        help="keep the batch-norm moving statistics as training left them, as the thesis did "
                             "(by default they are re-estimated on the training data after the last epoch, "
                             "which makes inference match what training learned)")
    parser.add_argument("--conditioning", choices=("none", "descriptor", "perceptual"), default="none",
                        help="none: the thesis's VAE (default); descriptor: conditioned on a one-hot of the "
                             "descriptor and the magnitude; perceptual: on the AudioCommons timbral features of "
                             "each note's audio (computed once, cached in the min/max folder)")
    parser.add_argument("--audio-dir", default="audio",
                        help="the notes' audio, for --conditioning perceptual (default audio)")
    parser.add_argument("--minmax-dir", default="minmax",
                        help="where the perceptual features are cached (default minmax)")
    parser.add_argument("--filters", type=int, nargs="+", metavar="N",
                        help="override the convolution filters of the preset (same number of layers)")
    parser.add_argument("--kernels", type=int, nargs="+", metavar="N",
                        help="override the convolution kernel sizes of the preset (same number of layers)")
    parser.add_argument("--latent", type=int, metavar="N", help="override the latent space dimension")
    parser.add_argument("--loss", choices=("thesis", "spectral"),
                        help="the training loss: 'thesis' is exactly 1e6 x MSE + KL (the thesis preset's); "
                             "'spectral' adds the loud bins' linear magnitude and the frame-energy envelope "
                             "(the demo preset's)")
    parser.add_argument("--upsampling", choices=("transposed", "nearest", "bilinear"),
                        help="how the decoder upsamples: 'transposed' convolutions (the thesis preset's, with an "
                             "even/odd checkerboard) or a nearest/bilinear resize then a convolution (the demo "
                             "preset's: nearest)")
    parser.add_argument("--logical-cpus", type=int, metavar="N",
                        default=int(os.environ.get(LOGICAL_CPUS_VARIABLE, "0") or 0),
                        help="testing aid: split the CPU into N logical devices (e.g. to try --distribute "
                             f"mirrored without GPUs; also read from ${LOGICAL_CPUS_VARIABLE})")
    return parser


def parse_arguments(argv=None) -> argparse.Namespace:
    arguments = build_parser().parse_args(argv)
    check_seeds(arguments)
    return arguments


def configuration_of(arguments) -> dict:
    from semantic_timbre.network import config

    base = config.DEMO_CONFIGURATION if arguments.preset == "demo" else config.THESIS_CONFIGURATION
    configuration = dict(base)
    if arguments.filters:
        if len(arguments.filters) != len(base["conv_filters"]) or min(arguments.filters) < 1:
            raise UserError(f"--filters needs {len(base['conv_filters'])} positive numbers, one per layer of "
                            f"the {arguments.preset} preset")
        configuration["conv_filters"] = list(arguments.filters)
    if arguments.kernels:
        if len(arguments.kernels) != len(base["conv_kernels"]) or min(arguments.kernels) < 1:
            raise UserError(f"--kernels needs {len(base['conv_kernels'])} positive numbers, one per layer of "
                            f"the {arguments.preset} preset")
        configuration["conv_kernels"] = list(arguments.kernels)
    if arguments.latent is not None:
        if arguments.latent < 1:
            raise UserError("--latent must be at least 1")
        configuration["latent_space_dimension"] = arguments.latent
    for key in ("loss", "upsampling"):
        if getattr(arguments, key) is not None:
            configuration[key] = getattr(arguments, key)
    return configuration


def clip_norm_of(arguments) -> float | None:
    """The gradient clipping asked for (None: none)."""
    if arguments.clip_gradient_norm is not None and not arguments.clip_gradient_norm > 0:
        raise UserError(f"--clip-gradient-norm must be a number above 0, got {arguments.clip_gradient_norm}")
    return arguments.clip_gradient_norm


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    from semantic_timbre.data import dataset
    from semantic_timbre import training

    demo = arguments.preset == "demo"
    epochs = arguments.epochs if arguments.epochs is not None else (DEMO_EPOCHS if demo else 300)
    learning_rate = arguments.learning_rate if arguments.learning_rate is not None else (
        DEMO_LEARNING_RATE if demo else 0.0005)
    if not 0 <= arguments.validation_split < 1:
        raise UserError(f"--validation-split must be at least 0 and below 1, got {arguments.validation_split}")
    # The settings, the data and the checkpoint are checked before TensorFlow starts, so these
    # errors come at once.
    files = dataset.spectrogram_files(arguments.spectrograms_dir)
    options = training.TrainingOptions(
        configuration=configuration_of(arguments), files=files, spectrograms_dir=arguments.spectrograms_dir,
        model_dir=arguments.model_dir, epochs=epochs,
        batch_size=arguments.batch_size if arguments.batch_size is not None else (DEMO_BATCH_SIZE if demo else 64),
        learning_rate=learning_rate, seed=arguments.seed, validation_split=arguments.validation_split,
        warmup_epochs=arguments.warmup_epochs if arguments.warmup_epochs is not None else (
            DEMO_WARMUP_EPOCHS if demo else 0.0),
        clip_gradient_norm=clip_norm_of(arguments), nan_recovery=arguments.nan_recovery,
        learning_rate_schedule=arguments.learning_rate_schedule or ("cosine" if demo else "constant"),
        resume=arguments.resume, tensorboard_dir=arguments.tensorboard, mixed_precision=arguments.mixed_precision,
        distribute=arguments.distribute, xla=arguments.xla,
        recalibrate_batch_norm=arguments.recalibrate, conditioning=arguments.conditioning,
        audio_dir=arguments.audio_dir, minmax_dir=arguments.minmax_dir)
    training.check_options(options)
    if options.conditioning == "perceptual":  # every note's features cached or computable, before TensorFlow
        from semantic_timbre import layout
        from semantic_timbre.data import perceptual

        perceptual.check_available([layout.parse_spectrogram_name(path.name) for path in files],
                                   audio_dir=options.audio_dir, minmax_dir=options.minmax_dir)
    if not training.already_done(options, training.resume_point(options)):
        training.configure_cpu(options.distribute)
        quiet_tensorflow()
        training.configure_logical_cpus(arguments.logical_cpus)
    result = training.train(options)
    if result.examples_per_second:
        print(f"trained epochs {result.first_epoch + 1}-{result.epochs_done} at "
              f"{result.examples_per_second:.1f} examples/s")
    return 0


run = entry_point(main)  # `semantic-timbre-train` (pyproject.toml)
