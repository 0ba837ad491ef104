"""`python -m fer.bench`: how fast fer trains, against the conventional per-sample pipeline kept here as its
baseline. Imports the training rooms; nothing imports the bench."""
