# LIDC-IDRI classification schedule of the official SVD-Net config
# (urmagicsmine/CSPR, configs/LIDC_Cls_configs/resnet18_3d_BN_b32x4_LIDC_
# cos_smoo.py): Adam, lr 5e-4, weight decay 1e-4, lr x0.1 at epochs 30, 60
# and 90, 100 epochs, a constant warm-up at 0.1 x lr for the first 50
# iterations, for a total batch of 128 (4 GPUs x 32). With another total
# batch use --auto-scale-lr (linear scaling from base_batch_size).
# The best checkpoint is the one with the highest test AUC, as in ACS /
# SVD-Net (the release has no separate validation split).
_base_ = ['mmpretrain::_base_/default_runtime.py']

optim_wrapper = dict(optimizer=dict(type='Adam', lr=5e-4, weight_decay=1e-4))
param_scheduler = [
    dict(type='ConstantLR', factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(
        interval=10, max_keep_ckpts=2, save_best='binary/auc', rule='greater'))
