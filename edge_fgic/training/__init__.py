"""Training: the generic loop and its hooks (:mod:`.trainer`, :mod:`.hooks`), distillation (:mod:`.distill`),
recipes (:mod:`.config`), evaluation and Grad-CAM (:mod:`.evaluate`, :mod:`.eval_stage`, :mod:`.gradcam`).

May import: errors, fileio, progress, utils, data, models (not runtime, quant, bench, export).
"""
