"""What a run records about itself: its config as params, its name, and what re-running it months later needs
(the command, the code and the package versions)."""

from __future__ import annotations

import shlex
import subprocess
from importlib import metadata
from pathlib import Path

from mlflow.tracking.context.registry import resolve_tags
from omegaconf import DictConfig, OmegaConf

from fer.tracking import tags

TRAIN_COMMAND = ("python", "-m", "fer.train")
PACKAGES = ("torch", "pytorch-lightning", "torchmetrics", "hydra-core", "mlflow", "kornia", "captum", "numpy")


def run_name(cfg: DictConfig) -> str:
    """`<model>-<act>-<norm>-<aug>`, with the matched model for a DNN (`dnn~vgg16-…`)."""
    model = cfg.model.name + (f"~{cfg.model.match}" if cfg.model.get("match") else "")
    return cfg.run_name or f"{model}-{cfg.act.name}-{cfg.norm.name}-{cfg.aug.name}"


def flatten(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as dotted keys (`model.name`, `optim.lr`, …), values as MLflow params."""
    out: dict[str, str] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = str(node)

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out


def git(*args: str) -> str | None:
    """A git command's output in fer's own checkout; None outside one (an installed wheel) or without git."""
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def git_tags() -> dict[str, str]:
    """The commit, and whether tracked files differed from it: such a run cannot be re-run from the commit."""
    commit = git("rev-parse", "HEAD")
    if not commit:
        return {tags.GIT_COMMIT: "unknown"}
    changes = git("status", "--porcelain", "--untracked-files=no")
    return {tags.GIT_COMMIT: commit, tags.GIT_DIRTY: "unknown" if changes is None else str(bool(changes))}


def provenance_tags(overrides: list[str]) -> dict[str, str]:
    """What re-running this run months later needs: the command (this job's overrides, also inside a
    multirun sweep), the code and the package versions; with the context tags `mlflow.start_run` would set
    (user, source name and type), so the UI shows who ran it from what."""
    found = {**resolve_tags(), tags.COMMAND: shlex.join([*TRAIN_COMMAND, *overrides]), **git_tags()}
    for pkg in PACKAGES:
        try:
            found[tags.VERSION + pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return found


def description(cfg: DictConfig, params: dict, test_acc: float, command: str, any_vote_acc: float | None = None
                ) -> str:
    """The run's note in the UI: what was trained on what, how well, and how to do it again."""
    data = cfg.data.path or f"synthetic faces (seed {cfg.data.seed})"
    scored = "" if any_vote_acc is None else (
        f" against FER+'s majority label; {any_vote_acc:.4f} of the predictions are a class at least one annotator "
        f"voted for (training: data.label_mode={cfg.data.label_mode})")
    return (f"**{run_name(cfg)}**: {cfg.model.name} with {cfg.act.name}, {int(params['params_total']):,} parameters, "
            f"trained {cfg.trainer.max_epochs} epochs on {cfg.data.name} ({data}; {params['data.rows_train']} "
            f"training rows), optimizer {cfg.optim.name} lr {cfg.optim.lr}.\n\n"
            f"Test accuracy: **{test_acc:.4f}**{scored}.\n\nReproduce: `{command}`\n")
