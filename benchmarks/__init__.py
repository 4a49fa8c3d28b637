"""The PiTe benchmark suite: rows that print a table and write JSON.

This folder is not an installed package: `python benchmarks/run.py` (through `pite.cli.bench`) loads it by path
under the name `pite_benchmarks` from a source checkout, so its modules import each other relatively.

- `measure`: timing (alternating medians), memory, result records, the table and the JSON file
- `models`: the benchmark sizes, small PiTe / Llama models and prompts
- `rows_core`: overhead, generation, peer, features (the overhead targets and the peer comparison)
- `fast_paths`: sdpa, static, compile, batch, checkpointing, bf16 (each fast path before and after)
- `video`: key-frame structure, frames decoded by seek and sequential readers, the video row
- `gpu`: the 7B rows (decode vs the bandwidth bound, prefill, stage-2 LoRA MFU); only with CUDA
- `suite`: the row registry, the options and `main`
"""
