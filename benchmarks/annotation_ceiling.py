"""How well the annotator agrees with themself: a ceiling for single-annotator Dice on clips.

The frames of one clip are nearly the same image (pixel correlation 0.97-0.99 across a whole clip of
``lus_pleural``), yet each was annotated on its own. Per class this prints, as JSON, the mean Dice
of each frame's reference against (a) the next frame's reference and (b) the majority of the other
frames of its clip (leave-one-out consensus), per subject and over all frames. (b) is what a model
that knew this annotator's marks on the same scene would score: a cross-validated model, which
never saw the subject, cannot be expected to beat it.

    python benchmarks/annotation_ceiling.py --dataset ../shared/data/lus_pleural --classes pleural_line rib_shadow
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

from ConfidenceSegLib.annotation.datasets import load_dataset
from ConfidenceSegLib.quality.metrics import dice
from ConfidenceSegLib.training.loop import DECISION_THRESHOLD


def clip_masks(dataset, classes: list[str]) -> dict[tuple[str, str], np.ndarray]:
    """(subject, clip) -> references (F, C, H, W) bool, frames in id order."""
    clips = defaultdict(list)
    for case in sorted(dataset.cases, key=lambda case: case.id):
        clips[(case.subject, case.extra.get("clip", case.id))].append(case)
    masks = {}
    for key, cases in clips.items():
        frames = []
        for case in cases:
            image = case.read_image()
            frames.append(np.stack([case.confidence_map(name, image) > DECISION_THRESHOLD for name in classes]))
        masks[key] = np.stack(frames)
    return masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--classes", nargs="+", required=True)
    args = parser.parse_args()
    scores = defaultdict(lambda: {"next_frame": [], "clip_consensus": []})
    for (subject, _), frames in clip_masks(load_dataset(args.dataset), args.classes).items():
        if len(frames) < 3:
            continue
        for index, frame in enumerate(frames):
            others = np.delete(frames, index, axis=0).mean(axis=0) > DECISION_THRESHOLD
            for group in (subject, "all"):
                scores[group]["clip_consensus"].append([dice(others[c], frame[c]) for c in range(len(args.classes))])
                if index + 1 < len(frames):
                    scores[group]["next_frame"].append([dice(frames[index + 1][c], frame[c])
                                                        for c in range(len(args.classes))])
    print(json.dumps({group: {kind: dict(zip(args.classes, np.round(np.mean(values, axis=0), 3).tolist(), strict=True))
                              for kind, values in kinds.items()} for group, kinds in scores.items()}, indent=1))


if __name__ == "__main__":
    main()
