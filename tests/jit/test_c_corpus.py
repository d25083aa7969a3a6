"""The C kernel corpus and the collector's clang path (needs clang; .ci/run installs it)."""

import os
import shutil
import subprocess
import sys

import pytest

from keras_trainer.errors import DataError
from keras_trainer.jit.data.c_corpus import (
    FAMILIES,
    ClangNotFoundError,
    c_kernel_source,
    clean_ir,
    compile_c,
    generate_c_corpus,
)
from keras_trainer.jit.data.collect import collect_dataset, read_dataset
from tests.conftest import IN_CI

pytestmark = pytest.mark.one_backend  # no Keras code runs here

needs_clang = pytest.mark.skipif(
    shutil.which("clang") is None and not IN_CI, reason="clang is not installed"
)


def test_there_are_at_least_twenty_families_and_sources_vary_with_the_seed():
    assert len(FAMILIES) >= 20
    assert c_kernel_source("matmul", 1) != c_kernel_source("matmul", 2)
    assert c_kernel_source("matmul", 1) == c_kernel_source("matmul", 1)
    with pytest.raises(DataError, match="unknown C kernel family"):
        c_kernel_source("nope", 0)


def test_missing_clang_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("CLANG", "/nonexistent/clang-42")
    with pytest.raises(ClangNotFoundError, match="apt-get install -y clang"):
        compile_c("int entry(void) { return 0; }")


def test_clean_ir_drops_optnone_noinline_and_the_pinned_cpu():
    text = (
        "; ModuleID = 'k.c'\nsource_filename = \"k.c\"\ndefine i64 @entry(i64 %n) #0 {\n"
        "  ret i64 %n ; the end\n}\nattributes #0 = { noinline nounwind optnone uwtable "
        '"target-cpu"="x86-64" "target-features"="+sse2" }\n!llvm.ident = !{!0}\n'
    )
    cleaned = clean_ir(text)
    assert "optnone" not in cleaned and "noinline" not in cleaned and "target-cpu" not in cleaned
    assert "attributes #0 = { nounwind uwtable }" in cleaned and "ModuleID" not in cleaned
    assert "ret i64 %n\n" in cleaned


@needs_clang
def test_clang_reports_a_c_error_with_its_message():
    with pytest.raises(DataError, match="clang failed"):
        compile_c("int entry(void) { return nope; }", name="broken")


@needs_clang
@pytest.mark.slow
def test_c_kernels_compile_and_collect_through_the_isolated_worker():
    kernels = generate_c_corpus(3, seed=5, families=["tiny_kernel", "reduction", "call_heavy"])
    assert [k.family for k in kernels] == ["tiny_kernel", "reduction", "call_heavy"]
    assert all("optnone" not in k.ir for k in kernels)
    # Small sizes keep the test quick: every strategy must agree on the result.
    modules = [
        dict(
            name=k.name,
            ir=k.ir,
            entry=k.entry,
            args=[min(k.args[0], 5)],
            family=k.family,
        )
        for k in kernels
    ]
    dataset = collect_dataset(modules, repeats=1, warmup=1, timeout_s=60, min_sample_us=5)
    assert not dataset["failed"], dataset["failed"]
    assert [r["family"] for r in dataset["samples"]] == [
        "tiny_kernel",
        "reduction",
        "call_heavy",
    ]
    assert set(dataset["samples"][0]["timings_ns"]) == {
        "O0",
        "O1",
        "O2",
        "O3",
        "O3-scalar",
    }


def test_collect_cli_says_how_to_get_clang_for_c_files(tmp_path, monkeypatch, capsys):
    import argparse

    from keras_trainer.jit.cli import register

    source = tmp_path / "kernel.c"
    source.write_text("long entry(long n) { return n * 2; }\n")
    monkeypatch.setenv("CLANG", "/nonexistent/clang-42")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["collect", str(source), "--args", "3", "--output", str(tmp_path / "d.json")]
    )
    assert args.handler(args) == 2
    assert "apt-get install -y clang" in capsys.readouterr().err


@needs_clang
@pytest.mark.slow
def test_the_corpus_script_merges_its_passes_and_resumes_after_a_finished_pass(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def build(output, *extra):
        return subprocess.run(
            [sys.executable, "scripts/build_c_corpus.py", "--count", "3", "--passes", "2"]
            + ["--chunk", "2", "--repeats", "1", "--min-sample-us", "0", "--output", output]
            + list(extra),
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": root},
        )

    first = str(tmp_path / "first.json.gz")
    process = build(first)
    assert process.returncode == 0, process.stderr[-2000:]
    merged = read_dataset(first)
    assert merged["metadata"]["passes"] == 2 and len(merged["samples"]) == 3
    assert all(len(r["pass_timings_ns"]) == 2 for r in merged["samples"])
    assert os.listdir(tmp_path) == ["first.json.gz"]  # the pass files are gone
    # A finished pass is kept by --resume: here, the first run's merged result.
    second = str(tmp_path / "second.json.gz")
    shutil.copy(first, second + ".pass0.json.gz")
    process = build(second, "--resume")
    assert process.returncode == 0, process.stderr[-2000:]
    assert "pass 0: already collected" in process.stdout
    resumed = read_dataset(second)
    assert [r["pass_timings_ns"][0] for r in resumed["samples"]] == [
        r["timings_ns"] for r in merged["samples"]
    ]
