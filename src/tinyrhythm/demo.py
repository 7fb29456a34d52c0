"""The demonstration: the default model over the sample recording (tinyrhythm.samples), end to end.

What `make demo` and `tinyrhythm demo` run: monitor the sample (tinyrhythm.samples),
compare with its reference annotations, and write what a user of `monitor` and `report`
gets (WFDB rhythm annotations, episode and window CSVs, JSON, the HTML report) to one
folder. Needs no dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import samples
from .monitor import MonitorResult, monitor
from .monitor.evaluate import evaluate_episodes, read_reference
from .monitor.output import write_outputs
from .report import record_report, write_page
from .zoo import DEFAULT_RHYTHM_MODEL


@dataclass
class DemoResult:
    result: MonitorResult
    evaluation: dict  # against the sample's reference annotations (monitor.evaluate)
    outputs: list[Path]  # every file written, the report last
    report: Path


def run_demo(out: str | os.PathLike = "demo", model: str = DEFAULT_RHYTHM_MODEL, sample: str = samples.DEFAULT) -> DemoResult:
    record = samples.path(sample)
    result = monitor(record, model)
    evaluation = evaluate_episodes(result, read_reference(result, "atr"))
    written = write_outputs(result, out, "tr", evaluation)
    page = record_report(record, model, reference="atr", result=result)
    report = write_page(page, Path(out) / f"{result.record}_report.html")
    return DemoResult(result, evaluation, [*written, report], report)
