# DeepLesion fine-tuning schedule of SVD-Net (the official code's "2x"):
# 24 epochs of SGD, lr 0.02 for a total batch of 16 (8 GPUs x 2 volumes),
# momentum 0.9, weight decay 1e-4, gradient norm clipped at 35, linear
# warm-up from lr / 3 over the first 500 iterations, lr x0.1 after epochs
# 16 and 22. With another total batch use --auto-scale-lr.
max_epochs = 24
# FROC on the validation split every 4 epochs
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1.0 / 3,
        by_epoch=False,
        begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[16, 22],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=16)
