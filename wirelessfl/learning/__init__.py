"""Models (+ peft LoRA), data sets and partitions, local training, evaluation, adapter I/O."""
