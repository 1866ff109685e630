"""edgepose: real-time low-resolution human pose estimation.

Layers (see DESIGN.md): ``edgepose`` holds models, data, training and evaluation;
``engines`` runs exported models; ``calibration`` does INT8; ``realtime`` is the live app.
"""

__version__ = "0.1.0"
