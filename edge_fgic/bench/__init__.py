"""The benchmark harness (`edge-fgic bench`)."""
