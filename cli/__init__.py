"""PiTe cli."""
