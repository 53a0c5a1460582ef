"""The config file, declared once: models (``model``), how a key is declared (``spec``), reading TOML
(``load``), the generated JSON Schema (``schema``) and the value rules shared with the converters
(``rules``). ``worker.config`` is the public face; import from there.
"""
