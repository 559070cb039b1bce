"""griffe extension: two spellings of the package's docstrings, read as griffe's Markdown expects.

- ``Example:`` (Napoleon's spelling, also Google's) is read as ``Examples:``: griffe knows only the plural and
  would render the doctest as quoted text.
- A line ending in ``::`` (reStructuredText's "a literal block follows") ends in ``:``; the indented block after
  it is a code block in Markdown as it is.

The docstrings stay as they are (they read well in ``help()``).
"""

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_LITERAL = re.compile(r"(\S)::[ \t]*$(?=\n[ \t]*\n)", re.MULTILINE)


class DocstringSpellings(griffe.Extension):
    def on_object(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = _LITERAL.sub(r"\1:", _EXAMPLE.sub(r"\1Examples:", obj.docstring.value))
