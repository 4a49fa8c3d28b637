"""PiTe demo."""
