"""How an attack's gradient passes an inference-time defense's non-differentiable step.

`attack --gradient`: straight-through (the default, as ART and zantedeschi) or masked
(the true, zero gradient, which shows the masking). Its own module so that the registry
(which must not import torch) and the wrappers (which do) share one spelling.
"""

GRADIENTS = ("straight-through", "masked")
