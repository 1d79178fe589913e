"""The learning side: models (+ peft LoRA), data sets and partitions, the workbench that
trains and evaluates clients on one shared model, training pools, aggregators, adapter
I/O. Knows nothing of the radio."""

from wirelessfl.learning import files  # noqa: E402,F401  (registers csv, jsonl, hf_disk)
