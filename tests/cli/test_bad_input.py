"""Bad input through `python -m fer.train`, as a user meets it: exit 2 and one `fer: error:` line naming the
file and line (or the config key), what was expected and what was found, before anything trains.

Most cases run the command in this process (`call_fer`: runpy, so Hydra and fer's guard alike); a few also
run it as a real subprocess and must print the same line.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    FERPLUS_HEADER,
    call_fer,
    faces,
    ferplus_votes,
    only_run,
    pixel_text,
    run_fer,
    save,
    store,
    write_ferplus,
    write_hw3,
)
from mlflow.tracking import MlflowClient

TRAIN = ["trainer.max_epochs=1", "trainer.progress_bar=false", "trainer.num_sanity_val_steps=0", "explain=none",
         "data.batch_size=8"]


def fer2013(tmp, usages=("Training", "Training", "PublicTest", "PrivateTest"), line=None, edit=None, text=None):
    """A fer2013.csv of four rows (lines 2–5) with line `line` rewritten by `edit`, or exactly `text`."""
    path = tmp / "fer2013.csv"
    if text is None:
        rows = zip(faces(4), usages, strict=True)
        lines = ["emotion,pixels,Usage", *(f"{i},{pixel_text(image)},{usage}" for i, (image, usage) in enumerate(rows))]
        if edit is not None:
            lines[line - 1] = edit(lines[line - 1])
        text = "\n".join(lines) + "\n"
    path.write_text(text)
    return ["data=fer2013", f"data.path={path}"], path


def pixel(value: str):
    """Replace the 10th pixel of a row."""
    def edit(row: str) -> str:
        label, pixels, usage = row.split(",")
        tokens = pixels.split(" ")
        tokens[9] = value
        return ",".join([label, " ".join(tokens), usage])
    return edit


def field(i: int, value: str):
    def edit(row: str) -> str:
        fields = row.split(",")
        fields[i] = value
        return ",".join(fields)
    return edit


# Each case writes its input under a test's folder and returns the command's arguments and (part of) the line
# it must print.

def fer_case(expected: str, **kw):
    """A fer2013 case; `expected` is formatted with the file's path."""
    def build(tmp):
        args, path = fer2013(tmp, **kw)
        return args, expected.format(path=path)
    return build


def hw3_case(expected: str, labels=(0, 1, 2, 3), test_header_only=False, extra=()):
    def build(tmp):
        folder = write_hw3(tmp / "hw3", faces(4), list(labels))
        if test_header_only:
            (folder / "test.csv").write_text("id,feature\n")
        return ["data=hw3", f"data.path={folder}", *extra], expected.format(folder=folder)
    return build


def folder_case(expected: str, broken: str | None = None):
    def build(tmp):
        root = tmp / "faces"
        for i, name in enumerate(("angry", "happy", "sad")):
            save(root / "train" / name / f"{i}.png", faces(3)[i])
        if broken:
            (root / broken).parent.mkdir(parents=True, exist_ok=True)
            (root / broken).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        return ["data=folder", f"data.path={root}"], expected.format(root=root)
    return build


def ferplus_case(expected: str, rows: int = 4, header: str = FERPLUS_HEADER, usages=None, vote=None):
    """The four-row fer2013.csv with a fer2013new.csv of `rows` rows (its third row's sadness vote `vote`)."""
    def build(tmp):
        args, path = fer2013(tmp)
        votes = [[str(v) for v in row] for row in ferplus_votes([0, 1, 3, 4])][:rows]
        if vote is not None:
            votes[2][3] = vote
        usage = usages or ["Training", "Training", "PublicTest", "PrivateTest"][:rows]
        labels = write_ferplus(tmp / "fer2013new.csv", usage, votes, header=header)
        return (["data=ferplus", args[1], f"data.labels={labels}"],
                expected.format(labels=labels, path=path))
    return build


def config_case(*args: str, expected: str):
    return lambda tmp: (list(args), expected)


