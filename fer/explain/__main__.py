"""`python -m fer.explain (run_id=… | model=models:/…) [explain options]`: explanations of a finished run,
logged into it; with `images=<photos>`, saliency maps and Grad-CAM of the faces in a user's own photos."""

from __future__ import annotations

import numpy as np
import torch

from fer.cli import entry_point, restore, restored_module, run_to_restore, saved_run
from fer.config.validate import validate_explain
from fer.data.photos import DETECTORS, faces_in, photo_files
from fer.data.splits import UNLABELED, Split
from fer.errors import DataError
from fer.explain.render import MlflowSink, check_layers, render_into_run, render_saliency
from fer.tracking.store import client_for

MAX_PHOTO_FACES = 16  # rows of one saliency figure


def explain_photos(module, cfg, sink: MlflowSink) -> None:
    """The faces of `cfg.images` (the first MAX_PHOTO_FACES), each for the class the model predicts."""
    DETECTORS.get(cfg.detect)
    found = [(f"{name} #{k}", face.pixels) for name, _, faces in
             faces_in(cfg.images, photo_files(cfg.images), cfg.detect, cfg.margin, lambda s: print(f"fer: {s}"))
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
    device = "cuda" if cfg.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu"
    if cfg.images:  # a user's photos need no data set
        client = client_for(cfg.tracking.uri)
        module = restored_module(*saved_run(client, run_id), ["test"]).to(device)
    else:
        client, r = restore(cfg.tracking.uri, run_id, cfg.get("data"))
        module = r.module.to(device)
    check_layers(module.net, cfg.explain)
    sink = MlflowSink(client, run_id)
    notes = []
    if cfg.images:
        explain_photos(module, cfg, sink)
    else:
        notes = render_into_run(module, r.splits.val, cfg.explain, sink)
    root = client.get_run(run_id).info.artifact_uri
    print(f"fer: logged {len(sink.written)} figures into run {run_id} at {root}:")
    for path in sink.written:
        print(f"fer:   {path}")
    for note in notes:
        print(f"fer: note: {note}")


if __name__ == "__main__":
    main()
