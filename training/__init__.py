"""PiTe training."""
