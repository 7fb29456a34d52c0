"""Tasks as data: which classes a model predicts and which rhythm labels feed each.

Readers emit canonical rhythm labels (tinyrhythm.datasets.record: N, AFIB, AFL,
OTHER, NOISE). A task maps them to its classes; labels a task does not map are left
out of its windows (e.g. OTHER rhythms in the study's 3 classes).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import TinyRhythmError


@dataclass(frozen=True)
class Task:
    name: str
    classes: tuple[str, ...]
    label_map: dict  # canonical rhythm label -> class name
    description: str

    def class_index(self, rhythm_label: str) -> int:
        """Class index of a canonical rhythm label, or -1 if the task leaves it out."""
        name = self.label_map.get(rhythm_label)
        return -1 if name is None else self.classes.index(name)

    def to_dict(self) -> dict:
        return {"name": self.name, "classes": list(self.classes), "label_map": dict(self.label_map)}


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "study3",
            ("normal", "arrhythmia", "noise"),
            {"N": "normal", "AFIB": "arrhythmia", "AFL": "arrhythmia", "NOISE": "noise"},
            "The study's 3 classes: normal rhythm; arrhythmia = AF or flutter; noise.",
        ),
        Task(
            "rhythm3",
            ("normal", "arrhythmia", "noise"),
            # Every non-AF rhythm (sinus with ectopy, bigeminy, SVTA, VT, ...) is "normal":
            # the clinical question is AF or flutter, and these are where detectors false-alarm.
            {"N": "normal", "OTHER": "normal", "AFIB": "arrhythmia", "AFL": "arrhythmia", "NOISE": "noise"},
            "Recorder-independent rhythm task: normal = any non-AF rhythm; arrhythmia = AF or flutter; noise.",
        ),
        Task(
            "rhythm4",
            ("normal", "other", "arrhythmia", "noise"),
            {"N": "normal", "OTHER": "other", "AFIB": "arrhythmia", "AFL": "arrhythmia", "NOISE": "noise"},
            "rhythm3 with non-AF rhythms other than sinus (ectopy runs, SVTA, VT, bigeminy, CinC 'O') apart.",
        ),
        Task(
            "icentia4",
            ("noise", "NSR", "AFib", "AFL"),
            {"NOISE": "noise", "N": "NSR", "AFIB": "AFib", "AFL": "AFL"},
            "Icentia11k's own rhythm types: noise, NSR, AFib, AFlutter.",
        ),
        Task(
            "cinc2017",
            ("N", "A", "O", "~"),
            # Flutter is not AF in the challenge's terms: it is an "other rhythm".
            {"N": "N", "AFIB": "A", "AFL": "O", "OTHER": "O", "NOISE": "~"},
            "PhysioNet/CinC 2017: normal, AF, other rhythm, too noisy to classify.",
        ),
    )
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise TinyRhythmError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None
