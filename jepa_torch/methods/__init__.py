"""Training methods, one module each behind one Protocol (:class:`Method`), and the registry.

    from jepa_torch.methods import get_method
    method = get_method(cfg.method.name)   # what the loop, resume, evaluation and export ask

``ijepa`` (:mod:`.ijepa`), ``lejepa`` (:mod:`.lejepa`) and ``vjepa`` (:mod:`.vjepa`, on videos) are registered on
import; a new method is
one module that defines a :class:`Method` and calls :func:`register`.
"""

from jepa_torch.methods.base import Method as Method
from jepa_torch.methods.base import RunInfo as RunInfo
from jepa_torch.methods.base import Stepper as Stepper
from jepa_torch.methods.base import Supports as Supports
from jepa_torch.methods.base import encoder_of as encoder_of
from jepa_torch.methods.ijepa import IJEPA as IJEPA
from jepa_torch.methods.lejepa import LeJEPAMethod as LeJEPAMethod
from jepa_torch.methods.vjepa import VJEPAMethod as VJEPAMethod
from jepa_torch.methods.registry import get_method as get_method
from jepa_torch.methods.registry import load_model as load_model
from jepa_torch.methods.registry import method_names as method_names
from jepa_torch.methods.registry import register as register

register(IJEPA())
register(LeJEPAMethod())
register(VJEPAMethod())

__all__ = ["IJEPA", "LeJEPAMethod", "VJEPAMethod", "Method", "RunInfo", "Stepper", "Supports", "encoder_of", "get_method",
           "load_model", "method_names", "register"]
