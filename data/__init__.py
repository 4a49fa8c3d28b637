"""The recipe's data: reading the training files, turning them into model inputs, and batching them.

- `records`: `TrainingExample` (one conversation with its media and targets) and the record-reading helpers.
- `narratives`, `pite143k`, `instructions`: one loader per source format (Localized Narratives, PiTe-143k,
  Valley-Instruct / VideoInstruct-100K); `stage_dataset` picks them per stage and builds the `datasets.Dataset`.
- `templates`: the question templates of the training conversations (and the grounding question evaluation asks).
- `targets`: labels and per-token point / trajectory targets from a conversation (the processor's tokenization).
- `featurize`: `ExampleFeaturizer`, one `TrainingExample` to model inputs; `feature_cache`: cached frame features.
- `collator`: `PiTeDataCollator`, padding a batch.

`pite.training` and `pite.eval` both import this floor; it imports neither.
"""
