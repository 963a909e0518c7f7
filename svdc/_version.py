"""The one place the version lives: pyproject.toml reads it (setuptools' dynamic attr), setup.py compiles it into
svdc._C as SVDC_VERSION, and svdc.__version__ is this string."""
__version__ = "0.1.0"
