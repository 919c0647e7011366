"""Installing ConfidenceSeg's Python dependencies inside 3D Slicer: only what is missing, after asking.

torch comes from the PyTorch extension (``PyTorchUtils.installTorch``, given the version this
project needs), so its CUDA build matches the driver; it is never installed or replaced from PyPI
here: when the other packages are installed, the installed torch is pinned so that pip keeps it.
Versions are compared with the requirements, not only names. In testing mode (Slicer's
``--testing``, CTest) nothing is installed: PyTorchUtils skips its confirmation there and would pull
torch from the network, so a missing package is an error that names what to install.
"""

from importlib import metadata

import slicer

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.slicer import process as slicer_process


def ensure_dependencies(requirements_path, torch_requirement_path):
    """Install what is missing or too old; False if the user declined."""
    try:
        import PyTorchUtils
    except ImportError:
        raise ConfidenceSegError("the PyTorch extension is required: install it from the Extensions Manager") from None
    torch_spec = slicer_process.torch_requirement(torch_requirement_path)
    torch_logic = PyTorchUtils.PyTorchUtilsLogic()
    testing = slicer.app.commandOptions().testingEnabled
    if testing and (not torch_logic.torchInstalled() or slicer_process.missing_requirements(requirements_path)):
        raise ConfidenceSegError("ConfidenceSeg's Python packages (torch among them) are not installed, and "
                                 "nothing is installed in testing mode: install them first")
    if not torch_logic.torchInstalled():
        if torch_logic.installTorch(askConfirmation=True, torchVersionRequirement=torch_spec) is None:
            return False
    elif problem := slicer_process.unmet_requirement(f"torch{torch_spec}"):
        raise ConfidenceSegError(f"ConfidenceSeg needs torch{torch_spec} ({problem}): update it in the PyTorch Utils "
                                 "module (uninstall, restart, install)")
    missing = slicer_process.missing_requirements(requirements_path)
    if not missing:
        return True
    if not slicer.util.confirmOkCancelDisplay(
            "ConfidenceSeg needs these Python packages:\n" + "\n".join(missing) + "\n\nInstall them now?"):
        return False
    slicer.util.pip_install(missing + [f"torch=={metadata.version('torch')}"])  # keep the extension's torch
    return True
