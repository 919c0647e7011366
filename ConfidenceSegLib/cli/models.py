"""``confidenceseg models``: list the models ``--model NAME`` can name, and install new ones."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models", help="list the models that --model NAME finds, or install one",
        description="Models are named by their folder name: those installed in the user model folder "
                    "($CONFIDENCESEG_MODELS, else the platform's data folder) and those bundled with "
                    "ConfidenceSeg. --model accepts a name or a bundle folder.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="name, classes, input kind, calibration and path of each model")
    listing.set_defaults(func=run_list)
    install = actions.add_parser("install", help="check a bundle folder or .zip and copy it into the user folder")
    install.add_argument("source", metavar="PATH_OR_ZIP", help="model bundle folder, or a .zip holding one")
    install.add_argument("--name", help="name to install it under (default: the folder or zip name)")
    install.add_argument("--sha256", metavar="HEX", help="expected SHA-256 of the .zip (refused if it differs)")
    install.set_defaults(func=run_install)


def run_list(args: argparse.Namespace) -> int:
    from ..model.registry import available_models, user_models_dir

    models = [entry.summary() for entry in available_models()]
    if not models:
        print(f"no models found (install one with: confidenceseg models install PATH; folder {user_models_dir()})")
        return 0
    width = max(len(model["name"]) for model in models)
    for model in models:
        print(f"{model['name']:<{width}}  {model['source']:<9}  {model['input']}  {', '.join(model['classes'])}  "
              f"{model['calibration']}  {model['path']}")
    return 0


def run_install(args: argparse.Namespace) -> int:
    from ..model.registry import install_model

    entry = install_model(args.source, args.name, args.sha256)
    print(f"installed {entry.name} ({', '.join(entry.config.classes)}) at {entry.path}; "
          f"use it with --model {entry.name}")
    return 0
