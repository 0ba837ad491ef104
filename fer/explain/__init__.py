"""Explanations of trained models: which pixels drive a prediction (Captum) and what a layer's filters respond
to, rendered into the run. Imports fer.data, fer.models and the leaves; never training code, sweeps or tracking
beyond its tag names."""
