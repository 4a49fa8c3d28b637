"""PiTe annotation pipeline: PiTe-143k-style trajectory data from captioned videos."""
