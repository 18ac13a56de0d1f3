"""The one training path: fold trainer, trainer factory, result type, fit over folds, evaluation."""
