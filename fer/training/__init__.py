"""Training: the LightningModule, its Trainer, optimizers and schedules, EMA, test-time augmentation, and how a
fit meets an early end. Imports fer.data, fer.models and the leaves below them; never tracking, sweeps or explain."""
