"""Explanations of trained models: what their filters respond to and which pixels drive their predictions."""
