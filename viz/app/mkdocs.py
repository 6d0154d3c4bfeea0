"""The MkDocs plugin `viz`: figures written inside the Markdown as `viz` fences.

    # mkdocs.yml
    plugins: [viz]
    markdown_extensions: [pymdownx.superfences]     # added by the plugin when missing

    ```viz format="svg" caption="AttentionRNN(2), one step"
    diagram attention-rnn --view cell --k 2
    ```

The plugin installs the fence through `pymdownx.superfences` custom fences, renders each figure once
into the shared cache (the one `viz build` and notebooks use), copies the files into the site under
`assets/viz/`, and links them with URLs relative to the page, so they work with and without directory
URLs. Videos get a poster and a captions track; every figure gets alt text. A bad command shows the
command line's one-line message in the page and is logged as a warning, which fails `mkdocs build --strict`.
"""
from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.config import config_options
from mkdocs.plugins import BasePlugin
from mkdocs.utils import get_relative_url

from viz.app import embed
from viz.app.fence import FenceError, parse_fence, parse_header
from viz.io import MissingProgram, copy_atomic

log = logging.getLogger("mkdocs.plugins.viz")


class VizPlugin(BasePlugin):
    config_scheme = (("assets_dir", config_options.Type(str, default="assets/viz")),)

    def on_config(self, config):
        self._files: dict[str, Path] = {}      # site-relative path -> cached file
        self._page = None
        extensions = config["markdown_extensions"]
        if "pymdownx.superfences" not in extensions:
            extensions.append("pymdownx.superfences")
        fences = config["mdx_configs"].setdefault("pymdownx.superfences", {}).setdefault("custom_fences", [])
        fences.append({"name": "viz", "class": "viz", "validator": self._validate, "format": self._format})
        return config

    def on_page_markdown(self, markdown, page, config, files):
        self._page = page
        return markdown

    @staticmethod
    def _validate(language, inputs, options, attrs, md):
        options.update(inputs)          # format=, caption=, ...: checked in _format, with a clear message
        return True

    def _format(self, source, language, css_class, options, md, **kwargs):
        page = self._page.file.src_uri if self._page else "?"
        try:
            request = parse_fence(source, {k: str(v) for k, v in options.items()} if options else None)
            html = self._html(request)
        except (FenceError, ValueError, MissingProgram, OSError) as err:
            message = " ".join(str(err).split())
        except Exception as err:   # superfences would swallow it and print the fence as code: never silent
            message = f"{type(err).__name__}: " + " ".join(str(err).split())
        else:
            return html
        log.warning(f"{page}: viz fence: {message}")
        return embed.error_html(message)

    def _html(self, request) -> str:
        kind, values = request.kind, request.values
        if kind.writes_text:
            from viz.app.shape_report import shape_html

            return f'<figure class="viz-figure viz-shape">{shape_html(values)}</figure>'
        urls = {}
        for fmt, path in embed.request_files(request).items():
            site_path = f"{self.config['assets_dir'].strip('/')}/{path.name}"
            self._files[site_path] = path
            urls[fmt] = get_relative_url(site_path, self._page.url if self._page else "")
        return embed.figure_html(kind, values, embed.shown_format(request), urls, caption=request.caption,
                                 alt=request.alt, width=request.width)

    def on_post_build(self, config):
        site = Path(config["site_dir"])
        for site_path, source in sorted(self._files.items()):
            copy_atomic(source, site / site_path)


__all__ = ["VizPlugin", "parse_header"]
