"""fer's Hydra configs, `conf/<group>/<option>.yaml`: installed as the package `fer.conf`, so a wheel carries them."""
