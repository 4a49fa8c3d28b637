"""PiTe evaluation: the paper's benchmarks and metrics, offline, exact and documented.

Modules (each documents its protocol and usage):
- `protocols`: the two scoring protocols ("reference", the default: VTimeLLM's / Video-ChatGPT's numbers, quirks
  included; "corrected") and VTimeLLM's own readers of answers;
- `intervals`: temporal IoU (edge cases defined), reading frame spans / dense captions out of answers;
- `grounding`: R@1 at IoU 0.3 / 0.5 / 0.7 and mIoU (VTimeLLM protocol);
- `dense_captioning`, `soda`, `caption_scorers`: ActivityNet densevid_eval (P/R, METEOR, CIDEr) and SODA_c, with
  pycocoevalcap's Java METEOR / PTB tokenizer driven here;
- `trajectory`: masked L1 and PCK@5% / 10% of the frame diagonal;
- `judge`, `judge_backends`: the Video-ChatGPT LLM-judge protocol, cached, over HTTP or a local transformers LM;
- `datasets`: readers of ActivityNet Captions, Charades-STA, MSVD-QA, MSRVTT-QA, ActivityNet-QA as published;
- `predictions`, `runner`, `prompts`, `tables`: resumable generation with a pluggable `generate_fn`, scoring,
  and tables laid out like the paper's Tables 3 and 4;
- `hf_metrics`: the metrics as `evaluate` modules (`evaluate.load(metric_script_path(name))` works offline);
- `model_runner`: a saved PiTe as the runner's `generate_fn` (v1 chat prompt, left padding, greedy, skips unreadable
  videos); `trajectory_runner`: teacher-forced trajectory accuracy on stage-2 data beside the constant-centre baseline;
- `scoring`, `score_cli`: `pite eval score`: other models' prediction files (VTimeLLM log, Video-ChatGPT QA,
  ActivityNet submission, ours) scored without a model; ActivityNet-QA exact-match accuracy;
- `cli`: `pite eval grounding | dense-captioning | qa | trajectory | score` (README.md has the usage).

Nothing is imported here so that `import pite.eval.grounding` stays light.
"""
