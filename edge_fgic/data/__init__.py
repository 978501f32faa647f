"""Datasets: ``--data KIND=PATH`` (:mod:`.registry`), one reader per on-disk layout (:mod:`.readers`), the one
Dataset class and image checks (:mod:`.datasets`, :mod:`.images`), preprocessing (:mod:`.transforms`), the
embedded synthetic default (:mod:`.synthetic`) and ``edge-fgic datasets`` (:mod:`.summary`).

May import: errors, fileio, progress (layer 1; nothing above it). No torch at import time: torchvision only inside
the training transforms (:mod:`.transforms`) and the native readers built on its dataset classes, scipy only in
the .mat readers.
"""
