"""mkdocs hook: links from a docs page to a file of the repository outside ``docs/``.

The record and the guide point at sweep files, benchmarks and tests (``../sweeps/fig4_heatmaps.py``). The site
has no copy of them and no repository host to link to, so such a link is written as the file's repository path
in code (``sweeps/fig4_heatmaps.py``), its text kept; so is a link to a folder of ``docs/`` that has no page of
its own (``figures/``). A link to a path that exists nowhere in the repository is
left as it is, so mkdocs' own check (``validation.links.not_found``) reports it and ``--strict`` fails.
"""

import os
import re

# [text](target) with a relative target (no scheme, no leading slash or #), as mkdocs reads it
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>(?![a-z]+:|/|#)[^)\s]+)\)")


def on_page_markdown(markdown, page, config, files):
    docs_dir = os.path.realpath(config["docs_dir"])
    repo = os.path.dirname(docs_dir)
    page_dir = os.path.dirname(os.path.join(docs_dir, page.file.src_path))

    def rewrite(match):
        target = match["target"].split("#", 1)[0]
        path = os.path.realpath(os.path.join(page_dir, target))
        if not path.startswith(repo + os.sep) or not os.path.exists(path):
            return match[0]  # a broken link, for mkdocs to report
        inside = path.startswith(docs_dir + os.sep)
        if inside and not (os.path.isdir(path) and not os.path.exists(os.path.join(path, "index.md"))):
            return match[0]  # a page or a file of the site
        rel = os.path.relpath(path, repo)
        text = match["text"]
        return f"`{rel}`" if text.strip("`") == rel else f"{text} (`{rel}`)"

    return _LINK.sub(rewrite, markdown)
