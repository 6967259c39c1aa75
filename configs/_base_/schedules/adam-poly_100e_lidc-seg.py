# LIDC-IDRI segmentation schedule of the official SVD-Net config
# (urmagicsmine/CSPR, medseg/configs/lidc/res18_3d_BN_fcn*.py, run on 4 GPUs
# x 4 volumes by medseg/lidc_train.sh): Adam, lr 1e-3, weight decay 1e-4,
# poly decay (power 0.9) per iteration down to 1e-6, 100 epochs of the
# 2142 training nodules, for a total batch of 16. With another total batch
# use --auto-scale-lr. Evaluated (and checkpointed) every 10 epochs; the
# best checkpoint has the highest Dice per case on the test split.
_base_ = ['mmseg::_base_/default_runtime.py']

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-6,
        power=0.9,
        begin=0,
        end=100,
        by_epoch=True,
        convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(base_batch_size=16)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=True,
        interval=10,
        max_keep_ckpts=2,
        save_best='dice_per_case',
        rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
log_processor = dict(by_epoch=True)
