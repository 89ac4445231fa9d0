"""The online probe of the training monitor: a linear probe fitted in memory on a few hundred rows.

The monitor (``jepa_torch.evaluation.monitor``) fits it every ``run.monitor_every`` steps on a fixed batch, so it
must be quick and need no tuning: scikit-learn's logistic regression on standardised features at one
inverse regularisation ``C`` (or ``C`` chosen by 3-fold stratified cross-validation on the training
rows alone when a grid is given). The full evaluation's probes are in :mod:`.probes`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["C_GRID", "linear_probe_accuracy"]

C_GRID = tuple(float(c) for c in np.logspace(-3, 1, 5))


def linear_probe_accuracy(train_x: NDArray[np.floating], train_y: NDArray[np.integer],
                          test_x: NDArray[np.floating], test_y: NDArray[np.integer], seed: int = 0,
                          c_grid: Sequence[float] = C_GRID) -> tuple[float, float]:
    """Held-out accuracy of a standardised logistic-regression probe, and the chosen ``C``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if len(c_grid) == 1:
        pipe.set_params(logisticregression__C=c_grid[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe.fit(train_x, train_y)
        return float(pipe.score(test_x, test_y)), float(c_grid[0])
    search = GridSearchCV(pipe, {"logisticregression__C": list(c_grid)},
                          cv=StratifiedKFold(3, shuffle=True, random_state=seed), n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # lbfgs at the largest C; the CV still ranks it
        search.fit(train_x, train_y)
    return float(search.score(test_x, test_y)), float(search.best_params_["logisticregression__C"])
