"""Frozen-feature evaluation: linear, last-k, attentive and kNN probes, streamed from disk.

    from jepa_torch.evaluation import EvalConfig, evaluate
    report = evaluate("runs/demo/checkpoints/step_00000946.pt")          # the run's held-out split
    report = evaluate("IN1K-vit.h.14-300e.pth.tar", train="imagenet/train", val="imagenet/val",
                      config=EvalConfig(low_shot=("1%",), device="cuda"))
    print(report.table())

See docs/evaluation.md for the protocol.
"""

from jepa_torch.evaluation.features import EvaluationError as EvaluationError
from jepa_torch.evaluation.online import linear_probe_accuracy as linear_probe_accuracy
from jepa_torch.evaluation.probes import AttentiveProbe as AttentiveProbe
from jepa_torch.evaluation.probes import HeadGrid as HeadGrid
from jepa_torch.evaluation.probes import knn_predict as knn_predict
from jepa_torch.evaluation.protocol import PROBES as PROBES
from jepa_torch.evaluation.protocol import EvalConfig as EvalConfig
from jepa_torch.evaluation.protocol import EvalReport as EvalReport
from jepa_torch.evaluation.protocol import LowShotScore as LowShotScore
from jepa_torch.evaluation.protocol import ProbeScore as ProbeScore
from jepa_torch.evaluation.protocol import evaluate as evaluate
from jepa_torch.evaluation.protocol import peak_rss_mib as peak_rss_mib
from jepa_torch.evaluation.protocol import write_json as write_json

__all__ = ["PROBES", "AttentiveProbe", "EvalConfig", "EvalReport", "EvaluationError", "HeadGrid", "LowShotScore",
           "ProbeScore", "evaluate", "knn_predict", "linear_probe_accuracy", "peak_rss_mib", "write_json"]
