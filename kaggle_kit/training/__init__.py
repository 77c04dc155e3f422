"""Training: folds, callbacks, schedules, the two-phase trainer, parallel folds, run records."""
