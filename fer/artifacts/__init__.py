"""What describes a finished run, written into its MLflow artifacts: the model summary, the confusion matrix and
its most confused pairs, the training curves. Imports fer.models and the leaves; writes through a given client."""
