"""Knowledge distillation as a compression method: `tinyrhythm distill` trains a student with
the training loop's distillation loss (tinyrhythm.train.distill), which lives with training
so that the loop needs nothing from compression."""

from ..train.distill import check_settings, distillation_loss, load_teacher  # noqa: F401
