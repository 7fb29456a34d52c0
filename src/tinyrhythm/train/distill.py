"""Knowledge distillation: a small student learns from a larger teacher's softened outputs.

The loss (Hinton et al. 2015) is alpha * CE(labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T);
the T^2 keeps the soft term's gradients on the same scale whatever the temperature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import TinyRhythmError
from ..runtime import load_model


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      alpha: float, temperature: float) -> torch.Tensor:
    hard = F.cross_entropy(student_logits, labels)
    if alpha >= 1.0:
        return hard
    t = temperature
    soft = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                    reduction="batchmean", log_target=True)
    return alpha * hard + (1.0 - alpha) * t * t * soft


def check_settings(alpha: float, temperature: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise TinyRhythmError(f"kd_alpha must lie in [0, 1], got {alpha}")
    if temperature <= 0:
        raise TinyRhythmError(f"kd_temperature must be positive, got {temperature}")


class _BalancedTeacher(torch.nn.Module):
    """A teacher's logits with its prior correction taken out again."""

    def __init__(self, model: torch.nn.Module, offsets: list[float]):
        super().__init__()
        self.model = model
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) - self.offsets


def load_teacher(name_or_path: str, classes: list[str], fs: float, input_length: int, balanced: bool = True):
    """The teacher model, refused unless it predicts the same classes from the same windows.

    With `balanced` (the student samples classes equally), a teacher whose head carries a
    prior correction (logit offsets folded in after its own balanced training, for the
    deployment class mix) teaches without it: its soft targets are then in the same balanced
    frame as the student's labels, and the student gets its own correction after training.
    Taught with the offsets in, the student learns the deployment prior from the teacher and
    the opposite one from its sampling (measured, README)."""
    lm = load_model(name_or_path)
    if list(lm.classes) != list(classes):
        raise TinyRhythmError(f"teacher {name_or_path}: label set {lm.classes} differs from the student's {list(classes)}")
    if float(lm.fs) != float(fs) or int(lm.input_length) != int(input_length):
        raise TinyRhythmError(f"teacher {name_or_path}: windows of {lm.input_length} samples at {lm.fs} Hz, "
                              f"the student's are {input_length} at {fs} Hz")
    for p in lm.model.parameters():
        p.requires_grad_(False)
    offsets = lm.card.logit_offsets
    if balanced and offsets:
        return _BalancedTeacher(lm.model.eval(), offsets).eval()
    return lm.model.eval()
