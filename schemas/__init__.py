"""The JSON Schemas of segment-export's events and config, shipped as the package ``worker.schemas``.

Why this file exists: the schemas live here, at the top level of the repository, as their single source of
truth (editors, other teams and docs point at ``schemas/*.json``), while the worker must load them from
the installed package. pyproject.toml maps the package ``worker.schemas`` to this folder, so a wheel
carries the JSON as package data and ``importlib.resources.files("worker.schemas")`` finds it. A regular
package (this ``__init__``) rather than a namespace package, because setuptools' editable-install finder
only maps sub-packages that have an ``__init__.py``.

Do not import this folder as ``schemas``; use ``worker.events.schemas``.
"""
