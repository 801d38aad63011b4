"Batched, per-sample image augmentations on uint8 tensors (see `augflat.augment.ops`, `.augmix`, `.randaug`, ...)."
