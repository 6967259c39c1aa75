# SVD-Net COCO pre-training schedule (from scratch): 72 epochs (6x) of SGD,
# lr 0.02 for a total batch of 16 (8 GPUs x 2 images), momentum 0.9, weight
# decay 1e-4 (none on the GN weights and biases, as in mmdet's scratch GN
# configs), linear warm-up over the first 500 iterations, lr x0.1 after
# epochs 48 and 66. With another total batch use --auto-scale-lr.
max_epochs = 72
# COCO val (5k images) every 6 epochs, 12 times in all
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=6)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[48, 66],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.))
auto_scale_lr = dict(enable=False, base_batch_size=16)
