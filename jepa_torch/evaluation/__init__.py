"""Frozen-feature evaluation: linear, last-k, attentive and kNN probes, streamed from disk.

    from jepa_torch.evaluation import EvalConfig, evaluate
    report = evaluate("runs/demo/checkpoints/step_00000946.pt")          # the run's held-out split
    report = evaluate("IN1K-vit.h.14-300e.pth.tar", train="imagenet/train", val="imagenet/val",
                      config=EvalConfig(low_shot=("1%",), device="cuda"))
    print(report.table())

See docs/evaluation.md for the protocol.
"""

from .features import EvaluationError as EvaluationError
from .online import linear_probe_accuracy as linear_probe_accuracy
from .probes import AttentiveProbe as AttentiveProbe
from .probes import HeadGrid as HeadGrid
from .probes import knn_predict as knn_predict
from .protocol import PROBES as PROBES
from .protocol import EvalConfig as EvalConfig
from .protocol import EvalReport as EvalReport
from .protocol import LowShotScore as LowShotScore
from .protocol import ProbeScore as ProbeScore
from .protocol import evaluate as evaluate
from .protocol import peak_rss_mib as peak_rss_mib
from .protocol import write_json as write_json

__all__ = ["PROBES", "AttentiveProbe", "EvalConfig", "EvalReport", "EvaluationError", "HeadGrid", "LowShotScore",
           "ProbeScore", "evaluate", "knn_predict", "linear_probe_accuracy", "peak_rss_mib", "write_json"]
