"""Several processes, one MLflow run, whoever launched them: Lightning's own DDP launcher (which re-runs the
command for ranks > 0), torchrun, srun, or submitit with several tasks. The launcher's environment gives each
process its global rank; rank 0 opens the run and the others join it, learning its id from rank 0 by a broadcast
once the process group is up (`ShareRun`): nothing but the process group has to be shared, so it works the same
under every launcher. Joined ranks never write to the run."""

from __future__ import annotations

import os

import pytorch_lightning as pl

from fer.console import say
from fer.runs.launchers import this_launcher


def export_launcher_tasks() -> None:
    """In a job of a launcher that gives it its own allocation (submitit) with several tasks, the
    torch.distributed variables (RANK, WORLD_SIZE, MASTER_ADDR, …) from its job environment, as torchrun would set
    them; nothing otherwise."""
    launcher = this_launcher()
    if "RANK" in os.environ or not (launcher and launcher.ddp):
        return
    import submitit

    env = submitit.JobEnvironment()
    if env.num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def global_rank() -> int:
    """This process's rank among the training processes, from its launcher's environment; 0 when alone."""
    env = os.environ
    if "RANK" in env:  # torchrun, submitit (exported above)
        return int(env["RANK"])
    if "LOCAL_RANK" in env or "NODE_RANK" in env:  # Lightning's launcher re-runs the command for the other ranks
        return int(env.get("NODE_RANK", "0") != "0" or env.get("LOCAL_RANK", "0") != "0")
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:  # srun with several tasks
        return int(env["SLURM_PROCID"])
    return 0


class ShareRun(pl.Callback):
    """Once the process group is up (a fit's or a test's setup), every rank holds rank 0's run id."""

    def __init__(self, run):
        self.run = run

    def setup(self, trainer, pl_module, stage):
        if trainer.world_size > 1:
            self.run.run_id = trainer.strategy.broadcast(self.run.run_id, src=0)
            if stage == "fit" and trainer.is_global_zero:  # in Lightning's words too, which stay off the terminal
                say(f"{trainer.world_size} processes train run {self.run.run_id} "
                    f"({trainer.num_nodes} node{'s' * (trainer.num_nodes > 1)})")
