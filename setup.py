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
    packages=find_packages(include=('svd_mm', 'svd_mm.*')),
    python_requires='>=3.10',
    # torch and mmcv (with compiled ops) are installed first by
    # tools/install_deps.sh: pip alone cannot build mmcv's ops correctly.
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require=dict(
        tests=parse_requirements('requirements/tests.txt'),
        benchmarks=parse_requirements('requirements/benchmarks.txt')),
    license='Apache License 2.0',
    zip_safe=False)
