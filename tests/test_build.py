"""viz build: manifest validation, the content-addressed cache, parallel rendering, failures, index.

The machinery is tested with a fake figure kind registered for the test (its renderer writes a small
file and logs every render), so these tests are fast; a few tests at the end render real figures.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from viz.app import build, cli, registry as figures

FAKE = figures.FigureKind(
    command="diagram", name="fake",
    summary="A fake figure for the build tests.",
    params=(
        figures.Param("size", "int", 3, "A size.", min=1, max=9),
        figures.Param("input", "shape", (7,), "A shape.", min=1, max=32),
        figures.Param("fail", "flag", False, "Raise after writing half a file."),
        figures.Param("sleep", "float", 0.0, "Seconds to sleep.", min=0, max=5),
    ),
    formats=("svg", "png", "txt", "mp4"),
    render=f"{__name__}:fake_render",
)


def fake_render(kind, values, out: Path, fmt: str) -> None:
    """Writes a few bytes that depend on the parameters; logs the render to $VIZ_FAKE_LOG."""
    time.sleep(values["sleep"])
    with open(os.environ["VIZ_FAKE_LOG"], "a") as log:
        log.write(f"{out.name.split('.')[1]}.{fmt} {os.getpid()}\n")
    if values["fail"]:
        out.write_text("half a fil")
        print("renderer chatter before the crash")
        raise RuntimeError("the fake renderer failed on purpose")
    if fmt == "svg":
        out.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" width="{values["size"]}0" height="10"/>')
    else:
        out.write_bytes(f"{fmt} size={values['size']} input={values['input']}".encode())


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setitem(figures.KINDS, FAKE.key, FAKE)
    log = tmp_path / "renders.log"
    log.touch()
    monkeypatch.setenv("VIZ_FAKE_LOG", str(log))

    def renders() -> list[str]:
        names = [line.split()[0] for line in log.read_text().splitlines()]
        log.write_text("")
        return names

    return renders


MANIFEST = '''title = "Test gallery"

[[figure]]
name = "one"
kind = "diagram fake"
formats = ["svg", "png"]
caption = "The first <figure> & its caption."
[figure.params]
size = 2

[[figure]]
name = "two"
kind = "diagram fake"
formats = ["txt"]
[figure.params]
input = "7x5"

[[figure]]
name = "video"
kind = "diagram fake"
formats = ["mp4", "png"]
caption = "A video with its still."
'''


def write(tmp_path: Path, text: str, name="figures.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_build(manifest, out, **kw) -> tuple[build.BuildReport, str]:
    stream = io.StringIO()
    report = build.build(manifest, out, stream=stream, **kw)
    return report, stream.getvalue()


# ---------------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize("params, message", [
    ("size = 0", 'figures.toml:9: figure "bad": --size: must be an integer in 1..9 (got 0)'),
    ('input = "7x0"', 'figures.toml:9: figure "bad": --input: must be sizes like 7 or 7x5 (up to 3 axes), '
                      'each in 1..32 (got 7x0)'),
    ("colour = 2", "figures.toml:9: figure \"bad\": unknown parameter 'colour' for diagram fake"),
])
def test_bad_parameter_is_reported_with_entry_name_and_line(fake, tmp_path, params, message):
    text = MANIFEST.split("[[figure]]\nname = \"two\"")[0].replace("size = 2\n", "") + \
        f'[[figure]]\nname = "bad"\nkind = "diagram fake"\nformats = ["svg"]\n[figure.params]\n{params}\n'
    lines = text.splitlines()
    # the bad value is on line 9 of the entry's own text; shift the expected line to the file
    offset = lines.index('name = "bad"') - 1
    message = message.replace("figures.toml:9:", f"figures.toml:{offset + 6}:")
    with pytest.raises(build.ManifestError) as err:
        build.load_manifest(write(tmp_path, text))
    assert len(err.value.errors) == 1
    assert err.value.errors[0].startswith(message), err.value.errors[0]


def test_every_problem_is_reported_with_its_line(fake, tmp_path):
    text = '''[[figure]]
name = "a"
kind = "diagram nope"
formats = ["svg"]

[[figure]]
name = "b"
kind = "diagram fake"
formats = ["svg", "gif"]

[[figure]]
name = "c"
kind = "diagram fake"
formts = ["svg"]

[[figure]]
name = "b"
kind = "diagram fake"
formats = ["svg"]

[[figure]]
name = "../evil"
kind = "diagram fake"
formats = ["svg"]
'''
    with pytest.raises(build.ManifestError) as err:
        build.load_manifest(write(tmp_path, text))
    errors = err.value.errors
    assert errors[0].startswith("figures.toml:3: figure \"a\": unknown figure kind 'diagram nope' (allowed: ")
    assert errors[1] == ("figures.toml:9: figure \"b\": formats: diagram fake writes svg, png, txt, mp4 "
                         "(got 'gif')")
    assert errors[2].startswith("figures.toml:14: figure \"c\": unknown key 'formts'")
    assert errors[3].startswith("figures.toml:11: figure \"c\": formats: must be a non-empty list")
    assert errors[4].startswith("figures.toml:17: figure \"b\": name 'b' is used twice (first at line 6)")
    assert errors[5].startswith("figures.toml:22: figure \"../evil\": name: must be a file name")
    assert len(errors) == 6


def test_invalid_toml_and_empty_manifest(tmp_path):
    with pytest.raises(build.ManifestError) as err:
        build.load_manifest(write(tmp_path, '[[figure]]\nname = "a\n'))
    assert err.value.errors[0].startswith("figures.toml:2: invalid TOML: ")
    with pytest.raises(build.ManifestError) as err:
        build.load_manifest(write(tmp_path, 'title = "x"\n'))
    assert err.value.errors == ["figures.toml: no figures (add [[figure]] tables)"]


def test_reference_rejects_a_combination(tmp_path):
    text = '[[figure]]\nname = "small"\nkind = "shape"\nformats = ["md"]\n[figure.params]\ninput = 3\nkernel = 4\n'
    with pytest.raises(build.ManifestError) as err:
        build.load_manifest(write(tmp_path, text))
    line = err.value.errors[0]
    assert line.startswith('figures.toml:7: figure "small": kernel')  # the line of kernel = 4


def test_quality_overrides(tmp_path):
    text = ('[[figure]]\nname = "c"\nkind = "animate conv"\nformats = ["mp4"]\n'
            '[figure.params]\ninput = 7\nquality = "high"\n')
    m = build.load_manifest(write(tmp_path, text))
    assert m.entries[0].key == "animate conv" and m.entries[0].values["quality"] == "high"
    m = build.load_manifest(write(tmp_path, text), quality="low")
    assert m.entries[0].values["quality"] == "low"


def test_cli_exit_2_and_nothing_written_on_invalid_manifest(fake, tmp_path, capsys):
    path = write(tmp_path, MANIFEST.replace("size = 2", "size = 10"))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as done:
        cli.main(["build", str(path), "--out", str(out)])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert 'figures.toml:9: figure "one": --size: must be an integer in 1..9 (got 10)' in err
    assert "nothing was rendered" in err
    assert not out.exists() and fake() == []


# ---------------------------------------------------------------------------------------------------
# Cache


def test_second_build_renders_nothing_and_says_so(fake, tmp_path):
    path, out = write(tmp_path, MANIFEST), tmp_path / "out"
    report, text = run_build(path, out, jobs=1)
    assert report.ok and sorted(fake()) == ["one.png", "one.svg", "two.txt", "video.mp4", "video.png"]
    assert "[3/3]" in text
    assert sorted(p.name for p in out.iterdir()) == [
        ".viz-cache.json", "gallery.html", "index.md", "one.png", "one.svg", "two.txt", "video.mp4",
        "video.png"]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    report, text = run_build(path, out, jobs=1)
    assert fake() == [] and report.rendered == [] and len(report.up_to_date) == 5
    assert text.startswith("viz build: nothing to render: all 3 figures (5 files) are up to date")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # not even the index


def test_only_what_changed_is_rendered_again(fake, tmp_path, monkeypatch):
    path, out = write(tmp_path, MANIFEST), tmp_path / "out"
    run_build(path, out, jobs=1)
    fake()
    # a parameter of one entry
    write(tmp_path, MANIFEST.replace("size = 2", "size = 4"))
    run_build(path, out, jobs=1)
    assert sorted(fake()) == ["one.png", "one.svg"]
    # a caption is not a parameter: nothing to render, but the index changes
    write(tmp_path, MANIFEST.replace("size = 2", "size = 4").replace("A video with", "A movie with"))
    run_build(path, out, jobs=1)
    assert fake() == [] and "A movie with" in (out / "gallery.html").read_text()
    # a deleted output, and an output changed on disk
    (out / "two.txt").unlink()
    (out / "video.png").write_text("edited")
    run_build(path, out, jobs=1)
    assert sorted(fake()) == ["two.txt", "video.png"]
    # --force
    run_build(path, out, jobs=1, force=True)
    assert len(fake()) == 5


@pytest.mark.parametrize("change", ["viz version", "tool version", "source"])
def test_viz_tool_and_source_changes_invalidate(fake, tmp_path, monkeypatch, change):
    path, out = write(tmp_path, MANIFEST), tmp_path / "out"
    run_build(path, out, jobs=1)
    fake()
    if change == "viz version":
        monkeypatch.setattr(build.cache, "__version__", "99.0")
    elif change == "tool version":
        real = build.cache.tool_version
        monkeypatch.setattr(build.cache, "tool_version",
                            lambda t: "dot - graphviz version 99" if t == "dot" else real(t))
    else:
        monkeypatch.setattr(build.cache, "source_hash", lambda packages=(): "0" * 64)
    run_build(path, out, jobs=1)
    assert len(fake()) == 5


def test_cache_key_is_canonical_and_per_format():
    values = FAKE.validate({"size": 2, "input": "7x5"})
    assert build.cache_key("diagram fake", values, "svg") == build.cache_key(
        "diagram fake", FAKE.validate({"input": [7, 5], "size": "2"}), "svg")
    assert build.cache_key("diagram fake", values, "svg") != build.cache_key("diagram fake", values, "png")
    assert build.cache_key("diagram fake", values, "svg") != build.cache_key(
        "diagram fake", FAKE.validate({"size": 3, "input": "7x5"}), "svg")


def test_source_hash_covers_the_packages_that_draw(monkeypatch):
    front = build.cache.is_front_end
    assert front("viz/app/build/core.py") and front("viz/app/cli.py") and front("viz/app/serve/answers.py")
    assert not front("viz/conv.py") and not front("viz/app/registry.py") and not front("viz/app/shape_report.py")
    assert len(build.source_hash()) == 64
    assert build.source_hash(("viz",)) != build.source_hash(("viz", "scenes"))
    # an edit to scenes/ changes the key of an animation, not of a diagram or a shape
    real = build.source_hash
    monkeypatch.setattr(build.cache, "source_hash",
                        lambda packages=build.cache.SOURCE_PACKAGES: real(packages) + ("!" if "scenes" in packages else ""))
    shape = figures.get("shape").validate({"input": 7, "kernel": 3})
    conv = figures.get("animate conv").validate({})
    gated = figures.get("diagram gated-rnn").validate({})
    before = [build.cache_key("shape", shape, "md"), build.cache_key("diagram gated-rnn", gated, "svg")]
    anim = build.cache_key("animate conv", conv, "mp4")
    monkeypatch.setattr(build.cache, "source_hash", real)
    assert before == [build.cache_key("shape", shape, "md"), build.cache_key("diagram gated-rnn", gated, "svg")]
    assert anim != build.cache_key("animate conv", conv, "mp4")


# ---------------------------------------------------------------------------------------------------
# Failures, atomic output, parallel processes


def test_a_failing_figure_does_not_stop_the_others(fake, tmp_path, capsys):
    text = MANIFEST.replace("size = 2", "size = 2\nfail = true")
    path, out = write(tmp_path, text), tmp_path / "out"
    with pytest.raises(SystemExit) as done:
        cli.main(["build", str(path), "--out", str(out), "--jobs", "2"])
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert "viz build: 2 files failed:" in err
    assert "one.svg: RuntimeError: the fake renderer failed on purpose" in err
    files = sorted(p.name for p in out.iterdir())
    # the others are there; the failed ones are not, not even half written, and no temp file is left
    assert files == [".viz-cache.json", ".viz-logs", "gallery.html", "index.md", "two.txt", "video.mp4",
                     "video.png"]
    log = (out / ".viz-logs" / "one.log").read_text()
    assert "RuntimeError" in log and "renderer chatter before the crash" in log
    assert "Not rendered (svg): RuntimeError: the fake renderer failed on purpose" in (out / "gallery.html").read_text()
    # the next build retries only the failed figure
    fake()
    report, _ = run_build(path, out, jobs=1)
    assert sorted(fake()) == ["one.png", "one.svg"] and not report.ok


def test_parallel_jobs_render_in_worker_processes(fake, tmp_path):
    entries = "".join(f'[[figure]]\nname = "f{i}"\nkind = "diagram fake"\nformats = ["txt"]\n'
                      f'[figure.params]\nsleep = 0.3\nsize = {i + 1}\n\n' for i in range(4))
    path, out = write(tmp_path, entries), tmp_path / "out"
    report, text = run_build(path, out, jobs=2)
    assert report.ok and len(report.rendered) == 4
    pids = {int(line.split()[1]) for line in Path(os.environ["VIZ_FAKE_LOG"]).read_text().splitlines()}
    assert os.getpid() not in pids and len(pids) == 2
    assert "with 2 jobs" in text and text.count("viz build: [") == 4


# ---------------------------------------------------------------------------------------------------
# Index


def test_index_embeds_media_captions_and_commands_deterministically(fake, tmp_path):
    path = write(tmp_path, MANIFEST)
    run_build(path, tmp_path / "a", jobs=1)
    run_build(path, tmp_path / "b", jobs=2)
    a, b = tmp_path / "a", tmp_path / "b"
    for name in ("gallery.html", "index.md"):
        assert (a / name).read_text() == (b / name).read_text()
    page = (a / "gallery.html").read_text()
    assert "<title>Test gallery</title>" in page
    assert '<img src="one.svg" alt="The first &lt;figure&gt; &amp; its caption."' in page
    assert ('<video controls preload="none" width="854" poster="video.png" aria-label="A video with its still.">'
            '<source src="video.mp4" type="video/mp4">') in page
    assert "viz diagram fake --size 2 --format svg -o one.svg" in page
    assert "viz diagram fake --input 7x5 --format txt -o two.txt" in page
    assert "<pre>txt size=3 input=(7, 5)</pre>" in page
    md = (a / "index.md").read_text()
    assert "![The first &lt;figure&gt; & its caption.](one.svg)" in md   # alt text: the caption (no Story)
    assert 'poster="video.png" aria-label="A video with its still." src="video.mp4"' in md
    assert "The first <figure> & its caption." in md


def test_progress_prints_one_line_per_figure_without_a_terminal(fake, tmp_path):
    _, text = run_build(write(tmp_path, MANIFEST), tmp_path / "out", jobs=1)
    lines = text.splitlines()
    assert lines[0].startswith("viz build: rendering 3 of 3 figures (5 files)")
    assert [line.split(":")[1].strip() for line in lines[1:4]] == ["[1/3] one", "[2/3] two", "[3/3] video"]
    assert lines[-1].startswith("viz build: 5 files rendered, 0 up to date, 0 failed in ")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_shows_done_total_and_the_running_figure():
    import re

    stream = FakeTerminal()
    bar = build.Progress(4, stream)
    bar.start("conv1d-forward")
    plain = lambda: re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    assert plain().rstrip().endswith("0/4 0:00:00 conv1d-forward (0 s)"), plain()
    bar.finish("conv1d-forward", False, "mp4 in 1.0 s")
    assert "viz build: [1/4] conv1d-forward: mp4 in 1.0 s" in plain()
    assert plain().rstrip().endswith("1/4 0:00:00")
    bar.start("gated-cell")
    bar.finish("gated-cell", True, "FAILED svg: boom")
    assert "viz build: [2/4] gated-cell: FAILED svg: boom\n" in plain()   # printed above the bar, stays
    bar.close()
    assert stream.getvalue().endswith("\x1b[?25h\r\x1b[1A\x1b[2K")   # the bar erased, the cursor back


def test_no_escape_codes_without_a_terminal():
    stream = io.StringIO()
    bar = build.Progress(2, stream)
    bar.start("a")
    bar.finish("a", False, "svg in 0.1 s")
    bar.close()
    assert stream.getvalue() == "viz build: [1/2] a: svg in 0.1 s\n"


# ---------------------------------------------------------------------------------------------------
# The default gallery and real figures


def test_default_gallery_is_valid():
    m = build.load_manifest(build.packaged_gallery())
    kinds = {e.key for e in m.entries}
    assert {"shape", "diagram gated-rnn", "diagram attention-rnn", "animate conv", "animate conv-backward",
            "animate bptt", "plot training"} <= kinds
    assert all(e.caption for e in m.entries)
    conv2d = next(e for e in m.entries if e.name == "conv2d-strided-dilated")
    assert conv2d.values["input"] == (7, 7) and conv2d.values["dilation"] in (2, (2,), (2, 2))
    videos = [e for e in m.entries if e.kind.is_video]
    assert videos and all(e.values["quality"] == "high" for e in videos)       # 1080p60: for slides
    assert all("vtt" in e.formats for e in videos)                              # with captions tracks


def test_real_shape_and_diagram_build(tmp_path):
    pytest.importorskip("diagrams.figures", reason="diagram renderer not written yet")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` is not installed (apt-get install graphviz)")
    text = ('[[figure]]\nname = "hw"\nkind = "shape"\nformats = ["md", "json"]\n'
            '[figure.params]\ninput = "21x12"\nkernel = "4x5"\nstride = 4\n\n'
            '[[figure]]\nname = "cell"\nkind = "diagram gated-rnn"\nformats = ["svg"]\n'
            '[figure.params]\nview = "cell"\n')
    out = tmp_path / "out"
    report, _ = run_build(write(tmp_path, text), out, jobs=1)
    assert report.ok, report.failed
    assert json.loads((out / "hw.json").read_text())["out_shape"] == [5, 2]
    assert (out / "cell.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "viz shape --input 21x12 --kernel 4x5 --stride 4 -o hw.md" in (out / "index.md").read_text()
    page = (out / "gallery.html").read_text()
    assert '<div class="table"><table' in page and "floor((21 + 0 + 0 - 1*(4-1) - 1)/4) + 1 = 5" in page


def test_an_os_error_is_tried_once_more(fake, tmp_path, monkeypatch):
    calls = []

    def flaky(kind, values, out, fmt):
        calls.append(fmt)
        if len(calls) == 1:
            raise FileNotFoundError(2, "No such file or directory", "texts/abc_.svg")
        out.write_text("<svg/>")

    monkeypatch.setattr(sys.modules[__name__], "fake_render", flaky)
    text = '[[figure]]\nname = "f"\nkind = "diagram fake"\nformats = ["svg"]\n'
    report, _ = run_build(write(tmp_path, text), tmp_path / "out", jobs=1)
    assert report.ok and calls == ["svg", "svg"]
    # a ValueError is the figure's own error: not tried again
    calls.clear()
    monkeypatch.setattr(sys.modules[__name__], "fake_render",
                        lambda *a: calls.append(1) or (_ for _ in ()).throw(ValueError("bad figure")))
    report, _ = run_build(write(tmp_path, text), tmp_path / "out", jobs=1, force=True)
    assert report.failed == {"f.svg": "bad figure"} and calls == [1]


# ---------------------------------------------------------------------------------------------------
# Manifests that used to crash, and output folders that cannot be used: one line each, exit status 2


def cli_build(path, out, capsys, *more) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(["build", str(path), "--out", str(out), *more])
    return done.value.code, capsys.readouterr().err


def test_invalid_utf8_is_one_line(fake, tmp_path, capsys):
    path = tmp_path / "figures.toml"
    path.write_bytes(b'[[figure]]\nname = "caf\xe9"\n')
    code, err = cli_build(path, tmp_path / "out", capsys)
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[0] == ("figures.toml:2: not UTF-8 text (byte 0xe9 at offset 22); "
                                   "save the manifest as UTF-8")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["[" * 20000 + "]" * 20000, "{a=" * 20000 + "1" + "}" * 20000])
def test_deeply_nested_toml_is_one_line(tmp_path, value):
    with pytest.raises(build.ManifestError) as err:
        build.load_manifest(write(tmp_path, f"x = {value}\n"))
    assert err.value.errors == ["figures.toml: invalid TOML: arrays or tables nested too deeply"]


def test_a_figure_cannot_take_the_index_name_or_another_figures_file(fake, tmp_path, monkeypatch):
    import dataclasses

    storied = dataclasses.replace(FAKE, name="storied", formats=("svg", "json"), story=f"{__name__}:fake_render")
    monkeypatch.setitem(figures.KINDS, storied.key, storied)
    assert "story.json" in storied.all_formats
    text = ('[[figure]]\nname = "index"\nkind = "shape"\nformats = ["md"]\n[figure.params]\ninput = 7\nkernel = 3\n\n'
            '[[figure]]\nname = "s"\nkind = "diagram storied"\nformats = ["story.json"]\n\n\n\n\n'
            '[[figure]]\nname = "s.story"\nkind = "diagram storied"\nformats = ["json"]\n')
    with pytest.raises(build.ManifestError) as err:
        build.load_manifest(write(tmp_path, text))
    first, second = err.value.errors
    assert first == 'figures.toml:2: figure "index": index.md is the build\'s own index page; rename the figure'
    assert second == ('figures.toml:18: figure "s.story": writes s.story.json, which figure "s" (line 9) '
                      'writes too; rename one of them')


def test_a_newline_in_a_name_stays_on_one_line(fake, tmp_path, capsys):
    path = write(tmp_path, '[[figure]]\nname = "two\\nlines"\nkind = "diagram nope"\nformats = ["svg"]\n')
    code, err = cli_build(path, tmp_path / "out", capsys)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 3, err     # kind, name, and the summary line
    assert lines[0].startswith('figures.toml:2: figure "two\\nlines": name: must be a file name')
    assert lines[1].startswith('figures.toml:3: figure "two\\nlines": unknown figure kind')


@pytest.mark.parametrize("make, message", [
    (lambda out: out.write_text("x"), "viz: error: Invalid value for '-o' / '--out': Directory '{out}' is a file."),
    (lambda out: (out.parent / "afile").write_text("x"), "--out: cannot write to {parent}/afile/out: "
                                                         "a parent of it is a file, not a folder"),
    (lambda out: (out / ".viz-cache.json").mkdir(parents=True),
     "--out: {out}/.viz-cache.json is a folder, but the build writes a file there; move it away"),
    (lambda out: (out / "gallery.html").mkdir(parents=True),
     "--out: {out}/gallery.html is a folder, but the build writes a file there; move it away"),
    (lambda out: (out / "one.svg").mkdir(parents=True),
     "--out: {out}/one.svg is a folder, but the build writes a file there; move it away"),
    (lambda out: out.mkdir() or (out / ".viz-logs").write_text("x"),
     "--out: {out}/.viz-logs is a file, but the build keeps its failure logs in a folder there; move it away"),
], ids=["out-is-a-file", "parent-is-a-file", "cache-is-a-folder", "index-is-a-folder", "output-is-a-folder",
        "logs-is-a-file"])
def test_unusable_output_folder_is_one_line_before_anything_renders(fake, tmp_path, capsys, make, message):
    out = tmp_path / "out"
    make(out)
    if "afile" in message:
        out = tmp_path / "afile" / "out"
    code, err = cli_build(write(tmp_path, MANIFEST), out, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[0] == message.format(out=out, parent=tmp_path)
    assert fake() == []


LAUNCHER = """
import sys
sys.path.insert(0, {tests!r})
import test_build
from viz.app import registry
registry.KINDS[test_build.FAKE.key] = test_build.FAKE
from viz.app.cli import main
main(sys.argv[1:])
"""


def in_small_tmpfs(tmp_path, options: str, *viz_args) -> subprocess.CompletedProcess:
    """`viz ...` (the fake kind registered) in a private mount namespace with a tmpfs at tmp_path/mnt."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private tmpfs")
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER.format(tests=str(Path(__file__).parent)))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = f'mount -t tmpfs -o {options} tmpfs "$1" && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(mnt), sys.executable, str(launcher),
                           *viz_args], capture_output=True, text=True,
                          env={**os.environ, "VIZ_FAKE_LOG": str(tmp_path / "renders.log")})


