"""Installing ConfidenceSeg's Python dependencies inside 3D Slicer, after asking the user.

torch comes from the PyTorch extension (``PyTorchUtils``), so its CUDA build matches the driver;
it is never installed from PyPI here. The other requirements are installed only when missing.
"""

import slicer

from ConfidenceSegLib.contract import ConfidenceSegError
from ConfidenceSegLib.slicer import process as slicer_process


def ensure_dependencies(requirements_path):
    """Install torch (PyTorch extension) and the other packages on first use; False if the user declined."""
    try:
        import PyTorchUtils
    except ImportError:
        raise ConfidenceSegError("the PyTorch extension is required: install it from the Extensions Manager") from None
    torch_logic = PyTorchUtils.PyTorchUtilsLogic()
    if not torch_logic.torchInstalled() and torch_logic.installTorch(askConfirmation=True) is None:
        return False
    try:
        import slicer.pydeps as pydeps
    except ImportError:
        pydeps = getattr(slicer, "packaging", None)
    if pydeps is not None and hasattr(pydeps, "pip_ensure"):
        pydeps.pip_ensure(pydeps.load_requirements(requirements_path), skip_packages=["torch", "SimpleITK"],
                          requester="ConfidenceSeg")
        return True
    missing = slicer_process.missing_requirements(requirements_path)
    if missing:
        if not slicer.util.confirmOkCancelDisplay(
                "ConfidenceSeg needs these Python packages:\n" + "\n".join(missing) + "\n\nInstall them now?"):
            return False
        slicer.util.pip_install(missing)
    return True
