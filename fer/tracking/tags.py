"""The names of the tags fer writes on MLflow runs: what a user filters on in the UI and what fer reads back."""

COMMAND = "fer.command"  # the command that re-runs the job
CHECKPOINT = "fer.checkpoint"  # the best checkpoint's artifact path
CHECKPOINT_DIR = "fer.checkpoint_dir"  # the local folder of last.ckpt, for resume
GIT_COMMIT = "mlflow.source.git.commit"
GIT_DIRTY = "fer.git.dirty"
VERSION = "fer.version."  # + a package name
TEST_SPLIT = "fer.test_split"  # "val" when the data has no labeled test split
SKIPPED_ROWS = "fer.skipped_rows"  # malformed rows data.on_bad_row=skip left out
DROPPED_ROWS = "fer.dropped_rows"  # faces left out on purpose (FER+'s not-a-face and unclear ones)
EVALUATED_DATA = "fer.evaluated_data"
EXPLAIN_NOTES = "fer.explain.notes"

ROLE = "fer.role"  # SWEEP_ROLE on a sweep's parent run
SWEEP_ROLE = "sweep"
PARENT_RUN = "mlflow.parentRunId"
SWEEP = "fer.sweep"  # the parent run id, on each child
SWEEP_DIR = "fer.sweep_dir"
OVERRIDES = "fer.overrides"  # a child's own overrides
JOB = "fer.job"  # a child's Hydra job number
PREEMPTED = "fer.preempted"  # on a child: how many times a cluster preempted it (it is requeued, then resumed)
BEST_RUN = "fer.best_run"  # on a parent: its child with the best val acc
OPTUNA = "fer.optuna."  # + best_trial, best_value, best_run, study, direction
PRUNED = "fer.optuna.pruned"  # on a trial's run the pruner stopped: when, and at what val_acc
RETRIED = "fer.optuna.retried"  # on a failed trial's run: the trial that runs its parameters again
BEST_TRIAL = "fer.optuna.best"  # on the best trial's run

EXPERIMENT_KIND = "mlflow.experimentKind"  # the MLflow UI opens an experiment of MODEL_TRAINING on its training side
MODEL_TRAINING = "custom_model_development"
NOTE = "mlflow.note.content"  # the run's description in the UI
DATASET_CONTEXT = "mlflow.data.context"  # on a run's dataset input: training, validation or test
CLASS_COUNTS = "fer.class_counts"  # on a dataset input: rows per class, in label order
CLASSES = "fer.classes"  # on a dataset input: the class names, in label order
LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"  # the run's artifacts the UI shows as tables
