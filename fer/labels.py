"""What every FER2013 release shares: the 48×48 grayscale face and its seven classes in label order, and the
other class sets a data set may bring (FER+'s eight), which a run then carries in its data, model and metrics."""

from fer.registry import Registry

EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
NUM_CLASSES = len(EMOTIONS)
FERPLUS_EMOTIONS = ("Neutral", "Happiness", "Surprise", "Sadness", "Anger", "Disgust", "Fear", "Contempt")
CLASS_SETS = Registry("data.classes", {"fer2013": EMOTIONS, "ferplus": FERPLUS_EMOTIONS})
IMAGE_SIZE = 48
PIXELS = IMAGE_SIZE * IMAGE_SIZE
TRAINING_ROWS = 28709  # rows of FER2013's Training split: one epoch of the real data
