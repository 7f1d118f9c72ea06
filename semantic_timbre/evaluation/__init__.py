"""Measuring a trained VAE: reconstruction quality, the latent-space study's metrics, and how
often an independent audio-domain judge (semantic_timbre/judge/) recognises the intended descriptor in
generated notes.

- metrics.py: the metrics' definitions, MetricResult and `measure`, reconstruction quality, the
  latent-space metrics and the descriptor classifier (plain arrays).
- transfer.py: descriptors applied in latent space, recognised by the classifier after a round trip.
- audio_judge.py: the audio judge on generated notes, and on real notes through damage (its robustness).
- quality.py: what a listener notices, on dB spectrograms; sampling.py: the stratified sample.
- report.py: report.json and report.md; plots.py: the report's PNG figures.
- run.py: the held-out split, `evaluate_model` (the model, the files and the metrics) and `write_evaluation`.
- comparison.py: the comparison of several models.

The names below are re-exported for `from semantic_timbre import evaluation`; the package's own
modules import each from the module that holds it.
"""

from semantic_timbre.evaluation.audio_judge import (JudgedNotes, audio_descriptor_recognition, judge_details,
                                                    judge_robustness)
from semantic_timbre.evaluation.metrics import (DEFINITIONS, METRIC_KEYS, NOT_FINITE, NOT_FINITE_CODES,
                                                MetricResult, MetricUnavailable, classifier_accuracy,
                                                cross_pitch_consistency, descriptor_classifier,
                                                descriptor_compactness, log_spectral_distance_db, measure,
                                                pitch_conditional_separation, reconstruction_mse,
                                                silhouette_descriptor, trajectory_linearity)
from semantic_timbre.evaluation.plots import plot_confusion_matrices, plot_confusion_matrix, plot_per_descriptor
from semantic_timbre.evaluation.report import (REPORT_ORDER, report_dict, report_markdown, write_report_json,
                                               write_report_markdown)
from semantic_timbre.evaluation.run import (AUDIO_JUDGE_PLOT, MAX_IDENTITY_CANDIDATES, MAX_IDENTITY_NOTES,
                                            MAX_ROBUSTNESS_NOTES, evaluate_model, held_out_split, write_evaluation)
from semantic_timbre.evaluation.transfer import (descriptor_transfer_recognition, model_round_trip,
                                                 transfer_clean_indices, transfer_trials)
