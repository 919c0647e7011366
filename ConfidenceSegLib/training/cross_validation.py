"""Subject-level cross-validation (``confidenceseg train --folds K``).

The training subjects are partitioned into K folds (:func:`subject_folds`). Member k trains on
the other K-1 folds and keeps its last epoch, so fold k chooses nothing about it; its predictions
on fold k are out of fold. The K members form the bundle's ensemble. Every figure recorded here
is out of fold, including the postprocessing and presence step: the steps scored on fold k are the
ones chosen on the other folds' out-of-fold predictions (the bundle keeps the choice made on all).

``metrics.cross_validation`` in ``config.json``: per class the mean Dice over subjects (each
subject the mean over its frames) and its standard deviation across subjects, the mean over
frames, the presence metrics (false-positive rate on frames without the structure, miss rate on
frames with it); per subject and per fold the same Dice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..inference.postprocessing import apply_per_frame, choose_from_scores, postprocessing_scores
from ..quality.metrics import dice
from .data import FrameSet, concat_frames
from .loop import DECISION_THRESHOLD, LoopSettings, MemberResult, train_member


@dataclass
class FoldOutcome:
    """One fold: its subjects, the member trained without it and its out-of-fold probabilities."""

    subjects: list[str]
    member: MemberResult
    probabilities: list[np.ndarray]  # per frame (C, H, W) on the image grid
    references: list[np.ndarray]  # per frame (C, H, W) bool: confidence > 0.5
    case_ids: list[str]


def train_folds(fold_sets: Sequence[FrameSet], fold_subjects: Sequence[list[str]], architecture: dict,
                n_classes: int, settings: LoopSettings, seed: int, device, show_progress: bool = True
                ) -> list[FoldOutcome]:
    """Train member k on every fold but k (last epoch kept) and predict fold k with it."""
    settings = LoopSettings(**{**settings.__dict__, "select_checkpoint": False})
    outcomes = []
    for k, held_out in enumerate(fold_sets):
        training = concat_frames([s for i, s in enumerate(fold_sets) if i != k])
        member = train_member(training, held_out, architecture, n_classes, settings, seed=seed * 1000 + k,
                              device=device, description=f"fold {k + 1}/{len(fold_sets)}",
                              show_progress=show_progress)
        outcomes.append(FoldOutcome(list(fold_subjects[k]), member,
                                    list(held_out.image_grid_probabilities([member.network])),
                                    [c > DECISION_THRESHOLD for c in held_out.confidences], list(held_out.case_ids)))
    return outcomes


def _choose(scores: np.ndarray, classes: Sequence[str]) -> dict:
    """Each class's postprocessing chosen on the frames of ``scores`` (see ``postprocessing_scores``)."""
    chosen = choose_from_scores(scores)
    return {name: chosen[index] for index, name in enumerate(classes)}


def _frame_masks(outcome: FoldOutcome, steps: dict, classes: Sequence[str]) -> list[np.ndarray]:
    """Out-of-fold masks (C, H, W) of a fold's frames after each class's steps."""
    return [np.stack([apply_per_frame(p[c] >= DECISION_THRESHOLD, steps[name]) for c, name in enumerate(classes)])
            for p in outcome.probabilities]


def _summary(values: Sequence[float]) -> dict:
    return {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4)}


def cross_validation_results(outcomes: Sequence[FoldOutcome], classes: Sequence[str],
                             subject_of_case: dict[str, str]) -> tuple[dict, dict]:
    """(the bundle's postprocessing chosen on all folds, ``metrics.cross_validation``)."""
    per_frame: list[dict] = []  # {subject, fold, dice[C], present[C], predicted[C]}
    scores = postprocessing_scores([p for o in outcomes for p in o.probabilities],
                                   [r for o in outcomes for r in o.references], dice, DECISION_THRESHOLD)
    fold_of_frame = np.concatenate([[k] * len(o.probabilities) for k, o in enumerate(outcomes)])
    fold_steps = []
    for k, outcome in enumerate(outcomes):
        steps = _choose(scores[fold_of_frame != k], classes)
        fold_steps.append({name: {key: value for key, value in entry.items() if key != "validation_dice"}
                           for name, entry in steps.items()})
        for mask, reference, case in zip(_frame_masks(outcome, steps, classes), outcome.references, outcome.case_ids,
                                         strict=True):
            per_frame.append({"subject": subject_of_case[case], "fold": k,
                              "dice": [dice(mask[c], reference[c]) for c in range(len(classes))],
                              "present": [bool(reference[c].any()) for c in range(len(classes))],
                              "predicted": [bool(mask[c].any()) for c in range(len(classes))]})
    subjects = sorted({frame["subject"] for frame in per_frame})
    by_subject = {s: [f for f in per_frame if f["subject"] == s] for s in subjects}
    by_fold = [[f for f in per_frame if f["fold"] == k] for k in range(len(outcomes))]
    per_class = {}
    for c, name in enumerate(classes):
        subject_means = [np.mean([f["dice"][c] for f in frames]) for frames in by_subject.values()]
        without = [f for f in per_frame if not f["present"][c]]
        with_structure = [f for f in per_frame if f["present"][c]]
        per_class[name] = {
            "dice_over_subjects": _summary(subject_means),
            "dice_over_frames": _summary([f["dice"][c] for f in per_frame]),
            "false_positive_rate": round(float(np.mean([f["predicted"][c] for f in without])), 4) if without else None,
            "frames_without_structure": len(without),
            "miss_rate": round(float(np.mean([not f["predicted"][c] for f in with_structure])), 4)
            if with_structure else None,
            "frames_with_structure": len(with_structure)}
    metrics = {
        "folds": len(outcomes), "frames": len(per_frame),
        "classes": per_class,
        "subjects": {s: {"frames": len(frames), "dice": {name: _summary([f["dice"][c] for f in frames])
                                                          for c, name in enumerate(classes)}}
                     for s, frames in by_subject.items()},
        "per_fold": [{"subjects": outcomes[k].subjects, "frames": len(frames), "postprocessing": fold_steps[k],
                      "dice": {name: round(float(np.mean([f["dice"][c] for f in frames])), 4)
                               for c, name in enumerate(classes)}} for k, frames in enumerate(by_fold)],
        "definition": "out of fold: each subject predicted by the member that never saw it (its last epoch, "
                      "chosen by nothing), after the postprocessing and presence steps chosen on the other folds; "
                      "Dice(mask, confidence > 0.5) on the image grid, absent in both = 1, absent in one = 0; "
                      "false-positive rate: frames without the structure given a non-empty mask; miss rate: "
                      "frames with it given an empty mask"}
    return _choose(scores, classes), metrics