def test_read_only_output_folder(tmp_path):
    (tmp_path / "renders.log").touch()
    done = in_small_tmpfs(tmp_path, "ro,size=64k", "build", str(write(tmp_path, MANIFEST)),
                          "--out", str(tmp_path / "mnt" / "out"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0] == f"--out: cannot write to {tmp_path}/mnt/out: Read-only file system"


def test_full_disk_fails_figures_one_line_each_and_keeps_the_others_records(tmp_path):
    (tmp_path / "renders.log").touch()
    entries = "".join(f'[[figure]]\nname = "f{i:02}"\nkind = "diagram fake"\nformats = ["svg", "txt"]\n'
                      f'[figure.params]\nsize = {i % 9 + 1}\n\n' for i in range(14))
    out = tmp_path / "mnt" / "out"
    done = in_small_tmpfs(tmp_path, "size=64k", "build", str(write(tmp_path, entries)), "--out", str(out),
                          "--jobs", "2")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "_RemoteTraceback" not in done.stderr
    failed = [line for line in done.stderr.splitlines() if line.startswith("  f")]
    assert failed and all("No space left on device" in line for line in failed), done.stderr
    assert all(line.startswith(("viz build: ", "  f")) for line in done.stderr.splitlines()), done.stderr


# ---------------------------------------------------------------------------------------------------
# Course scale: shards, a dask cluster, MkDocs


def test_shards_partition_the_manifest_deterministically():
    m = build.load_manifest(build.packaged_gallery())
    for count in (1, 2, 3, 7):
        shards = [build.shard(m.entries, i, count) for i in range(1, count + 1)]
        names = [e.name for s in shards for e in s]
        assert sorted(names) == sorted(e.name for e in m.entries) and len(set(names)) == len(names)
        assert shards == [build.shard(m.entries, i, count) for i in range(1, count + 1)]   # same again
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1
        animations = [sum(e.key.startswith("animate") for e in s) for s in shards]
        assert max(animations) - min(animations) <= 1       # the slow ones are dealt first, evenly
        for s in shards:                                     # manifest order inside a shard
            assert list(s) == sorted(s, key=m.entries.index)
    assert build.parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "2", "a/b", "1/0", "1/10001"):
        with pytest.raises(ValueError, match=r"^--shard: must be I/N with 1 <= I <= N <= 10000"):
            build.parse_shard(bad)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """A copy of the packages for processes that must agree on cache keys (they hash the source,
    and the working tree may be edited while the tests run)."""
    src = tmp_path_factory.mktemp("src")
    root = Path(__file__).resolve().parents[1]
    for package in ("viz", "diagrams", "scenes"):
        shutil.copytree(root / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def viz_process(tmp_path, snapshot, *args) -> subprocess.Popen:
    """`viz ARGS` in a new process running `snapshot`, with the fake kind registered."""
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER.format(tests=str(Path(__file__).parent)))
    return subprocess.Popen([sys.executable, str(launcher), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(snapshot)})


