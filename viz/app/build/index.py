"""The build's index pages: every figure with its caption, its media and the command that draws it.

``index.md`` (Markdown: GitHub, MkDocs, Quarto) and ``gallery.html`` (a page of its own, from the
packaged template ``templates/index.html``). They have different names because MkDocs turns
``index.md`` into ``index.html`` and drops a static file of that name (``mkdocs build --strict``
fails). Deterministic: no timestamps; they list what is on disk, so the shards of one manifest
sharing OUT all write the same complete pages once every shard is done.
"""
from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from string import Template

from viz.io import write_text_atomic

from .manifest import INDEX_HTML, INDEX_MD, Entry, Manifest

VIDEO_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}
IMAGE_FORMATS = ("svg", "png", "gif")
TEXT_FORMATS = ("md", "txt", "json")
CAPTIONS = "vtt"


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    write_text_atomic(path, text)


def _present(out_dir: Path, entry: Entry, failed: dict) -> list[str]:
    return [f for f in entry.formats if entry.file(f) not in failed and (out_dir / entry.file(f)).is_file()]


def write_index(manifest: Manifest, out_dir: Path, failed: dict | None = None) -> None:
    """Write index.md and gallery.html (only where their text changed)."""
    failed = failed or {}
    _write_if_changed(out_dir / INDEX_MD, index_markdown(manifest, out_dir, failed))
    _write_if_changed(out_dir / INDEX_HTML, index_html(manifest, out_dir, failed))


def _primary(entry: Entry, present: list[str]) -> tuple[str | None, str | None]:
    """(media format, poster) to embed: a video with its PNG still, else an image, else text."""
    video = next((f for f in present if f in VIDEO_TYPES), None)
    if video:
        return video, ("png" if "png" in present else None)
    return next((f for f in IMAGE_FORMATS + TEXT_FORMATS if f in present), None), None


def alt_text(entry: Entry) -> str:
    """What a figure shows, for a reader who cannot see it: its Story's alt text where the kind has
    a Story, else its caption, else its name."""
    if entry.kind.story:
        try:
            alt = entry.kind.build_story(entry.values).alt
        except Exception:   # an index never fails for want of an alt text
            alt = ""
        if alt:
            return alt
    return entry.caption or entry.name


