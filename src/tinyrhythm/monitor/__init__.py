"""Continuous rhythm monitoring of long recordings: episodes, AF burden, evaluation."""

from .analyse import MonitorConfig, MonitorResult, monitor
from .episodes import UNREADABLE, Episode

__all__ = ["Episode", "MonitorConfig", "MonitorResult", "UNREADABLE", "monitor"]
