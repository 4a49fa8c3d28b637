"""PiTe on the Hub: build from base checkpoints, convert the original release, export, push."""
