"""Training: folds, callbacks, schedules, the run lifecycle (run), the phase trainer (phases), the
trainer, parallel folds, run records."""

__all__: list[str] = []