def test_shards_share_one_output_folder_and_one_index(fake, tmp_path, capsys, snapshot):
    entries = "".join(f'[[figure]]\nname = "f{i}"\nkind = "diagram fake"\nformats = ["svg", "txt"]\n'
                      f'[figure.params]\nsize = {i + 1}\nsleep = 0.1\n\n' for i in range(7))
    path, out = write(tmp_path, entries), tmp_path / "out"
    # three shards at once into one OUT, as a SLURM array or GNU parallel runs them
    shards = [viz_process(tmp_path, snapshot, "build", str(path), "--out", str(out), "--shard", f"{i}/3", "--jobs", "1")
              for i in (1, 2, 3)]
    said = [p.communicate(timeout=120)[1] for p in shards]
    assert [p.returncode for p in shards] == [0, 0, 0], said
    assert [s.splitlines()[0] for s in said] == [
        f"viz build: rendering {n} of {n} figures (shard {i}/3) ({2 * n} files) into {out} with 1 job"
        for i, n in ((1, 3), (2, 2), (3, 2))]
    files = sorted(f"f{i}.{x}" for i in range(7) for x in ("svg", "txt"))
    assert sorted(json.loads((out / ".viz-cache.json").read_text())["files"]) == files   # merged, none lost
    page = (out / "gallery.html").read_text()
    assert all(f'<img src="f{i}.svg"' in page for i in range(7))   # the last shard's index has them all
    again = viz_process(tmp_path, snapshot, "build", str(path), "--out", str(out))
    assert again.communicate(timeout=60)[1].startswith("viz build: nothing to render: all 7 figures")
    code, err = cli_build(path, out, capsys, "--shard", "4/3")
    assert code == 2 and err.strip() == "viz: error: --shard: must be I/N with 1 <= I <= N <= 10000, e.g. 2/4 (got '4/3')"


