# Extra, not in the paper (the paper's Fig. 4 is DeepLesion, see
# configs/deeplesion/*pct.py): LIDC-IDRI malignancy AUC against the
# fraction of training data,
# curve "Scratch", point 80 %: the Table IV row
# cls3d_r3d18-scratch_gap-linear_4xb32-100e_lidc-cls-48.py
# trained on a fixed, class-stratified 80 % of the training nodules
# (FractionDataset, seed 0: the same subset in every repeat, nested in the
# larger fractions; the 100 % point is the Table IV row itself). Same
# schedule: 100 epochs over the subset. Test: the whole test split.
# Paper: not reported (no such experiment in the paper)
_base_ = ['./cls3d_r3d18-scratch_gap-linear_4xb32-100e_lidc-cls-48.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='FractionDataset',
        fraction=0.8,
        seed=0,
        stratify_key='gt_label',
        dataset={{_base_.train_dataloader.dataset}}))
