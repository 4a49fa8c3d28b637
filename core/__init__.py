"""Package-wide helpers that belong to no one area: atomic file writing (`file_writing`) and loading a PiTe
folder (`loading`). Every other folder may import this one; it imports no other `pite` folder but the Hub code
(`modeling_pite`, `processing`)."""
