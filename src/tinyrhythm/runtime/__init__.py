"""The model runtime: model cards, `load_model` and one backend per file format.

Layered below training, compression, export and monitoring, above models and the zoo's
data: everything that runs a trained model gets it from here.
"""

from .card import FORMATS, ModelCard
from .load import BACKENDS, LoadedModel, card_of, load_model, register_backend

__all__ = ["BACKENDS", "FORMATS", "LoadedModel", "ModelCard", "card_of", "load_model", "register_backend"]
