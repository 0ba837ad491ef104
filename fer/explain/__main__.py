"""`python -m fer.explain run_id=… [explain options]`: explanations of a finished run, logged into it."""

from __future__ import annotations

import torch

from fer.cli import entry_point, restore
from fer.config.validate import validate_explain
from fer.explain.render import MlflowSink, check_layers, render_into_run


@entry_point("explain_run")
def main(cfg) -> None:
    validate_explain(cfg.explain)
    client, r = restore(cfg.tracking.uri, cfg.run_id, cfg.get("data"))
    use_gpu = cfg.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    module = r.module.to("cuda" if use_gpu else "cpu")
    check_layers(module.net, cfg.explain)
    sink = MlflowSink(client, cfg.run_id)
    notes = render_into_run(module, r.splits.val, cfg.explain, sink)
    root = client.get_run(cfg.run_id).info.artifact_uri
    print(f"fer: logged {len(sink.written)} figures into run {cfg.run_id} at {root}:")
    for path in sink.written:
        print(f"fer:   {path}")
    for note in notes:
        print(f"fer: note: {note}")


if __name__ == "__main__":
    main()