def file_case(name: str, content: bytes, expected: str):
    """A fer2013 data.path that is some other kind of file: `expected` is formatted with its path."""
    def build(tmp):
        path = tmp / name
        path.write_bytes(content)
        return ["data=fer2013", f"data.path={path}"], expected.format(path=path)
    return build


def excel_workbook() -> bytes:
    """The zip an .xlsx is (its parts list first), as a user who saved the csv from Excel has it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


CASES = {
    "missing file": lambda tmp: (["data=fer2013", f"data.path={tmp / 'nowhere.csv'}"],
                                 f"{tmp / 'nowhere.csv'}: no such file; expected the Kaggle fer2013.csv"),
    "empty file": fer_case("{path}: empty file; expected a header emotion,pixels,[Usage]", text=""),
    "missing column": fer_case("{path}:1: missing column 'pixels': expected columns emotion,pixels,[Usage], "
                               "found header 'emotion,Usage'", text="emotion,Usage\n0,Training\n"),
    "2303 pixels": fer_case("{path}:3: 2303 pixels, expected 2304",
                            line=3, edit=lambda row: row.rsplit(" ", 1)[0] + "," + row.rsplit(",", 1)[1]),
    "2305 pixels": fer_case("{path}:3: 2305 pixels, expected 2304",
                            line=3, edit=lambda row: row.replace(",Training", " 7,Training")),
    "non-numeric pixel": fer_case("{path}:3: non-numeric pixel 'x7' at position 10; expected integers 0–255",
                                  line=3, edit=pixel("x7")),
    "pixel > 255": fer_case("{path}:4: pixel value 256 at position 10 out of range; expected 0–255",
                            line=4, edit=pixel("256")),
    "pixel < 0": fer_case("{path}:2: pixel value -1 at position 10 out of range; expected 0–255",
                          line=2, edit=pixel("-1")),
    "label outside 0-6": fer_case("{path}:5: label 7 out of range; expected 0–6", line=5, edit=field(0, "7")),
    "unknown Usage": fer_case("{path}:3: unknown Usage 'Validation'; expected one of Training, PublicTest, "
                              "PrivateTest", line=3, edit=field(2, "Validation")),
    "no training rows": fer_case("{path}: no training rows: expected Usage Training (or a train split); "
                                 "found PublicTest", usages=["PublicTest"] * 4),
    "empty train split": hw3_case("{folder}: the train split has no rows: data.val_count=4 takes 4 of the 4 "
                                  "training rows", extra=["data.val_policy=first", "data.val_count=4"]),
    "empty test split": hw3_case("{folder}/test.csv: no data rows after the header; expected one row per image",
                                 test_header_only=True),
    "hw3 label": hw3_case("{folder}/train.csv:4: label 9 out of range; expected 0–6", labels=(0, 1, 9, 3)),
    "image does not decode": folder_case("{root}/train/happy/broken.png: cannot decode image",
                                         broken="train/happy/broken.png"),
    "unknown class folder": folder_case("{root}/train/joyful: unknown class folder 'joyful'; expected one of angry",
                                        broken="train/joyful/a.png"),
    "FER+ row count": ferplus_case("{labels}: 3 rows; expected 4 or more, one per row of {path} (FER+ is "
                                   "row-aligned with fer2013.csv)", rows=3),
    "FER+ header": ferplus_case("{labels}:1: not the FER+ header: column 4 is 'happy'; expected Usage,Image name,"
                                "neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF",
                                header=FERPLUS_HEADER.replace("happiness", "happy")),
    "FER+ vote": ferplus_case("{labels}:4: column 'sadness': 'many' is not a vote count; expected a whole number 0 "
                              "or more", vote="many"),
    "FER+ alignment": ferplus_case("{labels}:3: Usage PublicTest but row 3 of {path} is Training (1 of 4 rows "
                                   "disagree): the files are not row-aligned",
                                   usages=["Training", "PublicTest", "PublicTest", "PrivateTest"]),
    "FER+ without labels": config_case("data=ferplus", "data.path=x", expected="config key 'data.labels': expected "
                                       "the path of FER+'s fer2013new.csv, which data=ferplus reads, got None"),
    "label mode of FER2013": config_case("data=fer2013", "data.path=x", "data.label_mode=crossentropy",
                                         expected="config key 'data.label_mode': expected majority: label modes "
                                                  "read FER+'s votes (data=ferplus), not data=fer2013"),
    "classes of FER2013": config_case("data=fer2013", "data.path=x", "data.classes=ferplus",
                                      expected="config key 'data.classes': expected fer2013: data=fer2013 brings "
                                               "its own classes"),
    "no data.path": config_case("data=hw3", expected="config key 'data.path': expected the path of the hw3 data"),
    "unknown option": config_case("model=resnet50",
                                  expected="config key 'model': expected one of cnn, dnn, dnn_matched, resnet, vgg16, "
                                           "vgg19, got 'resnet50'"),
    "unknown key": config_case("optim.betaz=[0.9,0.99]", expected="config key 'optim.betaz': expected one of the "
                               "keys of optim (name, lr, weight_decay, momentum, nesterov, betas), got 'betaz'"),
    "appended unknown key": config_case("+data.bogus=1", expected="config key 'data.bogus': expected one of the keys"
                                        " of data (name, path, batch_size"),
    "lr not a number": config_case("optim.lr=abc", expected="config key 'optim.lr': expected a number, got 'abc'"),
    "negative batch size": config_case("data.batch_size=-1",
                                       expected="config key 'data.batch_size': expected a positive integer, got -1"),
    "epochs not an integer": config_case("trainer.max_epochs=two",
                                         expected="config key 'trainer.max_epochs': expected an integer, got 'two'"),
    "unknown on_bad_row": config_case("data.on_bad_row=ignore",
                                      expected="config key 'data.on_bad_row': expected one of error, skip, got "
                                               "'ignore'"),
    "alias without a model": config_case("tracking.alias=champion", expected="config key 'tracking.register': "
                                         "expected a registered model name for tracking.alias=champion to point into"),
    "register without logging": config_case("tracking.register=fer-cnn", "tracking.log_model=false",
                                            expected="config key 'tracking.log_model': expected true, so that "
                                                     "tracking.register=fer-cnn has a model to register, got False"),
    "a JPEG as the csv": file_case("fer2013.csv", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "{path}: a JPEG image, not a "
                                   "text csv; expected a header emotion,pixels,[Usage] and one row per image"),
    "UTF-16 csv": file_case("fer2013.csv", "emotion,pixels,Usage\n".encode("utf-16"), "{path}: UTF-16 text (save "
                            "it as CSV UTF-8), not a text csv"),
    "Excel workbook": file_case("fer2013.xlsx", excel_workbook(), "{path}: an Excel workbook (or another Office "
                                "file); expected the Kaggle fer2013.csv, the workbook saved as CSV UTF-8"),
    "a device as data.path": lambda tmp: (["data=fer2013", "data.path=/dev/null"], "/dev/null: not a regular file"),
    "seed out of numpy's range": config_case("seed=-1", expected="config key 'seed': expected a whole number from 0 "
                                             "to 4294967295 (numpy's seeds), got -1"),
    "accelerator not here": config_case("trainer.accelerator=tpu", expected="config key 'trainer.accelerator': "
                                        "expected an accelerator this machine has: auto or cpu"),
}
SUBPROCESS = ["unknown option", "pixel > 255"]


def error_line(proc) -> str:
    """The one `fer: error:` line, last on stderr, with nothing like a traceback around it."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("fer: error: ")]
    assert len(errors) == 1 and proc.stderr.rstrip().endswith(errors[0]), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return errors[0]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_nothing_trains(tmp_path, case):
    args, expected = CASES[case](tmp_path)
    proc = call_fer("fer.train", *TRAIN, *args, cwd=tmp_path)
    line = error_line(proc)
    assert expected in line and "expected" in line, (expected, line)
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()


