"""Where the files edgepose ships live, and which bundled model is the default.

Importable from every layer (core), without importing the package root (which offers the
app layer's ``edgepose.load``). ``edgepose run`` / ``demo``, ``edgepose.load()`` and
``edgepose adapt`` use :data:`DEFAULT_MODEL` when no model is given.
"""

from pathlib import Path

# Bundled models and images (package data), wherever edgepose is installed.
ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_MODEL = ASSETS / "demo.onnx"  # trained on synthetic figures (--source synthetic)
# The real-people model, when this install bundles it.
REAL_MODEL = ASSETS / "real_heatmap_128.onnx"
DEFAULT_MODEL = REAL_MODEL if REAL_MODEL.is_file() else DEMO_MODEL

# Models selectable by name (``edgepose.load("heatmap-64")``, ``--model heatmap-64``): name ->
# file in ASSETS. Their rows in the model card come from benchmarks/results (docs/models.md).
# The default per input size (issue 29's rule: the most precise head at the same time budget;
# a DSNT / NerPE head within one point of PCK@0.05 of the best heatmap model ships as the
# default): heatmap-128 at 128 px (DEFAULT_MODEL), dsnt-64 at 64 px (DSNT on MoveNet Thunder's
# heatmaps, four seeds' weights averaged). heatmap-64, dsnt-128 and nerpe-* (progressive
# decoding) are the other heads on the same trunk, data and budget.
DEFAULT_BY_SIZE = {128: "heatmap-128", 64: "dsnt-64"}

NAMED_MODELS = {
    "heatmap-128": "real_heatmap_128.onnx",
    "heatmap-64": "real_heatmap_64.onnx",
    "dsnt-128": "real_dsnt_128.onnx",
    "dsnt-64": "real_dsnt_64.onnx",
    "nerpe-128": "real_nerpe_128.onnx",
    "nerpe-64": "real_nerpe_64.onnx",
}


def resolve_model(model):
    """A bundled model's name -> its file; anything else (a path, a server URL, None) as
    given. A name that is not bundled in this install but looks like one (``head-size``,
    no suffix, no such file) is left alone so the caller's "not found" names it."""
    if isinstance(model, str) and model in NAMED_MODELS:
        path = ASSETS / NAMED_MODELS[model]
        if path.is_file():
            return path
    return model
