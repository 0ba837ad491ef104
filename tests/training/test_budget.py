"""Training to a time budget: the laptop recipe end to end, its schedule completed on time, and a re-plan's schedule."""

from __future__ import annotations

import shutil

import pytest
import torch
from helpers import call_fer, only_run
from omegaconf import OmegaConf

from fer.training.budget import TimeBudget
from fer.training.optim import build_schedule
from fer.training.trainer import native_precision

BUDGET_MIN = 0.3


@pytest.mark.slow
def test_laptop_recipe_on_synthetic_data_ends_its_schedule_within_the_budget(tmp_path, empty_store):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = call_fer("fer.train", "experiment=laptop", "data=synthetic", "data.path=null", "data.n_train=960",
                    "data.n_val=160", "data.n_test=160", f"trainer.budget_min={BUDGET_MIN}",
                    "trainer.progress_bar=false", "tracking.log_model=false", "explain.filters.steps=10", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    client, run = only_run(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == client.get_experiment_by_name("laptop").experiment_id
    metrics, params = run.data.metrics, run.data.params
    assert params["model.name"] == "resnet" and params["trainer.budget_min"] == str(BUDGET_MIN)
    assert params["trainer.precision"] == native_precision("cpu")  # the recipe's `auto`, recorded as what ran
    planned = client.get_metric_history(run.info.run_id, "budget_planned_steps")
    assert planned and metrics["budget_steps"] == planned[-1].value  # trained the steps of the last plan
    # the one-cycle schedule ran to its end: the last step's rate is the final one, optim.lr / 25 / 1e4
    assert metrics["budget_final_lr"] == pytest.approx(0.1 / 25 / 1e4, rel=0.05)
    # and ended on time: at most the final validation (a few batches) past the deadline
    assert metrics["budget_left_s"] > -0.1 * 60 * BUDGET_MIN
    epochs = client.get_metric_history(run.info.run_id, "val_acc")
    assert len(epochs) == -(-metrics["budget_steps"] // 8)  # 960 rows at batch 128: 8 steps an epoch, the last partial
    assert "test_acc" in metrics and "test_acc" in proc.stdout


def test_a_new_plan_continues_the_schedule_it_replaces_at_the_step_reached():
    """A re-plan's schedule is the one a fit of the new length would have had, at the same step."""
    cfg = OmegaConf.create({"optim": {"lr": 0.1},
                            "sched": {"name": "onecycle", "pct_start": 0.3, "max_lr_factor": 1.0}})

    def optimizer():
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)

    class Config:  # what Lightning keeps per schedule
        reduce_on_plateau = False

    opt = optimizer()
    config = Config()
    config.scheduler = build_schedule(cfg.optim, cfg.sched, opt, 1, 1000)["scheduler"]
    for _ in range(30):
        opt.step()
        config.scheduler.step()
    trainer = type("Trainer", (), {"lr_scheduler_configs": [config]})()
    TimeBudget._reschedule(trainer, type("Module", (), {"cfg": cfg})(), total=100, epochs=1)
    reference_opt = optimizer()
    reference = build_schedule(cfg.optim, cfg.sched, reference_opt, 1, 100)["scheduler"]
    for _ in range(30):
        reference_opt.step()
        reference.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(reference_opt.param_groups[0]["lr"])
    assert opt.param_groups[0]["momentum"] == pytest.approx(reference_opt.param_groups[0]["momentum"])
    for _ in range(69):
        opt.step()
        config.scheduler.step()
    # what the 100th and last step uses: the new schedule's end, not the old one's middle
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 25 / 1e4)
