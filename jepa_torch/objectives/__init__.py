"""Objectives in torch, pure functions of tensors: representation losses and the target layer-norm,
the grouped JEPA loss, the regularisers (VICReg, SIGReg), LeJEPA's loss."""
