"""The quality verdict of a segment, and a class's assessed result: the typed values between ``quality``
and every front end.

:class:`Verdict`: badge, predicted Dice, its lower bound and the reasons (the deciding one first).
:class:`ClassResult`: one class of an assessed prediction or of a written report (presence, uncertainty
summary, verdict, reported measurements, frame counts, written files); :class:`FrameResult`: one frame
of a 2D model run slice by slice. Standard library only: the Slicer module reads reports with these
before its dependencies are installed. ``S.json`` is their serialisation (:mod:`ConfidenceSegLib.outputs.report`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..contract import ABSENT, PASS, REVIEW, UNRATED, ConfidenceSegError, Key


@dataclass(frozen=True)
class Reason:
    """Why a segment got its badge: a code of :data:`~ConfidenceSegLib.contract.REASON_CODES` and words."""

    code: str
    message: str

    def __post_init__(self):
        # "|" separates tags in a .seg.nrrd, where the first reason is stored too
        object.__setattr__(self, "message", self.message.replace("|", "/"))


@dataclass(frozen=True)
class Verdict:
    """The quality verdict of one segment (or frame): PASS / REVIEW / ABSENT / None (no quality model)."""

    badge: str | None
    predicted_dice: float | None = None
    dice_lower_bound: float | None = None
    reasons: tuple[Reason, ...] = ()

    def __post_init__(self):
        if not self.reasons:
            raise ConfidenceSegError("a quality verdict without a reason")

    @property
    def first_reason(self) -> str:
        return self.reasons[0].message

    @property
    def needs_review(self) -> bool:
        return self.badge == REVIEW


@dataclass
class FrameResult:
    """One frame of a 2D model run slice by slice: presence, verdict, reported measurements."""

    present: bool
    verdict: Verdict
    measurements: dict[str, dict] = field(default_factory=dict)


@dataclass
class ClassResult:
    """One class of an assessed prediction: presence, uncertainty summary, verdict, reported measurements
    (``{name: {"value", "p05", "p95"}}``, calibrated; pixel names without spacing), the frame counts of a
    slice-by-slice run (``{"PASS", "REVIEW", "ABSENT", "worst_frame", "measured_frame"}``; the measurements are
    then the measured frame's, never a volume) and, once written, its map files."""

    name: str
    present: bool
    uncertainty: dict[str, float]
    verdict: Verdict
    measurements: dict[str, dict] = field(default_factory=dict)
    frames_summary: dict | None = None
    files: dict[str, str] = field(default_factory=dict)

    @property
    def measured_frame(self) -> int | None:
        """The frame (0-based) whose measurements a slice-by-slice run reports: the worst, else the largest."""
        return (self.frames_summary or {}).get(Key.MEASURED_FRAME)

    @property
    def frame_count(self) -> int:
        """Frames of a slice-by-slice run (0 otherwise)."""
        return sum((self.frames_summary or {}).get(badge, 0) for badge in (PASS, REVIEW, ABSENT, UNRATED))


def frame_counts_summary(frames: list[Verdict], worst_frame: int | None) -> dict:
    """``{"PASS": n, "REVIEW": n, "ABSENT": n, "worst_frame": k}`` of per-frame verdicts, with ``"UNRATED": n``
    only where some frames have no quality model's verdict."""
    counts = {badge: sum(frame.badge == badge for frame in frames) for badge in (PASS, REVIEW, ABSENT)}
    unrated = sum(frame.badge is None for frame in frames)
    return {**counts, **({UNRATED: unrated} if unrated else {}), Key.WORST_FRAME: worst_frame}
