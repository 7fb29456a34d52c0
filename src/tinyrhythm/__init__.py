"""tinyrhythm: tiny CNNs for AF, flutter, normal rhythm and noise in single-lead ECG."""

__version__ = "0.1.0"