def test_a_shard_shows_the_failures_of_the_others(fake, tmp_path):
    text = MANIFEST.replace("size = 2", "size = 2\nfail = true")
    path, out = write(tmp_path, text), tmp_path / "out"
    mine = {e.name for e in build.shard(build.load_manifest(path).entries, 1, 2)}
    first, second = (1, 2) if "one" in mine else (2, 1)
    run_build(path, out, jobs=1, shard_of=(first, 2))        # renders (and fails) "one"
    report, _ = run_build(path, out, jobs=1, shard_of=(second, 2))
    assert report.ok   # its own figures are fine, but its index says what the other shard could not do
    message = "RuntimeError: the fake renderer failed on purpose"
    assert f"**Not rendered (svg):** {message}" in (out / "index.md").read_text()
    assert f"Not rendered (svg): {message}" in (out / "gallery.html").read_text()


def test_executor_dask_renders_each_figure_in_its_own_process(tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (viz[dask])")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` is not installed")
    text = ('[[figure]]\nname = "hw"\nkind = "shape"\nformats = ["md", "json"]\n'
            '[figure.params]\ninput = "21x12"\nkernel = "4x5"\nstride = 4\n\n'
            '[[figure]]\nname = "cell"\nkind = "diagram gated-rnn"\nformats = ["svg"]\n'
            '[figure.params]\nview = "cell"\n')
    path = write(tmp_path, text)
    # worker threads in this process (light), over TCP as a real cluster; each figure still renders
    # in a process of its own (render_in_subprocess)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        report, said = run_build(path, tmp_path / "dask", executor=address)
    assert report.ok, report.failed
    assert f"on the dask cluster {cluster.scheduler_address}" in said
    local, _ = run_build(path, tmp_path / "local", jobs=1)
    for file in ("hw.md", "hw.json", "cell.svg", "index.md", "gallery.html"):
        assert (tmp_path / "dask" / file).read_bytes() == (tmp_path / "local" / file).read_bytes(), file
    with pytest.raises(ValueError, match=r"^--executor: must be local or dask://HOST:PORT \(got 'spark://x'\)"):
        build.build(path, tmp_path / "x", executor="spark://x")


