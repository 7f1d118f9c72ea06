"""An independent audio-domain descriptor judge: a classifier of real notes' spectrograms.

The dataset paper judged generated notes with a descriptor classifier trained on audio. This is
that judge for the processed data: it knows nothing of the VAE. It reads a normalised 512 x 64
spectrogram with the min/max that de-normalises it, turns it into a few hundred features that
describe distortion, filtering, dynamics and modulation, and a standardised multinomial logistic
regression predicts the descriptor.

- augmentation.py: the descriptor-agnostic damage of the real notes it learns from besides them.
- features.py: the gain-invariant features of a spectrogram, and of stored notes (with their damaged copies).
- classifier.py: the classes, LinearModel, DescriptorJudge (its cross-validated accuracy) and train_judge.
- cache.py: the data's fingerprint and the cache beside the processed data (load_or_train_judge).

The names below are re-exported for `from semantic_timbre import judge`; the package's own modules
import each from the module that holds it.
"""

from semantic_timbre.judge.augmentation import (AUGMENTATION, AUGMENTED_COPIES, GRIFFIN_LIM_ITERATIONS,
                                                GRIFFIN_LIM_NOTES, MAX_AUGMENTED_NOTES, augment,
                                                augmentation_settings)
from semantic_timbre.judge.cache import (CACHE_FILE_NAME, FINGERPRINT_FILE_NAME, JUDGE_VERSION, data_fingerprint,
                                         load_judge, load_or_train_judge, save_judge)
from semantic_timbre.judge.classifier import (CLASSIFIER, MAX_FOLDS, MAX_ITERATIONS, REGULARISATION_C, SEED,
                                              DescriptorJudge, JudgeUnavailable, LinearModel, train_judge)
from semantic_timbre.judge.features import (FLOOR_DB, HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, feature_names,
                                            notes_features, spectrogram_features)
