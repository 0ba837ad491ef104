"""fer: run, track and explain facial-expression-recognition experiments on FER2013."""

__version__ = "0.1.0"