@pytest.mark.slow
@pytest.mark.parametrize("case", SUBPROCESS)
def test_a_real_process_says_the_same(tmp_path, case):
    args, _ = CASES[case](tmp_path)
    proc = run_fer("fer.train", *TRAIN, *args, cwd=tmp_path, check=False, fresh=True)
    assert error_line(proc) == error_line(call_fer("fer.train", *TRAIN, *args, cwd=tmp_path))
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("folder", ["Día (1) #2 & co=x ~", "a,b"], ids=["grammar", "comma"])
def test_a_path_hydra_cannot_read_unquoted_is_answered_with_the_form_that_works(tmp_path, empty_store, folder):
    """Non-ASCII letters, brackets, `#`, `&`, `=`, `~` or a comma in a path: one line with the exact quoted form,
    and that form trains on the file."""
    (tmp_path / folder).mkdir()
    args, path = fer2013(tmp_path / folder)
    proc = call_fer("fer.train", *TRAIN, "data=fer2013", f"data.path={path}", cwd=tmp_path)
    line = error_line(proc)
    assert line.startswith("fer: error: config key 'data.path': expected a value Hydra's override grammar reads; "
                           "to pass this one as it is, write ") and line.endswith(f", got {str(path)!r}"), line
    (word,) = shlex.split(line.split(" write ")[1].rsplit(", got ", 1)[0])
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = call_fer("fer.train", *TRAIN, "data=fer2013", word, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert only_run(tmp_path)[1].data.params["data.path"] == str(path)


def test_a_path_with_a_comma_in_a_sweep_is_one_path_not_a_sweep_over_its_pieces(tmp_path, empty_store):
    """Under -m Hydra reads `a,b/x.csv` as two values: said before the sweep's parent run exists, with the form
    that sweeps over the one path."""
    (tmp_path / "a,b").mkdir()
    _, path = fer2013(tmp_path / "a,b")
    proc = call_fer("fer.train", "-m", *TRAIN, "data=fer2013", f"data.path={path}", cwd=tmp_path)
    line = error_line(proc)
    pieces = str(path).split(",")
    assert line.startswith(f"fer: error: config key 'data.path': expected one path (under -m a comma sweeps over "
                           f"{pieces[0]!r} and {pieces[1]!r}); to pass this one as it is, write "), line
    assert not (tmp_path / "mlflow.db").exists()
    (word,) = shlex.split(line.split(" write ")[1].rsplit(", got ", 1)[0])
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = call_fer("fer.train", "-m", *TRAIN, "data=fer2013", word, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.count(" finished: ") == 1, proc.stderr
    jobs = [r for r in store(tmp_path).search_runs(["1"]) if r.data.tags.get("fer.role") != "sweep"]
    assert [r.data.params["data.path"] for r in jobs] == [str(path)]


@pytest.mark.parametrize("sweep, says", [
    (["optim.lr=-1,0.1"], "config key 'optim.lr': expected a positive number, got -1.0"),
    (["model=resnet,resnet50"], "config key 'model': expected one of cnn, dnn, dnn_matched, resnet, vgg16, vgg19, "
                                "got 'resnet50'"),
    (["seed=-1", "norm=none,unit"], "config key 'seed': expected a whole number from 0 to 4294967295"),
], ids=["swept-value", "swept-option", "common-key"])
def test_a_sweep_no_job_of_which_could_train_is_refused_before_its_parent_run(tmp_path, sweep, says):
    """Each swept value is validated as its job will be, before the sweep's parent run exists (it was left FAILED)."""
    line = error_line(call_fer("fer.train", "-m", *TRAIN, *sweep, cwd=tmp_path))
    assert line.startswith(f"fer: error: {says}"), line
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "multirun").exists()


def test_missing_class_and_odd_size_warn_and_train(tmp_path, empty_store):
    """No Neutral face to train on and one 64×64 image: both said on stderr, and the run still finishes."""
    root = tmp_path / "faces"
    images = faces(30, seed=4)
    for i, image in enumerate(images[:24]):
        save(root / "train" / str(i % 6) / f"{i}.png", image)
    save(root / "train" / "3" / "big.png", np.full((64, 64), 90, np.uint8))
    for i, image in enumerate(images[24:]):
        save(root / "test" / str(i) / f"{i}.png", image)
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = call_fer("fer.train", "data=folder", f"data.path={root}", *TRAIN, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"fer: warning: no training example of class 6 Neutral in {root}" in proc.stderr
    assert f"fer: resized 1 images of {root} to 48×48 (first: train/3/big.png, 64×64)" in proc.stderr
    _, run = only_run(tmp_path)
    assert run.info.status == "FINISHED" and "test_acc" in run.data.metrics


def test_skip_mode_trains_and_logs_what_it_left_out(tmp_path, empty_store):
    """`data.on_bad_row=skip`: two malformed rows are left out, and the run says how many (tag) and which
    lines (skipped_rows.csv)."""
    usages = ["Training"] * 24 + ["PublicTest"] * 8 + ["PrivateTest"] * 8
    rows = [f"{i % 7},{pixel_text(image)},{usage}"
            for i, (image, usage) in enumerate(zip(faces(40), usages, strict=True))]
    rows[5] = pixel("12.5")(rows[5])  # line 7
    rows[30] = field(0, "8")(rows[30])  # line 32
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    proc = call_fer("fer.train", "data=fer2013", f"data.path={path}", "data.on_bad_row=skip", *TRAIN, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "left out 2 malformed rows" in proc.stderr and "(lines 7, 32)" in proc.stderr
    client, run = only_run(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.tags["fer.skipped_rows"] == "2"
    params = run.data.params
    assert (params["data.rows_train"], params["data.rows_val"], params["data.rows_test_public"],
            params["data.rows_test_private"]) == ("23", "7", "7", "8")
    with tempfile.TemporaryDirectory() as tmp:
        csv = open(client.download_artifacts(run.info.run_id, "skipped_rows.csv", tmp)).read().splitlines()
    assert csv[0] == "line,reason" and [row.split(",")[0] for row in csv[1:]] == ["7", "32"]
    assert "non-numeric pixel '12.5'" in csv[1] and "label 8 out of range; expected 0–6" in csv[2]


def in_read_only_folder(folder: Path, *command: str) -> subprocess.CompletedProcess:
    """`command` run in `folder` mounted read-only in a private mount namespace: the kernel refuses every write
    there, root's included (no other user can run this machine's Python: /root is 0700)."""
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && cd "$0" && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, str(folder), *command], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.slow
@pytest.mark.parametrize("command", [["fer.train", *TRAIN], ["fer.train", "-m", *TRAIN, "norm=none,unit"],
                                     ["fer.report", "fer"]], ids=["train", "sweep", "report"])
def test_a_folder_that_cannot_be_written_is_one_line(tmp_path, empty_store, command):
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("no private mount namespace here (unshare -m needs root)")
    folder = tmp_path / "read-only"
    folder.mkdir()
    if command[0] == "fer.report":  # a store elsewhere; the page cannot be written here
        shutil.copy(empty_store, tmp_path / "mlflow.db")
        client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
        client.set_terminated(client.create_run(client.create_experiment("fer")).info.run_id)  # a run to report on
        command = [*command, "--uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    proc = in_read_only_folder(folder, sys.executable, "-m", *command)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("fer: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"fer: error: cannot write {folder}/"), errors
    assert "Read-only file system" in errors[0] and "run from a folder you can write" in errors[0]
    assert not list(folder.iterdir())


def test_a_report_on_an_experiment_without_runs_is_one_line_and_no_page(tmp_path, empty_store):
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").create_experiment("fer")
    line = error_line(call_fer("fer.report", "fer", cwd=tmp_path))
    assert line.startswith("fer: error: experiment fer in sqlite:///") and "no runs to report on" in line, line
    assert not (tmp_path / "report.html").exists()
