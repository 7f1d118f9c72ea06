"""Measure a trained timbre VAE: reconstruction quality on held-out notes, the latent-space
study's metrics, a cross-validated descriptor classifier, descriptor-transfer recognition and
how often an independent audio-domain judge recognises the intended descriptor in generated notes.

Writes evaluation/report.json, evaluation/report.md and PNG plots beside them; the judge is
trained once on the processed notes and cached beside them (minmax/descriptor_judge.npz).
With --compare DIR [DIR ...] it evaluates each model folder on the same notes and held-out notes
and writes evaluation/comparison.json, comparison.md and comparison.png (one row per model,
labelled with its conditioning), each model's own report in evaluation/<folder name>/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from semantic_timbre.cli import check_seeds, entry_point
from semantic_timbre.errors import UserError
from semantic_timbre.runtime.inference import add_model_options

VALIDATION_SPLIT_FILE = "validation_split.json"


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its --help is rendered into the docs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_options(parser)
    parser.add_argument("--compare", nargs="+", metavar="DIR",
                        help="evaluate these model folders on the same held-out notes and write a comparison "
                             "(the held-out notes: --held-out-list, else the first folder's validation split, "
                             "else a random draw)")
    parser.add_argument("--output-dir", default="evaluation", help="where the report goes (default: evaluation)")
    parser.add_argument("--held-out-fraction", type=float, default=0.2,
                        help="fraction of notes, drawn at random with --seed, to measure reconstruction on "
                             "(default: 0.2; ignored when a split file is used)")
    parser.add_argument("--held-out-list", metavar="FILE",
                        help="text file of spectrogram names (one a line) or JSON list to measure "
                             "reconstruction on, instead of a random draw")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the held-out draw, the cross-validation folds and Griffin-Lim (default: 0)")
    parser.add_argument("--max-notes", type=int, metavar="N",
                        help="encode at most N notes, drawn at random with --seed (default: all)")
    parser.add_argument("--griffin-lim-iters", type=int, default=32,
                        help="Griffin-Lim iterations for the spectral-convergence measurement (default: 32)")
    parser.add_argument("--inverted-notes", type=int, default=50,
                        help="how many held-out notes to invert to audio for spectral convergence (default: 50)")
    parser.add_argument("--transfer-magnitude", type=float, default=100,
                        help="magnitude of the descriptors applied for the transfer-recognition figure (default: 100)")
    parser.add_argument("--transfer-clean-notes", type=int, default=12,
                        help="how many clean notes receive each descriptor for that figure (default: 12)")
    parser.add_argument("--batch-size", type=int, default=64, help="encoding batch size (default: 64)")
    parser.add_argument("--sample-size", type=int, default=5000, metavar="N",
                        help="compute the silhouette-based metrics (quadratic in the notes) and the classifiers on "
                             "a stratified sample of N non-clean notes, by descriptor and pitch, drawn with --seed, "
                             "when there are more (default: 5000; 0: every note)")
    return parser


def parse_arguments(argv):
    parser = build_parser()
    arguments = parser.parse_args(argv)
    check_seeds(arguments)
    if not 0 <= arguments.held_out_fraction <= 1:
        raise UserError(f"--held-out-fraction {arguments.held_out_fraction} is outside 0..1")
    for name in ("max_notes", "griffin_lim_iters", "inverted_notes", "transfer_clean_notes", "batch_size",
                 "sample_size"):
        value = getattr(arguments, name)
        if value is not None and value < (0 if name in ("inverted_notes", "sample_size") else 1):
            raise UserError(f"--{name.replace('_', '-')} must be a positive whole number, got {value}")
    if not 0 <= arguments.transfer_magnitude <= 100:
        raise UserError(f"--transfer-magnitude {arguments.transfer_magnitude:g} is outside 0..100")
    return arguments


def read_name_list(path: Path) -> list[str]:
    """Spectrogram names from a JSON list, a JSON object with a list under 'validation' or
    'held_out', or a text file with one name a line."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read the held-out list {path} ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(data, dict):
        data = next((data[key] for key in ("validation", "held_out", "validation_names") if key in data), None)
    if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
        raise UserError(f"{path} is not a list of spectrogram names (a JSON list, or one name a line)")
    return [Path(name).name for name in data]


