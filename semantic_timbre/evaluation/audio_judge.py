"""The independent audio-domain judge (semantic_timbre/judge/) in the evaluation: how often it labels
generated notes with their intended descriptor, and how well it hears real notes through
descriptor-agnostic damage of the model's size; on judge features, never the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from semantic_timbre.evaluation.metrics import MetricUnavailable


# ---------------------------------------------------------------------------------------------
# Audio-domain descriptor recognition: generated notes labelled by the independent judge


@dataclass
class JudgedNotes:
    """Generated notes for the judge: each one's intended descriptor and judge features, and for
    reconstructions the name of the real note it reconstructs (judged by a judge that never saw it)."""

    intended: np.ndarray
    features: np.ndarray
    names: np.ndarray | None = None


def judge_details(judge) -> dict:
    """The judge's own figures on real notes, for the report (flat keys)."""
    summary = judge.summary()
    return {
        "chance_level": summary["chance_level"],
        "judge_accuracy": summary["cross_validated_accuracy"],
        "judge_accuracy_reason": summary["cross_validation_reason"],
        "judge_folds": summary["folds"],
        "judge_notes": summary["notes"],
        "judge_majority_rate": summary["majority_rate"],
        "judge_accuracy_by_magnitude": summary["accuracy_by_magnitude"],
        "classes": summary["classes"],
        "clean_notes_are_a_class": False,
        "judge_features": summary["features"],
        "judge_classifier": summary["classifier"],
        "judge_confusion_matrix": judge.confusion_matrix(),
        "judged": "decoded spectrograms de-normalised with their source note's min/max (no Griffin-Lim)",
        "descriptor_judge": judge.status,
    }


def audio_descriptor_recognition(judge, reconstructions, applied, magnitude: float | None = None) -> tuple[float, dict]:
    """How often the audio-domain judge labels generated notes with their intended descriptor.

    Parameters
    ----------
    judge : judge.DescriptorJudge, or a str saying why there is none
    reconstructions : JudgedNotes (with `names`) of reconstructed held-out non-clean notes, or a
        str saying why there are none; each is judged by the cross-validation fold's model that
        never saw the real note of that name
    applied : JudgedNotes of decoded clean notes with a descriptor applied, or a str saying why
        there are none; judged by the model fitted on every real note (clean notes are not among them)
    magnitude : the magnitude the descriptors were applied at (for the real-note reference)

    Returns
    -------
    rate : float
        Fraction of all the generated notes (both parts) labelled with the intended descriptor.
    details : dict
        The judge's figures on real notes (`judge_details`), and per part: 'reconstructions'
        (rate), 'reconstructions_notes', 'judge_on_the_originals' (the judge's cross-validated
        accuracy on those same real notes), or 'reconstructions_reason'; 'applied_descriptors',
        'applied_trials', 'applied_magnitude', 'judge_on_real_notes_at_magnitude',
        'per_descriptor', or 'applied_descriptors_reason'; 'generated_confusion_matrix'.

    Raises
    ------
    MetricUnavailable
        Without a judge, or when neither part has a generated note (the judge's details are kept).
    """
    from semantic_timbre.judge.classifier import JudgeUnavailable

    if judge is None or isinstance(judge, str):
        raise MetricUnavailable(judge or "no audio-domain descriptor judge was given")
    details = judge_details(judge)
    classes = judge.classes
    intended_all, predicted_all, reasons = [], [], []

    if isinstance(reconstructions, JudgedNotes) and not len(reconstructions.intended):
        reconstructions = "no held-out non-clean note to reconstruct"
    predicted = None
    if isinstance(reconstructions, JudgedNotes):
        try:
            predicted = judge.predict_unseen(reconstructions.names, reconstructions.features)
        except JudgeUnavailable as error:
            reconstructions = str(error)
    if predicted is not None:
        hits = predicted == reconstructions.intended
        details.update({
            "reconstructions": float(hits.mean()), "reconstructions_notes": int(len(hits)),
            "judge_on_the_originals": judge.out_of_fold_accuracy(np.isin(judge.names, reconstructions.names))})
        intended_all.append(reconstructions.intended)
        predicted_all.append(predicted)
    else:
        details.update({"reconstructions": None, "reconstructions_reason": str(reconstructions)})
        reasons.append(f"reconstructions: {reconstructions}")

    if isinstance(applied, JudgedNotes) and not len(applied.intended):
        applied = "no descriptor was applied to a clean note"
    if isinstance(applied, JudgedNotes):
        predicted = judge.predict_features(applied.features)
        hits = predicted == applied.intended
        at_magnitude = None
        if magnitude is not None and np.any(judge.magnitudes == magnitude):
            at_magnitude = judge.out_of_fold_accuracy(judge.magnitudes == magnitude)
        details.update({
            "applied_descriptors": float(hits.mean()), "applied_trials": int(len(hits)),
            "applied_magnitude": magnitude, "judge_on_real_notes_at_magnitude": at_magnitude,
            "per_descriptor": {str(name): float(hits[applied.intended == name].mean())
                               for name in classes if np.any(applied.intended == name)}})
        intended_all.append(applied.intended)
        predicted_all.append(predicted)
    else:
        details.update({"applied_descriptors": None, "applied_descriptors_reason": str(applied)})
        reasons.append(f"descriptors applied to clean notes: {applied}")

    if not intended_all:
        raise MetricUnavailable("; ".join(reasons), details)
    intended_all, predicted_all = np.concatenate(intended_all), np.concatenate(predicted_all)
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    known = np.isin(intended_all, classes)
    np.add.at(matrix, (np.searchsorted(classes, intended_all[known]), np.searchsorted(classes, predicted_all[known])), 1)
    details["generated_notes"] = int(len(intended_all))
    details["generated_confusion_matrix"] = matrix.tolist()
    return float(np.mean(intended_all == predicted_all)), details


