"""Where the cases of a batch review run: overlapped in this process, in local worker processes, or on Dask.

- **in process** (default): one thread reads the next image while the model predicts the current
  one, and another writes the previous case's files, overlay and thumbnails (compression and
  torch release the GIL), so reading, inference and writing overlap.
- **local processes** (``--workers N``): N spawned processes, each loading the bundle once and
  running torch with ``cores / N`` threads.
- **Dask** (``--dask ADDRESS``): the cases go to an existing ``dask.distributed`` scheduler; each
  Dask worker loads the bundle once (:func:`~.review_case.cached_bundle`) and writes the case's
  files into the output folder, which must be reachable from the workers (a shared file system).

All three yield :class:`~.review_case.CaseResult` per case (in completion order).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from ..contract import ConfidenceSegError
from ..io.inputs import InputFacts
from ..io.stops import STOP_SIGNALS, StopRequested, request_stop
from ..model.bundle_config import BundleConfig
from .predict_job import run_prediction
from .review_case import CaseResult, cached_bundle, finish_case, review_case_in_worker
from .settings import PredictionSettings

#: Seconds to wait for a Dask scheduler to answer.
DASK_CONNECT_TIMEOUT = 10
Cases = Sequence[tuple[Path, str]]


def run_cases(model: Path, config: BundleConfig, cases: Cases, out_dir: Path, settings: PredictionSettings,
              overwrite: bool, workers: int = 1, dask_address: str | None = None,
              progress: bool = True) -> Iterator[CaseResult]:
    """Process ``cases`` ((path, stem) pairs) where asked with the bundle at ``model`` (its ``config`` as the
    run read it: every worker gets it, none reads it again); report skipped cases as they fail."""
    settings.check(len(config.members), config.spatial_dims)
    if dask_address:
        results = _on_dask(dask_address, model, config, cases, out_dir, settings, overwrite)
    elif workers > 1:
        results = _in_processes(workers, model, config, cases, out_dir, settings, overwrite)
    else:
        results = _in_process(model, config, cases, out_dir, settings, overwrite)
    with tqdm(total=len(cases), desc="review", unit="case", disable=not progress, dynamic_ncols=True) as bar:
        for result in results:
            bar.update(1)
            bar.set_postfix_str(result.case)
            if result.failure:
                bar.write(f"confidenceseg: skipped {result.failure}")
            yield result


def _outcome(future: Future, path: Path, case: str) -> CaseResult:
    try:
        return future.result()
    except ConfidenceSegError as error:
        return CaseResult(case, failure=f"{path}: {error}")
    except OSError as error:  # e.g. the disk filled up: this case fails, the batch goes on
        return CaseResult(case, failure=f"{path}: cannot write its outputs ({error.strerror or error})")


def _in_process(model: Path, config: BundleConfig, cases: Cases, out_dir: Path, settings: PredictionSettings,
                overwrite: bool) -> Iterator[CaseResult]:
    bundle = cached_bundle(model, config)
    with ThreadPoolExecutor(1, thread_name_prefix="reader") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="writer") as writer:
        sources = [InputFacts.of(path, settings.spacing, config.in_channels) for path, _ in cases]
        reads = [reader.submit(sources[0].read)]
        written: tuple[Future, Path, str] | None = None
        for index, (path, case) in enumerate(cases):
            if index + 1 < len(cases):
                reads.append(reader.submit(sources[index + 1].read))
            try:
                assessed = run_prediction(bundle, sources[index], settings, image=reads[index].result())
            except ConfidenceSegError as error:
                yield CaseResult(case, failure=f"{path}: {error}")
                continue
            finally:
                reads[index] = None  # the image is no longer needed here
            if written is not None:
                yield _outcome(*written)
            written = (writer.submit(finish_case, bundle, assessed, case, out_dir, settings, overwrite),
                       path, case)
        if written is not None:
            yield _outcome(*written)


#: Exit status of a worker process that stopped on a signal.
WORKER_STOPPED = 130
_worker = {"in_case": False}


def _start_worker(threads: int) -> None:
    """A worker process: torch on its share of the cores; a stop signal stops its case at once (its partial
    output removed, as in the main process), then ends the process without the slow interpreter teardown."""
    import torch

    torch.set_num_threads(threads)
    for number in STOP_SIGNALS:
        signal.signal(number, _stop_worker)


def _stop_worker(signal_number: int, frame) -> None:
    if not _worker["in_case"]:
        os._exit(WORKER_STOPPED)
    request_stop(signal_number, frame)  # raises in the case (after its uninterruptible writes): it cleans up,
    # then _case_in_worker ends the process


def _case_in_worker(*args) -> CaseResult:
    """:func:`review_case_in_worker` in a worker process, which ends at once when a stop signal arrives."""
    _worker["in_case"] = True
    try:
        return review_case_in_worker(*args)
    except StopRequested:
        os._exit(WORKER_STOPPED)
    finally:
        _worker["in_case"] = False


def _in_processes(workers: int, model: Path, config: BundleConfig, cases: Cases, out_dir: Path,
                  settings: PredictionSettings, overwrite: bool) -> Iterator[CaseResult]:
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                               initargs=(threads,))
    try:
        futures = {pool.submit(_case_in_worker, model, config, path, case, out_dir, settings, overwrite):
                   (path, case) for path, case in cases}
        for future in as_completed(futures):
            yield _outcome(future, *futures[future])
    except BaseException:  # a stop: the workers stop their cases too (each removes its partial output)
        for process in list((pool._processes or {}).values()):
            with contextlib.suppress(OSError):
                process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _on_dask(address: str, model: Path, config: BundleConfig, cases: Cases, out_dir: Path,
             settings: PredictionSettings, overwrite: bool) -> Iterator[CaseResult]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise ConfidenceSegError("--dask needs dask.distributed: pip install 'confidenceseg[dask]'") from None
    try:
        client = Client(address, timeout=DASK_CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as error:
        raise ConfidenceSegError(f"cannot reach the Dask scheduler at {address}: {error}") from None
    with client:
        futures = {client.submit(review_case_in_worker, model.resolve(), config, path.resolve(), case,
                                 out_dir.resolve(), settings, overwrite, pure=False): (path, case)
                   for path, case in cases}
        for future in dask_completed(futures):
            yield _outcome(future, *futures[future])