def test_an_unreachable_dask_scheduler_is_one_line_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed", reason="dask.distributed is not installed (viz[dask])")
    monkeypatch.setattr(build.runner, "DASK_CONNECT_TIMEOUT", "1s")
    path = write(tmp_path, '[[figure]]\nname = "hw"\nkind = "shape"\nformats = ["md"]\n'
                           '[figure.params]\ninput = 7\nkernel = 3\n')
    code, err = cli_build(path, tmp_path / "out", capsys, "--executor", "dask://127.0.0.1:1")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("viz: error: --executor: cannot reach the dask scheduler at tcp://127.0.0.1:1 (")
    assert not (tmp_path / "out").exists()


def test_mkdocs_strict_build_over_the_output(fake, tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (test extra)")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Course\n\n[The figures](fig/index.md)\n")
    text = MANIFEST + ('\n[[figure]]\nname = "hw"\nkind = "shape"\nformats = ["md", "json"]\n'
                       '[figure.params]\ninput = 7\nkernel = 3\nstride = 2\n')
    report, _ = run_build(write(tmp_path, text), docs / "fig", jobs=1)
    assert report.ok
    (tmp_path / "mkdocs.yml").write_text("site_name: Course\n")
    # not -q: with -q MkDocs drops its warnings before --strict counts them (it passes regardless)
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "conflicts" not in done.stderr and "WARNING" not in done.stderr, done.stderr
    site = tmp_path / "site" / "fig"
    page = (site / "index.html").read_text()
    assert 'src="one.svg"' in page and 'src="video.mp4"' in page and (site / "video.mp4").is_file()
    assert (site / "gallery.html").read_text() == (docs / "fig" / "gallery.html").read_text()
    assert not (site / ".viz-cache.json").exists()


