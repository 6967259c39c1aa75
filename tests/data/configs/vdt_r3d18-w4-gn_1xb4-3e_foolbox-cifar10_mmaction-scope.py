# The tiny test config with a toolbox the tools do not run (mmaction2):
# tools/train.py and tools/test.py must refuse it, naming the allowed scopes.
_base_ = ['./vdt_r3d18-w4-gn_1xb4-3e_foolbox-cifar10.py']
default_scope = 'mmaction'
