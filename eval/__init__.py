"""PiTe eval."""
