"""zoo.native: C built at first use into a cache, atomically, loaded through ctypes, with a
quiet fallback (None) where no compiler works or a switch turns it off."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys

import pytest

import zoo_core as zoo

SOURCE = "double twice(double x) { return 2 * x; }\n"


@pytest.fixture
def source(tmp_path):
    if shutil.which(zoo.native.compiler()[0]) is None:
        pytest.skip("no C compiler here")
    path = tmp_path / "twice.c"
    path.write_text(SOURCE)
    return path


def _twice(lib):
    fn = lib.twice
    fn.argtypes, fn.restype = [ctypes.c_double], ctypes.c_double
    return fn(21.0)


def test_builds_once_into_pycache_and_loads(source, monkeypatch):
    lib = zoo.native.library(source, name="zoo-test")
    assert lib is not None and _twice(lib) == 42.0
    built = list((source.parent / "__pycache__").iterdir())
    assert len(built) == 1 and built[0].name.startswith("twice-")   # no temporary file left
    assert zoo.native.library(source, name="zoo-test") is lib      # memoised in the process
    runs = []
    monkeypatch.setattr("subprocess.run", lambda *a, **k: runs.append(a))
    monkeypatch.setattr(zoo.native, "_loaded", {})                  # as a fresh process
    assert _twice(zoo.native.library(source, name="zoo-test")) == 42.0
    assert runs == []                                               # loaded, not rebuilt


def test_an_edited_source_gets_its_own_library(source):
    first = zoo.native.library(source, name="zoo-test", flags=["-O1"])
    source.write_text(SOURCE.replace("2 * x", "3 * x"))
    second = zoo.native.library(source, name="zoo-test", flags=["-O2"])
    assert _twice(first) == 42.0 and _twice(second) == 63.0
    assert len(list((source.parent / "__pycache__").iterdir())) == 2


def test_processes_racing_to_build_all_load_a_whole_library(source):
    code = ("import ctypes, sys, zoo_core as zoo\n"
            "lib = zoo.native.library(sys.argv[1], name='zoo-test', flags=['-O1', '-g'])\n"
            "f = lib.twice; f.argtypes, f.restype = [ctypes.c_double], ctypes.c_double\n"
            "print(f(21.0))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(source)], text=True,
                              stdout=subprocess.PIPE) for _ in range(3)]
    assert [p.communicate(timeout=120)[0].strip() for p in procs] == ["42.0"] * 3
    built = list((source.parent / "__pycache__").iterdir())
    assert len(built) == 1 and built[0].suffix != ".tmp"


@pytest.mark.parametrize("cc", ["no-such-cc", "false"])  # missing; runs and fails
def test_without_a_working_compiler_it_is_none(source, monkeypatch, cc):
    monkeypatch.setenv("CC", cc)
    assert zoo.native.library(source, name="zoo-test") is None
    assert not list((source.parent / "__pycache__").glob("*"))   # nothing half-written


def test_a_source_that_does_not_compile_is_none(source, caplog):
    source.write_text("this is not C;\n")
    with caplog.at_level("DEBUG", logger="zoo_core.native"):
        assert zoo.native.library(source, name="zoo-test") is None
    assert "twice.c not built" in caplog.text


def test_the_switch_turns_it_off(source, monkeypatch):
    monkeypatch.setenv("ZOO_TEST_NATIVE", "0")
    assert zoo.native.library(source, name="zoo-test", switch="ZOO_TEST_NATIVE") is None
    monkeypatch.setenv("ZOO_TEST_NATIVE", "1")
    assert zoo.native.library(source, name="zoo-test", switch="ZOO_TEST_NATIVE") is not None


def test_a_read_only_folder_builds_into_the_user_cache(source, tmp_path, monkeypatch):
    cache, real_access = tmp_path / "cache", os.access
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(os, "access", lambda path, mode: os.path.basename(path) != "__pycache__"
                        and real_access(path, mode))   # as a read-only install (root writes)
    lib = zoo.native.library(source, name="zoo-test")
    assert lib is not None and _twice(lib) == 42.0
    assert [p.name.startswith("twice-") for p in (cache / "zoo-test").iterdir()] == [True]