def choose_held_out(arguments, notes) -> tuple[list[str], str, str]:
    """Return (held-out names among `notes`, how they were chosen, why there are none if so)."""
    from semantic_timbre.evaluation.run import held_out_split

    names = [note.spectrogram_name for note in notes]
    split_file = Path(arguments.compare[0] if arguments.compare else arguments.model_dir) / VALIDATION_SPLIT_FILE
    if arguments.held_out_list:
        chosen, source = read_name_list(Path(arguments.held_out_list)), f"the names listed in {arguments.held_out_list}"
    elif split_file.is_file():
        chosen, source = read_name_list(split_file), f"the validation notes the training left out ({split_file})"
    else:
        chosen = held_out_split(names, arguments.held_out_fraction, arguments.seed)
        return chosen, (f"a random {arguments.held_out_fraction:g} of the notes drawn with seed {arguments.seed}; "
                        f"they are only truly held out if the model was trained without them"), (
            "no held-out notes: the held-out fraction is 0")
    present = sorted(set(chosen) & set(names))
    if chosen and not present and arguments.held_out_list:
        raise UserError(f"none of the notes in {source} is among the spectrograms encoded")
    # The training's own split may miss every note a --max-notes draw kept: no reconstruction figures then.
    why_none = (f"no held-out notes: {source} holds none" if not chosen else
                f"no held-out notes: none of the {len(chosen)} notes in {source} is among the {len(notes)} "
                f"notes encoded")
    return present, f"{len(present)} notes: {source}", why_none


def shown(value) -> str:
    return "null" if value is None else f"{value:.3g}"


def descriptor_judge(arguments):
    """The audio-domain descriptor judge, from its cache beside the processed data or trained now;
    a str saying why there is none when the processed data cannot train one."""
    from semantic_timbre.data.processed_data import ProcessedDataError
    from semantic_timbre.judge.cache import load_or_train_judge
    from semantic_timbre.judge.classifier import JudgeUnavailable

    try:
        judge = load_or_train_judge(arguments.spectrograms_dir, arguments.minmax_dir, progress=True)
    except JudgeUnavailable as error:
        print(f"descriptor judge: none ({error})")
        return str(error)
    except ProcessedDataError as error:  # a note the encoded selection does not use may lack its min/max
        print(f"descriptor judge: none ({error})")
        return f"the judge could not be trained on the processed data: {error}"
    accuracy = judge.accuracy
    print(f"descriptor judge: {judge.status}; cross-validated accuracy on {len(judge.names)} real notes "
          f"{shown(accuracy) if accuracy is not None else 'null (' + judge.accuracy_reason + ')'} "
          f"(chance {judge.chance_level:.3g})")
    return judge


def main(argv=None) -> int:
    from threadpoolctl import threadpool_limits

    # One BLAS thread for the judge's and the evaluation's classifiers: their matrices are small, and more
    # threads cost several times the CPU time in waiting (10.3 s against 2.4 s for one fit on 1,748 codes).
    with threadpool_limits(1, user_api="blas"):
        return evaluate(argv)


def evaluate(argv=None) -> int:
    arguments = parse_arguments(argv)
    from semantic_timbre.data import processed_data
    from semantic_timbre.network.conditioning import conditions_for_model

    notes = processed_data.require_spectrograms(arguments.spectrograms_dir)
    min_max = processed_data.load_min_max(arguments.minmax_dir)
    if arguments.max_notes is not None and len(notes) > arguments.max_notes:
        chosen = np.random.default_rng(arguments.seed).choice(len(notes), arguments.max_notes, replace=False)
        notes = [notes[index] for index in sorted(chosen)]
    for note in notes:
        processed_data.min_max_of(min_max, note)  # fail now, not after minutes of work
    held_out, split, no_held_out_reason = choose_held_out(arguments, notes)
    model_dirs = unique_folders(arguments.compare) if arguments.compare else [arguments.model_dir]
    # Every model folder and its notes' conditions, checked before TensorFlow starts.
    checked = {folder: conditions_for_model(folder, notes, audio_dir=arguments.audio_dir,
                                            minmax_dir=arguments.minmax_dir, progress=True) for folder in model_dirs}
    judge = descriptor_judge(arguments)  # everything above is done before a model is loaded
    reports, used = {}, set()
    for folder in model_dirs:
        output_dir = arguments.output_dir
        if arguments.compare:
            name = base = comparison_name(folder)
            while name in used:
                name = f"{base}_{len(used)}"
            used.add(name)
            output_dir = Path(arguments.output_dir) / name
        if arguments.compare:
            print(f"evaluating {folder}")
        reports[folder] = evaluate_folder(arguments, folder, output_dir, notes, min_max, held_out, split,
                                          no_held_out_reason, judge, *checked[folder])
    if arguments.compare:
        from semantic_timbre.evaluation import comparison

        written = comparison.write_comparison(arguments.output_dir, reports)
        print(comparison.table_markdown(reports))
        print("wrote " + ", ".join(map(str, written)))
    return 0


