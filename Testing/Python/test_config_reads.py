"""A bundle's config.json is read and checked once per run: by the pre-flight check, then handed on."""

from __future__ import annotations

import io
import json
import time

import pytest
from tiny_bundles import make_bundle, random_image

from ConfidenceSegLib.cli import main
from ConfidenceSegLib.io.images import write_image
from ConfidenceSegLib.jobs.worker import Worker
from ConfidenceSegLib.model import bundle_config


@pytest.fixture
def config_reads(monkeypatch):
    """The paths of every config.json read from now on."""
    reads = []
    original = bundle_config.read_json

    def counting(path, *args, **kwargs):
        if str(path).endswith(bundle_config.CONFIG_NAME):
            reads.append(path)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(bundle_config, "read_json", counting)
    return reads


@pytest.fixture(scope="module")
def model_and_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reads")
    make_bundle(folder / "model", classes=("organ",), input_size=(32, 32))
    images = []
    for seed in range(2):
        images.append(folder / f"image{seed}.nrrd")
        write_image(random_image((36, 40), seed=seed), images[-1])
    return folder / "model", images


def test_predict_reads_the_config_once(model_and_images, config_reads, tmp_path):
    model, images = model_and_images
    assert main(["predict", "--model", str(model), "--input", *map(str, images), "--out", str(tmp_path),
                 "--samples", "2"]) == 0
    assert len(config_reads) == 1


def test_review_reads_the_config_once(model_and_images, config_reads, tmp_path):
    model, images = model_and_images
    assert main(["review", "--model", str(model), "--inputs", *map(str, images), "--out", str(tmp_path),
                 "--samples", "2"]) == 0
    assert len(config_reads) == 1


def test_a_warm_worker_reads_the_config_once_for_every_request(model_and_images, config_reads, tmp_path):
    model, images = model_and_images
    answers = io.StringIO()

    def results() -> list[dict]:
        return [json.loads(line) for line in answers.getvalue().splitlines() if '"result"' in line]

    def requests():
        """The predict requests, then (as a client that waits for its answers) quit once both are answered."""
        for n, image in enumerate(images):
            yield json.dumps({"id": str(n), "command": "predict", "input": str(image), "out": str(tmp_path / str(n)),
                              "samples": 2}) + "\n"
        deadline = time.monotonic() + 120
        while len(results()) < len(images) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield json.dumps({"command": "quit"}) + "\n"

    assert Worker(model, requests(), answers).serve() == 0
    assert len(results()) == 2 and len(config_reads) == 1
