"""`evaluate` script for PiTe's temporal grounding metric: `evaluate.load("<this folder>")` works offline.

The metric lives in `pite.eval.hf_metrics.TemporalGrounding` (documented there); this file only exposes it to
`evaluate.load`, which picks the first `evaluate.Metric` subclass of the module. One import per line: `evaluate`
scans them.
"""

from pite.eval.hf_metrics import TemporalGrounding

__all__ = ["TemporalGrounding"]
