"""What every FER2013 release shares: the seven classes in label order and the 48×48 grayscale face."""

EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
NUM_CLASSES = len(EMOTIONS)
IMAGE_SIZE = 48
PIXELS = IMAGE_SIZE * IMAGE_SIZE
TRAINING_ROWS = 28709  # rows of FER2013's Training split: one epoch of the real data