def judge_robustness(judge, originals, target_lsd_db, seed: int = 0) -> tuple[float, dict]:
    """The judge on real notes damaged (damage.damage_to_lsd: noise, blur) to `target_lsd_db`.

    Parameters
    ----------
    judge : judge.DescriptorJudge, or a str saying why there is none
    originals : list of (normalised spectrogram, low, high, name, descriptor) of real notes the
        judge was cross-validated on; each is judged by the fold model that never saw it
    target_lsd_db : the log-spectral distance to damage them to (the model's), or None

    Returns
    -------
    (the lower of the two kinds' rates, details: 'noise', 'blur', 'undamaged', 'reached_lsd_db',
    'target_lsd_db', 'notes')
    """
    from semantic_timbre.data import damage
    from semantic_timbre.judge.classifier import JudgeUnavailable
    from semantic_timbre.judge.features import spectrogram_features

    if judge is None or isinstance(judge, str):
        raise MetricUnavailable(judge or "no audio-domain descriptor judge was given")
    if judge.accuracy_reason is not None:
        raise MetricUnavailable(f"the judge has no cross-validation folds ({judge.accuracy_reason}), so no judge "
                                f"that has not seen the damaged notes")
    if target_lsd_db is None or not math.isfinite(target_lsd_db):
        raise MetricUnavailable("no log-spectral distance of the model to damage the notes to")
    if not originals:
        raise MetricUnavailable("no held-out non-clean note the judge knows")
    names = [name for _, _, _, name, _ in originals]
    intended = np.array([descriptor for *_, descriptor in originals])

    def rate(spectrograms):
        features = np.concatenate([spectrogram_features(x, low, high) for x, (_, low, high, _, _) in
                                   zip(spectrograms, originals)])
        try:
            return float(np.mean(judge.predict_unseen(names, features) == intended))
        except JudgeUnavailable as error:
            raise MetricUnavailable(str(error)) from None

    details = {"undamaged": rate([x for x, *_ in originals]), "target_lsd_db": float(target_lsd_db),
               "notes": len(originals), "reached_lsd_db": {}}
    for kind in ("noise", "blur"):
        damaged = [damage.damage_to_lsd(x, kind, target_lsd_db, low=low, high=high, random_state=seed + i)
                   for i, (x, low, high, _, _) in enumerate(originals)]
        details[kind] = rate([x for x, _ in damaged])
        details["reached_lsd_db"][kind] = float(np.mean([reached for _, reached in damaged]))
    return min(details["noise"], details["blur"]), details
