"""`evaluate` script for PiTe's trajectory accuracy metric: `evaluate.load("<this folder>")` works offline.

The metric lives in `pite.eval.hf_metrics.TrajectoryAccuracy` (documented there); this file only exposes it to
`evaluate.load`, which picks the first `evaluate.Metric` subclass of the module. One import per line: `evaluate`
scans them.
"""

from pite.eval.hf_metrics import TrajectoryAccuracy

__all__ = ["TrajectoryAccuracy"]
