"""Predicting labelled cases for ``evaluate`` and ``calibrate``: each image as it is and degraded copies.

Every prediction goes through :func:`~.predict_job.run_prediction`, the path of ``predict``, so the
verdicts that calibration and evaluation see are the ones a user sees.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..annotation.datasets import Case, Dataset
from ..contract import ConfidenceSegError
from ..io.inputs import InputFacts
from ..model.bundle import ModelBundle
from ..quality.degradations import CLEAN, degrade
from ..quality.evaluation import LabelledPrediction
from .predict_job import run_prediction
from .settings import PredictionSettings


@dataclass(frozen=True)
class LabelledRun:
    """How labelled cases are predicted: the prediction settings, the degradation kinds each image is also
    predicted under (:mod:`~ConfidenceSegLib.quality.degradations`, strengths drawn from ``seed``), and
    whether a progress bar is shown."""

    settings: PredictionSettings = PredictionSettings(maps=())
    degradations: tuple[str, ...] = ()
    seed: int = 0
    show_progress: bool = True


#: Each image once, as it is, with the default settings.
DEFAULT_RUN = LabelledRun()


def common_classes(bundle: ModelBundle, dataset: Dataset) -> list[str]:
    """Classes the model predicts and the dataset annotates (in the model's order)."""
    classes = [name for name in bundle.classes if name in dataset.classes]
    if not classes:
        raise ConfidenceSegError(f"the model's classes ({', '.join(bundle.classes)}) and the dataset's "
                                 f"({', '.join(dataset.classes)}) have nothing in common")
    return classes


def predict_labelled(bundle: ModelBundle, cases: Sequence[Case], classes: Sequence[str],
                     run: LabelledRun = DEFAULT_RUN) -> Iterator[LabelledPrediction]:
    """Predict and assess each case (and one copy per degradation kind of ``run``) and pair it with its
    references (unchanged by a degradation)."""
    rng = np.random.default_rng(run.seed)
    total = len(cases) * (1 + len(run.degradations))
    with tqdm(total=total, desc="predicting", unit="image", disable=not run.show_progress) as bar:
        for case in cases:
            image = case.read_image()
            source = InputFacts.of(case.image_path)
            references = {name: case.confidence_map(name, image) for name in classes
                          if name in case.label_paths or case.rater_paths}
            for kind in (CLEAN, *run.degradations):
                shown = image if kind == CLEAN else degrade(image, kind, rng)
                assessed = run_prediction(bundle, source, run.settings, image=shown)
                bar.update()
                yield LabelledPrediction(case, assessed, references, kind)
