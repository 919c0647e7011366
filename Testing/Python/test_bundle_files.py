"""Model bundle folders get the user's usual permissions (not tempfile's private 0700/0600)."""

from __future__ import annotations

import os

from ConfidenceSegLib.model.bundle import load_bundle, save_bundle, update_config
from ConfidenceSegLib.model.networks import build_network

ARCHITECTURE = {"name": "ConfidenceSegNet", "spatial_dims": 2, "in_channels": 1, "channels": [4, 8],
                "strides": [2], "num_res_units": 0, "head_channels": 4, "dropout": 0.1}


def test_bundle_folder_and_files_follow_the_umask(tmp_path):
    mask = os.umask(0o022)
    try:
        folder = tmp_path / "model"
        save_bundle(folder, {"architecture": ARCHITECTURE, "classes": ["a"],
                             "preprocessing": {"spatial_dims": 2, "input_size": [16, 16]}},
                    [build_network(ARCHITECTURE, 1)])
        update_config(folder, {"quality": {"alpha": 0.1, "threshold": 0.8}})
    finally:
        os.umask(mask)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == {
        "config.json": 0o644, "member_0.safetensors": 0o644}
    assert load_bundle(folder).config.quality.alpha == 0.1
