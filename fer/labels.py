"""The seven FER2013 classes, in label order."""

EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
NUM_CLASSES = len(EMOTIONS)
IMAGE_SIZE = 48