def _md_alt(text: str) -> str:
    """Alt text inside Markdown's ![...]: brackets and backslashes escaped, no raw HTML, one line."""
    for char, escaped in (("\\", "\\\\"), ("[", "\\["), ("]", "\\]"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(char, escaped)
    return " ".join(text.split())


def _track(entry: Entry, present: list[str]) -> str:
    """The captions track of a video (its WebVTT file, one cue per Story step), when it was built."""
    if CAPTIONS not in present:
        return ""
    return f'<track kind="captions" src="{html.escape(entry.file(CAPTIONS))}" srclang="en" label="English" default>'


def _intro(manifest: Manifest, code) -> str:
    return (f"{len(manifest.entries)} figures built by {code(f'viz build {manifest.source}')}. "
            "Each one shows the command that reproduces it.")


def index_markdown(manifest: Manifest, out_dir: Path, failed: dict) -> str:
    parts = [f"# {manifest.title}\n"]
    if manifest.description:
        parts.append(manifest.description.strip() + "\n")
    parts.append(_intro(manifest, lambda s: f"`{s}`") + "\n")
    for entry in manifest.entries:
        present = _present(out_dir, entry, failed)
        parts.append(f"## {entry.name}\n")
        if entry.caption:
            parts.append(entry.caption + "\n")
        media, poster = _primary(entry, present)
        if media in VIDEO_TYPES:
            poster_attr = f' poster="{entry.file(poster)}"' if poster else ""
            parts.append(f'<video controls preload="none" width="640"{poster_attr} '
                         f'aria-label="{html.escape(alt_text(entry))}" '
                         f'src="{entry.file(media)}">{_track(entry, present)}</video>\n')
        elif media in IMAGE_FORMATS:
            parts.append(f"![{_md_alt(alt_text(entry))}]({entry.file(media)})\n")
        elif media == "md":
            parts.append((out_dir / entry.file(media)).read_text(encoding="utf-8").strip() + "\n")
        elif media in TEXT_FORMATS:
            body = (out_dir / entry.file(media)).read_text(encoding="utf-8").strip()
            parts.append(f"```{'json' if media == 'json' else 'text'}\n{body}\n```\n")
        parts.append("```sh\n" + "\n".join(entry.command(f) for f in entry.formats) + "\n```\n")
        links = " · ".join(f"[{f}]({entry.file(f)})" for f in present)
        if links:
            parts.append(f"Files: {links}\n")
        for f in entry.formats:
            if entry.file(f) in failed:
                parts.append(f"**Not rendered ({f}):** {failed[entry.file(f)]}\n")
    return "\n".join(parts)


def _media_html(out_dir: Path, entry: Entry, present: list[str]) -> str:
    e = html.escape
    media, poster = _primary(entry, present)
    if media in VIDEO_TYPES:
        poster_attr = f' poster="{e(entry.file(poster))}"' if poster else ""
        return (f'<video controls preload="none" width="854"{poster_attr} aria-label="{e(alt_text(entry))}">'
                f'<source src="{e(entry.file(media))}" type="{VIDEO_TYPES[media]}">{_track(entry, present)}'
                f'<a href="{e(entry.file(media))}">{e(entry.file(media))}</a></video>')
    if media in IMAGE_FORMATS:
        return f'<img src="{e(entry.file(media))}" alt="{e(alt_text(entry))}" loading="lazy">'
    if media in TEXT_FORMATS and entry.kind.writes_text:
        from viz.app.shape_report import shape_html   # the reference's own table, as in a notebook

        return f'<div class="table">{shape_html(entry.values)}</div>'
    if media in TEXT_FORMATS:
        return f"<pre>{e((out_dir / entry.file(media)).read_text(encoding='utf-8').strip())}</pre>"
    return ""


def _section_html(out_dir: Path, entry: Entry, failed: dict) -> str:
    e = html.escape
    present = _present(out_dir, entry, failed)
    out = [f'<section id="{e(entry.name)}">', f'<h2><a href="#{e(entry.name)}">{e(entry.name)}</a></h2>',
           f'<p class="kind">{e(entry.kind.summary)}</p>', "<figure>"]
    media = _media_html(out_dir, entry, present)
    if media:
        out.append(media)
    if entry.caption:
        out.append(f"<figcaption>{e(entry.caption)}</figcaption>")
    out.append("</figure>")
    out.append("<pre><code>" + "\n".join(e(entry.command(f)) for f in entry.formats) + "</code></pre>")
    if present:
        out.append('<p class="files">Files: ' + "".join(
            f'<a href="{e(entry.file(f))}">{e(f)}</a>' for f in present) + "</p>")
    for f in entry.formats:
        if entry.file(f) in failed:
            out.append(f'<p class="failed">Not rendered ({e(f)}): {e(failed[entry.file(f)])}</p>')
    out.append("</section>")
    return "\n".join(out)


def index_html(manifest: Manifest, out_dir: Path, failed: dict) -> str:
    e = html.escape
    page = Template((resources.files(__package__) / "templates" / "index.html").read_text(encoding="utf-8"))
    description = f"<p>{e(manifest.description.strip())}</p>\n" if manifest.description else ""
    return page.substitute(
        title=e(manifest.title), description=description, count=len(manifest.entries),
        source=e(manifest.source),
        nav="".join(f'<a href="#{e(x.name)}">{e(x.name)}</a>' for x in manifest.entries),
        sections="\n".join(_section_html(out_dir, x, failed) for x in manifest.entries))
