"""Training: the LightningModule, its Trainer, optimizers and schedules, EMA, test-time augmentation, the time
budget, and a diverging loss stopped at once. Imports fer.data, fer.models and the leaves below them; never
tracking, runs, sweeps or explain."""
