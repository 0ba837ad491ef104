"""Data: the readers of each FER2013 release, synthetic faces, splits, augmentation and the Lightning data module.
Imports only fer.errors, fer.labels and fer.registry."""
