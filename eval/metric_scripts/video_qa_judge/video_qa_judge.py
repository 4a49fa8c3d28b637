"""`evaluate` script for PiTe's video qa judge metric: `evaluate.load("<this folder>")` works offline.

The metric lives in `pite.eval.hf_metrics.VideoQAJudge` (documented there); this file only exposes it to
`evaluate.load`, which picks the first `evaluate.Metric` subclass of the module. One import per line: `evaluate`
scans them.
"""

from pite.eval.hf_metrics import VideoQAJudge

__all__ = ["VideoQAJudge"]
