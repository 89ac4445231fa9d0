"""Training methods, one module each behind one Protocol (:class:`Method`), and the registry.

    from jepa_torch.methods import get_method
    method = get_method(cfg.method.name)   # what the loop, resume, evaluation and export ask

``ijepa`` (:mod:`.ijepa`) and ``lejepa`` (:mod:`.lejepa`) are registered on import; a new method is
one module that defines a :class:`Method` and calls :func:`register`.
"""

from .base import Method as Method
from .base import RunInfo as RunInfo
from .base import Stepper as Stepper
from .base import Supports as Supports
from .base import encoder_of as encoder_of
from .ijepa import IJEPA as IJEPA
from .lejepa import LeJEPAMethod as LeJEPAMethod
from .registry import get_method as get_method
from .registry import load_model as load_model
from .registry import method_names as method_names
from .registry import register as register

register(IJEPA())
register(LeJEPAMethod())

__all__ = ["IJEPA", "LeJEPAMethod", "Method", "RunInfo", "Stepper", "Supports", "encoder_of", "get_method",
           "load_model", "method_names", "register"]
