"""`python -m fer.predict (run_id=… | model=models:/…) …`: a trained model on new faces, three ways.

`data=hw3 data.path=…`: a Kaggle-style `id,label` csv for a data set's rows. `images=<photo or folder>`: the
faces in ordinary photos (fer/data/photos.py) into `predictions.csv` and annotated copies of the photos.
`video=<file or camera number>`: the faces of every `every`-th frame, followed across frames (fer/data/video.py),
into emotions.csv, an annotated copy, a timeline and a summary per face (fer/artifacts/video.py).
"""

from __future__ import annotations

import functools
import sys
import time

import numpy as np
import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fer.artifacts.annotated import rows, write_annotated, write_csv
from fer.artifacts.video import VideoRecord, follow, summary_lines
from fer.cli import entry_point
from fer.console import say
from fer.data.photos import check_detection, faces_in, photo_files
from fer.data.splits import Split
from fer.data.video import open_video
from fer.errors import EXIT_CODES, ConfigError, output_path
from fer.runs.ending import stop_cause
from fer.runs.restore import restore, restore_model, run_to_restore
from fer.stops import stops_between_items
from fer.training.trainer import inference_trainer


def rows_to_predict(splits) -> Split:
    """The unlabeled rows (HW3's test.csv); without any, the labeled test splits in order."""
    if splits.predict is not None:
        return splits.predict
    parts = list(splits.tests.values())
    return Split(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                 rows=np.concatenate([p.rows if p.rows is not None else np.arange(1, len(p) + 1) for p in parts]))


def predict_rows(cfg: DictConfig, run_id: str) -> None:
    out = output_path(cfg.output or "predictions.csv", "output")
    _, r = restore(cfg.tracking.uri, run_id, cfg.get("data"))
    target = rows_to_predict(r.splits)
    r.splits.predict = target
    probs = torch.cat(inference_trainer(cfg.accelerator).predict(r.module, datamodule=r.datamodule))
    labels = probs.argmax(dim=1).numpy()
    ids = target.ids if target.ids is not None else target.rows
    with out.open("w") as f:
        f.write("id,label\n")
        f.writelines(f"{i},{int(y)}\n" for i, y in zip(ids, labels, strict=True))
    say(f"wrote {len(labels)} predictions to {out.resolve()}")


def predict_photos(cfg: DictConfig, run_id: str) -> None:
    """Every photo in turn: faces found, classified, drawn; a photo without a face or one that cannot be read
    is said (once each) and the rest goes on."""
    check_detection(cfg.detect, cfg.margin)
    files = photo_files(cfg.images)
    out = output_path(cfg.output or "predictions", "output", folder=True)
    output_path(out / "annotated", "output", folder=True)
    client, module = restore_model(cfg, run_id)
    table, faces_seen, start, last = [], 0, time.perf_counter(), None
    console = Console(stderr=True, highlight=False)
    try:
        with (Progress(console=console, transient=True, disable=not console.is_terminal) as progress,
              stops_between_items() as stops):
            photos = progress.track(files, description="photos")
            for name, rgb, faces in faces_in(cfg.images, photos, cfg.detect, cfg.margin,
                                             functools.partial(say, console=console)):
                stops.carry_out()
                probs = module.classify(np.stack([f.pixels for f in faces]))
                table += rows(name, faces, probs, module.classes)
                faces_seen += len(faces)
                write_annotated(out / "annotated" / name, rgb, faces, probs, module.classes)
                last = name
            stops.carry_out()
    except KeyboardInterrupt as stop:  # what was classified is kept: the csv of it, and its annotated copies
        write_csv(out / "predictions.csv", table, module.classes)
        cause = stop_cause(stop)
        say(f"stopped by {cause}: the {faces_seen} faces classified up to {last or 'the first photo'} are in "
            f"{(out / 'predictions.csv').resolve()}", err=True)
        sys.exit(EXIT_CODES[cause])
    seconds = time.perf_counter() - start
    write_csv(out / "predictions.csv", table, module.classes)
    say(f"{faces_seen} face{'s' * (faces_seen != 1)} in {len(files)} photo{'s' * (len(files) != 1)} "
        f"({seconds:.1f} s, {faces_seen / seconds:.1f} faces/s): "
        f"{(out / 'predictions.csv').resolve()} and {(out / 'annotated').resolve()}/")
    if cfg.log_to_run:
        client.log_artifacts(run_id, str(out), "predictions")
        say(f"logged them into run {run_id} under predictions/")
    if not faces_seen:
        say("note: no face was found; for photos that are already cropped faces use detect=none", err=True)


def predict_video(cfg: DictConfig, run_id: str) -> None:
    """Every frame into the annotated copy, every `every`-th one analysed: its faces found, given the id of the
    face they continue, and classified in one batch. A stop keeps the rows and the video written so far; on a
    camera, Ctrl-C is how the recording ends, so it ends like the end of a file."""
    check_detection(cfg.detect, cfg.margin)
    if not isinstance(cfg.every, int) or isinstance(cfg.every, bool) or cfg.every < 1:
        raise ConfigError("every", "a whole number of frames, 1 or more (1: analyse every frame)", cfg.every)
    video = open_video(str(cfg.video))
    try:
        out = output_path(cfg.output or "predictions", "output", folder=True)
        client, module = restore_model(cfg, run_id)
        record = VideoRecord(out, video.fps or 25.0, (video.width, video.height), module.classes)
    except BaseException:
        video.close()
        raise
    start = time.perf_counter()
    console = Console(stderr=True, highlight=False)
    columns = (TextColumn("frames"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[rate]:.1f} frames/s"))
    try:
        with (Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress,
              stops_between_items() as stops):
            task = progress.add_task("frames", total=video.frames, rate=0.0)
            for _ in follow(video, module, record, cfg.every, cfg.detect, cfg.margin):
                progress.update(task, advance=1, rate=record.frames_written / (time.perf_counter() - start))
                stops.carry_out()
    except KeyboardInterrupt as stop:
        record.close()
        cause = stop_cause(stop)
        if not (video.is_camera and cause == "Ctrl-C"):
            say(f"stopped by {cause}: the {record.frames_analysed} frames analysed are in "
                f"{(out / 'emotions.csv').resolve()} and the {record.frames_written} written in "
                f"{(out / 'annotated.mp4').resolve()}", err=True)
            sys.exit(EXIT_CODES[cause])
    finally:
        video.close()
    record.close()
    seconds = time.perf_counter() - start
    summary = record.finish()
    say(f"{record.frames_written} frames ({record.frames_analysed} analysed) in {seconds:.1f} s "
        f"({record.frames_written / seconds:.1f} frames/s), {len(summary)} face{'s' * (len(summary) != 1)} "
        f"followed: {out.resolve()}/ (emotions.csv, annotated.mp4, timeline.png, summary.json)")
    for line in summary_lines(summary):
        say(f"  {line}")
    if cfg.log_to_run:
        client.log_artifacts(run_id, str(out), "video")
        say(f"logged them into run {run_id} under video/")
    if not summary:
        say("note: no face was found; for a video of one cropped face use detect=none", err=True)


@entry_point("predict", takes_model_uri=True)
def main(cfg) -> None:
    run_id = run_to_restore(cfg)
    if cfg.images and cfg.video is not None:
        raise ConfigError("video", "no video when images= is given (one of them per command)", cfg.video)
    if cfg.video is not None:
        predict_video(cfg, run_id)
    elif cfg.images:
        predict_photos(cfg, run_id)
    else:
        predict_rows(cfg, run_id)


if __name__ == "__main__":
    main()