def test_a_video_with_its_captions_file_gets_a_captions_track(fake, tmp_path, monkeypatch):
    import dataclasses

    class Captioned(figures.FigureKind):
        def render_to(self, values, out, fmt):   # the fake's bytes for the .vtt too
            fake_render(self, values, out, fmt)

    fields = {f.name: getattr(FAKE, f.name) for f in dataclasses.fields(FAKE)}
    captioned = Captioned(**{**fields, "name": "captioned", "formats": ("mp4", "png", "vtt")})
    monkeypatch.setitem(figures.KINDS, captioned.key, captioned)
    text = '[[figure]]\nname = "v"\nkind = "diagram captioned"\nformats = ["mp4", "png", "vtt"]\n'
    report, _ = run_build(write(tmp_path, text), tmp_path / "out", jobs=1)
    assert report.ok
    track = '<track kind="captions" src="v.vtt" srclang="en" label="English" default>'
    assert f'<source src="v.mp4" type="video/mp4">{track}<a href="v.mp4">' in (tmp_path / "out" / "gallery.html").read_text()
    assert f'poster="v.png" aria-label="v" src="v.mp4">{track}</video>' in (tmp_path / "out" / "index.md").read_text()


def test_alt_text_comes_from_the_story_and_survives_markdown(tmp_path):
    import html as html_lib
    import re

    markdown = pytest.importorskip("markdown")
    text = ('[[figure]]\nname = "cell"\nkind = "diagram gated-rnn"\nformats = ["svg"]\n'
            'caption = "One step."\n[figure.params]\nview = "cell"\n')
    m = build.load_manifest(write(tmp_path, text))
    entry = m.entries[0]
    alt = entry.kind.build_story(entry.values).alt
    assert "h[t-1]" in alt or "[" in alt          # brackets, the case Markdown needs escaped
    out = tmp_path / "out"
    out.mkdir()
    (out / "cell.svg").write_text("<svg/>")
    page = build.index_html(m, out, {})
    assert f'<img src="cell.svg" alt="{html_lib.escape(alt)}"' in page
    rendered = markdown.markdown(build.index_markdown(m, out, {}))
    shown = html_lib.unescape(re.search(r'<img alt="([^"]*)" src="cell.svg"', rendered).group(1))
    assert shown == " ".join(alt.split())
