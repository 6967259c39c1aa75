# Fig. 4 (LIDC-IDRI malignancy AUC against the fraction of training data),
# curve "Scratch", point 60 %: the Table III row
# cls3d_r3d18-scratch_gap-linear_4xb32-100e_lidc-cls-48.py
# trained on a fixed, class-stratified 60 % of the training nodules
# (FractionDataset, seed 0: the same subset in every repeat, nested in the
# larger fractions; the 100 % point is the Table III row itself). Same
# schedule: 100 epochs over the subset. Test: the whole test split.
# Paper value: see paper Fig. 4.
_base_ = ['./cls3d_r3d18-scratch_gap-linear_4xb32-100e_lidc-cls-48.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='FractionDataset',
        fraction=0.6,
        seed=0,
        stratify_key='gt_label',
        dataset={{_base_.train_dataloader.dataset}}))