def unique_folders(folders) -> list[str]:
    """The folders given, each once (the same folder typed twice is one model)."""
    seen, unique = set(), []
    for folder in folders:
        if Path(folder).resolve() not in seen:
            seen.add(Path(folder).resolve())
            unique.append(folder)
    return unique


def comparison_name(folder) -> str:
    """The sub-folder of the output folder that receives a compared model's own report."""
    return Path(folder).resolve().name or "model"


def evaluate_folder(arguments, model_dir, output_dir, notes, min_max, held_out, split, no_held_out_reason, judge,
                    config, conditions) -> dict:
    """Evaluate the model in `model_dir`, write its report in `output_dir`, print it; return the report."""
    from semantic_timbre.evaluation.run import evaluate_model, write_evaluation
    from semantic_timbre.runtime.inference import load_model

    vae = load_model(model_dir, arguments.runtime, config=config)
    results, _ = evaluate_model(
        vae, notes, arguments.spectrograms_dir, min_max, held_out, seed=arguments.seed,
        griffin_lim_iterations=arguments.griffin_lim_iters, max_inverted_notes=arguments.inverted_notes,
        transfer_magnitude=arguments.transfer_magnitude, transfer_clean_notes=arguments.transfer_clean_notes,
        batch_size=arguments.batch_size, no_held_out_reason=no_held_out_reason, judge=judge, conditions=conditions,
        sample_size=arguments.sample_size or None)
    effected = [note for note in notes if not note.is_clean]
    run = {
        "model_dir": str(model_dir),
        "conditioning": vae.conditioning.kind,
        "spectrograms_dir": str(arguments.spectrograms_dir),
        "notes": len(notes),
        "non_clean_notes": len(effected),
        "descriptors": sorted({note.descriptor for note in effected}),
        "magnitudes": sorted({note.magnitude for note in notes}),
        "pitches": len({note.pitch for note in notes}),
        "held_out_notes": len(held_out),
        "split": split,
        "seed": arguments.seed,
        "latent_code": "mu (the encoder's mean)",
        "sample_size": arguments.sample_size or None,
        "quadratic_metrics": results["silhouette_descriptor"].details.get("sampling", "every note"),
        "descriptor_judge": judge if isinstance(judge, str) else judge.status,
    }
    report = write_evaluation(output_dir, results, run)
    output = Path(output_dir)
    print(f"wrote {output / 'report.json'} and {output / 'report.md'}")
    for key, entry in report.items():
        if key == "run":
            continue
        value = "null" if entry["value"] is None else f"{entry['value']:.4g}"
        extra = f" (chance {entry['chance_level']:.3g})" if entry.get("chance_level") is not None else ""
        if entry.get("real_notes_round_trip") is not None:
            extra += f" (real notes through the same round trip: {entry['real_notes_round_trip']:.3g})"
        elif entry.get("real_notes_round_trip_reason"):
            extra += f" (no figure for real notes through the round trip: {entry['real_notes_round_trip_reason']})"
        if "judge_accuracy" in entry:
            extra += " (" + "; ".join(
                [f"judge on real notes: {shown(entry['judge_accuracy'])}"]
                + [f"{label}: {shown(entry[key])}" for key, label in (
                    ("reconstructions", "reconstructions"), ("applied_descriptors", "applied descriptors"))
                   if entry.get(key) is not None]) + ")"
        extra += f" ({entry['reason']})" if entry.get("reason") else ""
        extra += f" (on {entry['sampling']})" if entry.get("sampled") else ""
        print(f"  {key}: {value}{extra}")
    return report


run = entry_point(main)  # `semantic-timbre-evaluate` (pyproject.toml)
