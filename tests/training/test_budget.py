"""Training to a time budget: the laptop recipe end to end, its schedule completed on time, and a re-plan's schedule."""

from __future__ import annotations

import shutil

import pytest
import torch
from helpers import call_fer, only_run
from omegaconf import OmegaConf

from fer.training import budget
from fer.training.budget import MIN_TIMED_STEPS, TIMED_STEPS, WARMUP_STEPS, TimeBudget
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


def test_a_machine_too_slow_to_time_twenty_steps_plans_from_fewer_and_still_ends_on_time(monkeypatch):
    """A step of 2 s against a 1-minute budget: timing 20 steps (with the warm-up, 50 s) would leave no time to
    plan; the first plan comes once timing has taken 5 % of the budget, and its steps fit what is left."""
    clock = [0.0]
    monkeypatch.setattr(budget.time, "monotonic", lambda: clock[0])
    callback = TimeBudget(minutes=1, started=0.0)
    trainer = type("Trainer", (), {"global_step": 0, "num_training_batches": 100, "num_val_batches": [10],
                                   "fit_loop": type("FitLoop", (), {})(), "lr_scheduler_configs": [],
                                   "logger": None, "should_stop": False})()
    callback.setup(trainer, None, "fit")
    callback.on_train_start(trainer, None)
    while callback.total is None and trainer.global_step < WARMUP_STEPS + TIMED_STEPS:
        clock[0] += 2.0
        trainer.global_step += 1
        callback.on_train_batch_end(trainer, None, None, None, trainer.global_step)
    assert trainer.global_step == WARMUP_STEPS + MIN_TIMED_STEPS and callback.step_s == 2.0
    boundary = 2.0 * 10 / 3  # the first plan's guess of an epoch's end: a validation pass
    assert clock[0] + (callback.total - trainer.global_step) * 2.0 + boundary <= 60.0  # the plan ends in time
    assert clock[0] + (callback.total - trainer.global_step + 1) * 2.0 + boundary > 60.0  # and uses it


def test_a_machine_that_slows_down_mid_fit_still_ends_on_time_with_short_epochs(monkeypatch):
    """Epochs of 8 steps, each step 1 s until 30 s into a 1-minute budget and 2 s after (another job started): each
    epoch's own steps re-measure the rate, so the plan shrinks and the fit ends within the last validation of the
    deadline (timing only 20-step stretches, no epoch here would ever have been re-measured)."""
    clock = [0.0]
    monkeypatch.setattr(budget.time, "monotonic", lambda: clock[0])
    callback = TimeBudget(minutes=1, started=0.0)
    trainer = type("Trainer", (), {"global_step": 0, "current_epoch": 0, "num_training_batches": 8,
                                   "num_val_batches": [2], "fit_loop": type("FitLoop", (), {})(),
                                   "lr_scheduler_configs": [], "logger": None, "should_stop": False})()
    callback.setup(trainer, None, "fit")
    callback.on_train_start(trainer, None)
    while not trainer.should_stop:
        callback.on_train_epoch_start(trainer, None)
        for _ in range(8):
            clock[0] += 1.0 if clock[0] < 30 else 2.0
            trainer.global_step += 1
            callback.on_train_batch_end(trainer, None, None, None, trainer.global_step)
            if trainer.should_stop:
                break
        callback.on_train_epoch_end(trainer, None)
        clock[0] += 0.5  # validation, checkpoints
        trainer.current_epoch += 1
    assert trainer.global_step == callback.total and 60.0 - 2.0 <= clock[0] <= 60.0


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
