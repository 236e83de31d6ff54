"""candleflow: exchange candles to leak-free datasets and trained, evaluated, versioned models."""

__version__ = "0.1.0"

from .candles import Candles  # noqa: E402
from .config import RunConfig, load_config  # noqa: E402
from .features import compute_features  # noqa: E402
from .labels import competitive_labels, one_hot  # noqa: E402
from .split import chronological_split  # noqa: E402
from .validate import RawCandles, ValidationReport, validate_candles  # noqa: E402
from .windows import WindowDataset  # noqa: E402

__all__ = ["Candles", "RawCandles", "RunConfig", "ValidationReport", "WindowDataset", "chronological_split",
           "competitive_labels", "compute_features", "load_config", "one_hot", "validate_candles"]
