"""Loading a Keras model file safely: `.keras` archives in safe mode (no code in the archive
runs), legacy `.h5` only when asked, with candleflow's own layers registered."""

from __future__ import annotations

import zipfile
from pathlib import Path

from candleflow.errors import RegistryError
from candleflow.models.backend import keras
from candleflow.models.networks import CausalSelfAttention, PositionEmbedding, TimeDense
from candleflow.models.panel_model import MaskedSparseCrossEntropy, TickerContext, TickerFold

# candleflow's own layers that a saved model may name (registered; listed here for load_model)
CUSTOM_OBJECTS = {
    "candleflow>PositionEmbedding": PositionEmbedding,
    "candleflow>CausalSelfAttention": CausalSelfAttention,
    "candleflow>TimeDense": TimeDense,
    "candleflow>MaskedSparseCrossEntropy": MaskedSparseCrossEntropy,
    "candleflow>TickerFold": TickerFold,
    "candleflow>TickerContext": TickerContext,
}


def load_model_file(path: str | Path, allow_legacy_h5: bool = False):
    """A model from a `.keras` file (safe_mode: no code in the archive runs) or, only with
    `allow_legacy_h5`, a legacy `.h5` file, which Keras loads without safe_mode's protection."""
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"{path}: no such model file")
    if path.suffix.lower() in (".h5", ".hdf5"):
        if not allow_legacy_h5:
            raise RegistryError(
                f"{path}: legacy .h5 model refused (h5 loading ignores safe_mode and can run code "
                f"stored in the file); pass --allow-legacy-h5 if you trust it, then re-save as .keras"
            )
    elif path.suffix.lower() != ".keras":
        raise RegistryError(f"{path}: expected a .keras model file (or .h5 with --allow-legacy-h5)")
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise RegistryError(f"{path}: not a .keras model (a .keras file is a ZIP archive); damaged or not a model")
    try:
        return keras.saving.load_model(path, safe_mode=True, custom_objects=CUSTOM_OBJECTS)
    except Exception as exc:  # keras raises many types for a damaged file
        raise RegistryError(f"{path}: cannot load ({type(exc).__name__}: {exc})") from None


def model_from(state: dict | None, build):
    """The model saved with a resume state (optimizer state included, loaded in safe_mode), else build()."""
    return build() if state is None else load_model_file(state["model_path"])
