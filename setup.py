from setuptools import find_packages, setup

extras = {
    # ortools: the sparse matched loss's min-cost flow solver; lapx: the
    # faster exact solver of square assignments. Both optional (tested
    # here, so the test extra installs them)
    'test': ['pytest>=7', 'scikit-learn>=1.0', 'hypothesis>=6',
             'ortools>=9.8', 'lapx>=0.5', 'lightning>=2.3',
             'jsonargparse[signatures]>=4.27'],
    # torch_geometric_hyper.lightning: the LightningModule and its CLI
    'lightning': ['lightning>=2.3', 'jsonargparse[signatures]>=4.27'],
    'ortools': ['ortools>=9.8'],
    'scatter': ['torch-scatter'],
    'jets': ['uproot>=5', 'awkward>=2'],
    'lapx': ['lapx>=0.5'],
    'docs': ['sphinx>=7', 'furo', 'matplotlib'],
    'benchmarks': ['matplotlib', 'psutil'],
}
extras['full'] = sorted({r for k, v in extras.items() if k != 'scatter'
                         for r in v})

setup(
    name='torch_geometric_hyper',
    version='0.1.0',
    description='Set-to-hypergraph prediction for PyTorch Geometric: '
    'recurrent hypergraph refiner, matched incidence loss, '
    'backprop with skips.',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['torch_geometric_hyper',
                                    'torch_geometric_hyper.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.1,<3',
        'torch-geometric>=2.5',
        'scipy>=1.9',
        'networkx>=2.8',
        'numpy>=1.22',
        'tqdm>=4.60',
    ],
    extras_require=extras,
    license='MIT',
)
