"""The SS(.) training paradigms, selected by `ssl.method`."""

from aslseg.ssl.methods.base import Batch, Method
from aslseg.ssl.methods.bcp import BidirectionalCopyPaste
from aslseg.ssl.methods.cps import CrossPseudoSupervision
from aslseg.ssl.methods.mean_teacher import MeanTeacher
from aslseg.ssl.methods.supervised import Supervised
from aslseg.ssl.methods.uamt import UncertaintyAwareMeanTeacher

METHODS: dict[str, type[Method]] = {
    "supervised": Supervised,
    "mean_teacher": MeanTeacher,
    "uamt": UncertaintyAwareMeanTeacher,
    "cps": CrossPseudoSupervision,
    "bcp": BidirectionalCopyPaste,
}

__all__ = ["METHODS", "Batch", "Method"]
