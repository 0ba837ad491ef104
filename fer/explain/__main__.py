"""`python -m fer.explain (run_id=… | model=models:/…) [explain options]`: explanations of a finished run,
logged into it; with `images=<photos>`, saliency maps and Grad-CAM of the faces in a user's own photos."""

from __future__ import annotations

import numpy as np
import torch

from fer.cli import entry_point
from fer.console import say
from fer.data.photos import check_detection, faces_in, photo_files
from fer.data.splits import UNLABELED, Split
from fer.errors import DataError
from fer.explain.render import MlflowSink, check_layers, render_into_run, render_saliency
from fer.runs.restore import device_for, restore, restore_model, run_to_restore
from fer.runs.validate import validate_explain

MAX_PHOTO_FACES = 16  # rows of one saliency figure


def explain_photos(module, cfg, sink: MlflowSink) -> None:
    """The faces of `cfg.images` (the first MAX_PHOTO_FACES), each for the class the model predicts."""
    check_detection(cfg.detect, cfg.margin)
    found = [(f"{name} #{k}", face.pixels) for name, _, faces in
             faces_in(cfg.images, photo_files(cfg.images), cfg.detect, cfg.margin, say)
             for k, face in enumerate(faces)][:MAX_PHOTO_FACES]
    if not found:
        raise DataError(f"images={cfg.images}", "no face found to explain (for cropped faces use detect=none)")
    captions, pixels = zip(*found, strict=True)
    split = Split(np.stack(pixels), np.full(len(pixels), UNLABELED))
    explain = cfg.explain.copy()
    explain.target, explain.probe_ids = "predicted", list(range(len(pixels)))
    module.eval()
    with torch.inference_mode(False), torch.enable_grad():
        render_saliency(module, split, explain, sink, prefix="photos/", captions=list(captions))


@entry_point("explain_run", takes_model_uri=True)
def main(cfg) -> None:
    validate_explain(cfg.explain)
    run_id = run_to_restore(cfg)
    if cfg.images:
        client, module = restore_model(cfg, run_id)
    else:
        client, r = restore(cfg.tracking.uri, run_id, cfg.get("data"))
        module = r.module.to(device_for(cfg.accelerator))
    check_layers(module.net, cfg.explain)
    sink = MlflowSink(client, run_id)
    notes = []
    if cfg.images:
        explain_photos(module, cfg, sink)
    else:
        notes = render_into_run(module, r.splits.val, cfg.explain, sink)
    root = client.get_run(run_id).info.artifact_uri
    say(f"logged {len(sink.written)} figures into run {run_id} at {root}:")
    for path in sink.written:
        say(f"  {path}")
    for note in notes:
        say(f"note: {note}")


if __name__ == "__main__":
    main()
