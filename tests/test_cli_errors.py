"""Every way a command can fail ends in one `zoo: error:` line on stderr, exit 1 (2 for usage):
damaged inputs, huge images, odd output targets, a full stdout (issue 22, item 10)."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import zoo_core as zoo
from tests.test_cli import ZOO, _env
from zoo_core.cli import main


def one_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``zoo argv`` in this process; assert it failed with exactly one error line."""
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("zoo: error: ")]
    assert code == 1, err
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` x ``height`` (its pixel data is cut short): what PIL
    reads to know an image's size before decoding it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    from PIL import Image

    out = {}
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 90)).save(jpeg, format="JPEG")
    out["truncated.jpg"] = jpeg.getvalue()[: len(jpeg.getvalue()) // 2]
    out["20000x20000.png"] = png_header(20_000, 20_000)
    out["10000x10000.png"] = png_header(10_000, 10_000)
    out["not-an-image.jpg"] = b"hello"
    for name, data in out.items():
        (tmp_path / name).write_bytes(data)
    Image.new("RGB", (64, 48)).save(tmp_path / "small.png")
    (tmp_path / "folder.jpg").mkdir()
    return {name: tmp_path / name for name in [*out, "small.png", "folder.jpg"]}


@pytest.mark.parametrize("image, says", [
    ("folder.jpg", "is a folder"),
    ("truncated.jpg", "damaged or truncated"),
    ("20000x20000.png", "20000x20000 (400,000,000 pixels), more than --max-pixels"),
    ("10000x10000.png", "10000x10000 (100,000,000 pixels), more than --max-pixels"),
    ("not-an-image.jpg", "not an image"),
])
def test_run_mtcnn_on_bad_images(capsys, images, image: str, says: str) -> None:
    line = one_error(capsys, ["run", "mtcnn", str(images[image])])
    assert says in line and repr(str(images[image])) in line


def test_max_pixels_is_checked_before_decoding_and_can_be_raised(capsys, images) -> None:
    big = str(images["10000x10000.png"])
    line = one_error(capsys, ["run", "mtcnn", big, "--max-pixels", "200000000"])
    assert "damaged or truncated" in line  # the size passed; decoding met the cut data
    line = one_error(capsys, ["run", "face-verify", big, big, "--model", "x"])
    assert "--max-pixels" in line


def test_face_identify_checks_probes_and_gallery_photos_before_decoding(
        capsys, images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zoo_face.recognize
    from zoo_face.gallery import FaceGallery

    def no_models(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr(zoo_face.recognize, "load_recognizer", no_models)
    people = tmp_path / "people"
    (people / "grace").mkdir(parents=True)
    big = str(images["20000x20000.png"])
    line = one_error(capsys, ["run", "face-identify", big, "--gallery", str(people)])
    assert "more than --max-pixels" in line and repr(big) in line
    os.replace(images["20000x20000.png"], people / "grace" / "huge.png")
    with pytest.raises(zoo.InputError, match=r"20000x20000 \(400,000,000 pixels\)"):
        FaceGallery.enrol_folders(people)  # refused from the header: nothing was decoded


@pytest.mark.parametrize("out, says", [
    (".", "is a folder"), ("annotated.xyz", "unknown image extension '.xyz'"),
    ("annotated", "unknown image extension ''"), ("no/such/folder/a.png", "does not exist"),
])
def test_run_mtcnn_refuses_an_odd_out_before_any_work(capsys, images, tmp_path: Path,
                                                      out: str, says: str) -> None:
    target = str(tmp_path / out)
    line = one_error(capsys, ["run", "mtcnn", str(images["small.png"]), "--out", target])
    assert says in line and repr(target) in line
    assert not list(tmp_path.glob("annotated*"))


def test_plugin_new_into_a_file(capsys, tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me")
    line = one_error(capsys, ["plugin", "new", "mlp", "--directory", str(target)])
    assert repr(str(target)) in line and "is a file" in line
    assert target.read_text() == "keep me"


def test_a_deeply_nested_config_json(capsys, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    line = one_error(capsys, ["push", f"dir:{tmp_path}", "org/x"])
    assert "nested too deeply" in line


@pytest.mark.parametrize("data, says", [
    (b"schema = 1\n\xff\xfe\n", "not UTF-8"),
    (b"schema = 1\nx = " + b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_a_bad_zoo_catalog(capsys, tmp_path: Path, monkeypatch, data: bytes, says: str) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(data)
    monkeypatch.setenv("ZOO_CATALOG", str(path))
    zoo.CATALOG.invalidate()
    try:
        for argv in (["list"], ["run", "gpt2", "hi"], ["info", "gpt2"]):
            assert says in one_error(capsys, argv)
    finally:
        monkeypatch.delenv("ZOO_CATALOG")
        zoo.CATALOG.invalidate()


RUNNER = """
from zoo_core import hookimpl
@hookimpl
def zoo_catalog():
    return [{"name": "crashes", "component": "model:toy-mlp", "task": "crash"}]
@hookimpl
def zoo_task_runners():
    return {"crash": "tests.test_cli_errors:crashing_runner"}
"""


def crashing_runner(entry: str, inputs: list[str]) -> dict:
    return {"x": {}}[inputs[0]]  # a plugin's bug: KeyError


def test_an_unexpected_exception_is_one_line_naming_it(capsys, toy: str) -> None:
    from tests.test_registry import _module

    zoo.register_plugin(_module("crasher", RUNNER), "crasher")
    zoo.CATALOG.invalidate()
    try:
        line = one_error(capsys, ["run", "crashes", "boom"])
        assert "KeyError" in line and "'boom'" in line
    finally:
        zoo.unregister_plugin("crasher")
        zoo.CATALOG.invalidate()


@pytest.mark.parametrize("args", [("list",), ("--json", "list"), ("info", "gpt2"),
                                  ("--json", "run", "gpt2", "hello")])
def test_stdout_on_dev_full(tmp_path: Path, args: tuple[str, ...]) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*ZOO, *args], stdout=full, stderr=subprocess.PIPE, text=True,
                              env=_env(tmp_path), timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "zoo: error: cannot write the output (No space left on device); check where stdout "
        "goes"]


# -- fuzz: whatever the arguments, an answer or one error line -------------------------------

_WORDS = st.sampled_from(["list", "info", "run", "plugins", "verify", "check", "--json",
                          "--kind", "model", "--pretrained", "yes", "gpt2", "mtcnn", "bert*",
                          "model:bert", "tokenizer:bpe", "--out", "x.png", "--max-pixels",
                          "-1", "dir:/nonexistent", "hf:org/x", "..", "/", "plugin", "new"])
_ARGV = st.lists(st.one_of(_WORDS, st.text(max_size=12)), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=_ARGV)
@example(argv=["run", "mtcnn", "/"])
@example(argv=["run", "mtcnn", "/dev/null", "--out", "x.png"])
@example(argv=["plugin", "new", "x", "--directory", "/etc/hostname"])
def test_fuzz_arguments(capsys, tmp_path: Path, argv: list[str]) -> None:
    if argv[0] == "plugin" and "--directory" not in argv:  # not in the current folder
        argv = [*argv, "--directory", str(tmp_path / "new")]
    old = {k: os.environ.get(k) for k in ("ZOO_CACHE", "HF_HUB_OFFLINE")}
    os.environ.update(ZOO_CACHE=str(tmp_path / "zoo"), HF_HUB_OFFLINE="1")
    try:
        code = main(argv)
    except SystemExit as e:  # usage errors: argparse's message and exit 2
        code = e.code
        assert code == 2 or (code == 0 and "--help" in argv or "-h" in argv), argv
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code in (0, 1, 2), (argv, code, err)
    if code == 1 and err.count("zoo: error: "):
        assert err.count("zoo: error: ") == 1, err
    assert "unexpected" not in err, (argv, err)  # no bug found by the fuzz


def test_json_output_is_strict_json_with_nan_as_null(capsys) -> None:
    """A NaN in a result printed bare ('NaN') is no JSON; --json prints null instead."""
    import json

    from zoo_core import cli

    cli._print_json({"similarity": [[1.0, float("nan")], [float("inf"), 1.0]], "n": 2})
    out = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(c))
    assert out == {"similarity": [[1.0, None], [None, 1.0]], "n": 2}
