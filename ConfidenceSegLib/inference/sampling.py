"""Which networks run and how many samples each draws: the sampling plan of ``--method`` / ``--samples``.

Methods (:data:`~ConfidenceSegLib.contract.METHODS`) and samples (default
:data:`~ConfidenceSegLib.contract.DEFAULT_SAMPLES` = 10, or one per source when there are more
sources):

- ``auto``: ``ensemble`` when the bundle has several members, else ``mcdropout`` (no TTA: flips
  cost one backbone run each, while MC dropout only re-runs the head).
- ``mcdropout``: the first member with its head's channel dropout active.
- ``ensemble``: every member; with as many samples as members each runs once, deterministically;
  with more, the samples are spread over the members (10 over 3 members: 4, 3, 3), each drawing
  MC-dropout samples (an ensemble of MC-dropout networks).
- ``tta``: the first member on the image and its in-plane flips (x, y, both: 4 variants, in 2D
  and 3D), samples spread over the flips as for ``ensemble``.
- ``none``: one deterministic prediction of the first member (entropy is that of its probability;
  mutual information is 0).

No torch here: the command line checks a plan before loading anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..contract import DEFAULT_SAMPLES, METHODS, ConfidenceSegError

#: In-plane flips used by TTA (tensor dims counted from the end: -1 = x, -2 = y).
TTA_FLIPS = ((), (-1,), (-2,), (-2, -1))


@dataclass(frozen=True)
class SamplingPlan:
    """Which (member, flip) sources run, and how many samples each draws.

    With one sample per source the sources run deterministically; with more samples than sources
    every source draws MC-dropout samples.
    """

    method: str
    sources: tuple[tuple[int, tuple[int, ...]], ...]
    counts: tuple[int, ...]

    @property
    def samples(self) -> int:
        return sum(self.counts)

    @property
    def stochastic(self) -> bool:
        return self.samples > len(self.sources)


def plan_sampling(n_members: int, method: str = "auto", samples: int | None = None) -> SamplingPlan:
    """Resolve ``method`` and ``samples`` for a bundle with ``n_members`` members (see module doc)."""
    if method not in METHODS:
        raise ConfidenceSegError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if samples is not None and samples < 1:
        raise ConfidenceSegError(f"--samples must be at least 1, got {samples}")
    if method == "auto":
        method = "ensemble" if n_members > 1 else "mcdropout"
    if method == "none":
        if samples not in (None, 1):
            raise ConfidenceSegError(f"--method none makes a single prediction; --samples {samples} does not apply")
        return SamplingPlan("none", ((0, ()),), (1,))
    if method == "ensemble" and n_members < 2:
        raise ConfidenceSegError("--method ensemble needs a bundle with several members; this one has 1 "
                                 "(use mcdropout)")
    sources = {"mcdropout": ((0, ()),),
               "ensemble": tuple((member, ()) for member in range(n_members)),
               "tta": tuple((0, flip) for flip in TTA_FLIPS)}[method]
    count = samples or max(DEFAULT_SAMPLES, len(sources))
    if method == "mcdropout" and count < 2:
        raise ConfidenceSegError("MC dropout needs at least 2 samples (use --method none for one prediction)")
    if count < len(sources):
        raise ConfidenceSegError(f"--method {method} needs at least {len(sources)} samples (one per "
                                 f"{'member' if method == 'ensemble' else 'flip'}), got {count}")
    share, extra = divmod(count, len(sources))
    return SamplingPlan(method, sources, tuple(share + (index < extra) for index in range(len(sources))))
