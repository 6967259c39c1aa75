from setuptools import find_packages, setup


def get_version():
    scope = {}
    with open('svd_mm/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(fname):
    """Read a requirements file, skipping comments and ``-r`` includes."""
    reqs = []
    with open(fname) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


setup(
    name='svd_mm',
    version=get_version(),
    description='SVD-Net: supervised 3D pre-training on 2D natural images '
    '(Variable Dimension Transform) as an OpenMMLab plugin',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'benchmarks')),
    python_requires='>=3.10',
    # mmcv is left out on purpose: pip cannot build it with compiled ops by
    # itself (see tools/install_mmcv.sh); torch is installed first too.
    install_requires=[
        r for r in parse_requirements('requirements/runtime.txt')
        if not r.startswith(('mmcv', 'torch'))
    ],
    extras_require=dict(
        tests=parse_requirements('requirements/tests.txt'),
        benchmarks=parse_requirements('requirements/benchmarks.txt')),
    license='Apache License 2.0',
    zip_safe=False)
