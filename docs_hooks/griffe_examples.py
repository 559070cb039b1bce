"""griffe extension: read a Google-style ``Example:`` section as ``Examples:``.

The package's docstrings write ``Example:`` (Napoleon's spelling, also Google's); griffe knows only the plural
and would render the doctest as quoted text. Renaming the section here keeps the docstrings as they are.
"""

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_object(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
