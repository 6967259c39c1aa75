# Init switch: training from scratch (Kaiming convolutions, norms 1 / 0,
# zero-initialised last norm of each residual block).
#
# Each file of configs/_base_/inits defines `backbone_init`, the backbone
# arguments of one initialisation; a row config lists one of them in its
# `_base_` and merges it with
#     model = dict(backbone={{_base_.backbone_init}})
# (mmengine forbids the same key, e.g. `model`, in two sibling bases).
# A baseline whose weights need other backbone arguments puts them here too,
# e.g. shortcut_type='A' or conv_cfg=dict(type='ACSConv').
backbone_init = dict(init_cfg=None)
