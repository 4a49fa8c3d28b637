"""`evaluate` script for PiTe's dense video captioning metric: `evaluate.load("<this folder>")` works offline.

The metric lives in `pite.eval.hf_metrics.DenseVideoCaptioning` (documented there); this file only exposes it to
`evaluate.load`, which picks the first `evaluate.Metric` subclass of the module. One import per line: `evaluate`
scans them.
"""

from pite.eval.hf_metrics import DenseVideoCaptioning

__all__ = ["DenseVideoCaptioning"]
