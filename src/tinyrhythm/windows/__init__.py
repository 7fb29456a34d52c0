"""From records to labelled fixed-length windows: resampling, labelling, split, store."""

from .labelling import WindowConfig, label_windows, make_windows
from .resample import resample
from ..datasets.split import SPLITS, assign_split

__all__ = ["WindowConfig", "label_windows", "make_windows", "resample", "SPLITS", "assign_split"]
