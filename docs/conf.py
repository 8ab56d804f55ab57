"""Sphinx configuration of torch_geometric_hyper.

The API reference is generated at build time from each subpackage's
``__all__`` (see :func:`write_api_pages`), so public names added on other
branches show up without editing the docs. Intersphinx links to PyTorch, PyG,
SciPy and Python are only enabled with ``TGH_DOCS_INTERSPHINX=1`` because
their inventories must be downloaded (the CI has no network).

Build::

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W --keep-going -b doctest docs docs/_build/doctest
"""
import datetime
import importlib
import importlib.util
import inspect
import os
import os.path as osp
import sys

import torch

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
sys.path.insert(0, ROOT)
torch.set_num_threads(1)

import torch_geometric_hyper  # noqa: E402

# -- Project -------------------------------------------------------------
project = 'torch_geometric_hyper'
author = 'torch_geometric_hyper contributors'
copyright = f'{datetime.date.today().year}, {author}'
version = release = torch_geometric_hyper.__version__

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.autosummary',
    'sphinx.ext.napoleon',
    'sphinx.ext.mathjax',
    'sphinx.ext.intersphinx',
    'sphinx.ext.viewcode',
    'sphinx.ext.doctest',
]

exclude_patterns = ['_build', 'Thumbs.db', '.DS_Store', '_scripts']
templates_path = []
html_static_path = []
html_theme = 'furo'
html_title = f'torch_geometric_hyper {release}'
pygments_style = 'sphinx'
pygments_dark_style = 'monokai'

# -- autodoc / napoleon --------------------------------------------------
autodoc_member_order = 'bysource'
autodoc_typehints = 'none'  # types are written in the docstrings (PyG style)
autodoc_class_signature = 'mixed'
autodoc_default_options = {
    'members': True,
    'show-inheritance': True,
    'member-order': 'bysource',
}
autosummary_generate = False  # the generator below writes the API pages
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields: no duplicate objects
napoleon_custom_sections = ['Shapes']
add_module_names = False

# -- intersphinx (opt-in: needs network) ---------------------------------
INTERSPHINX = {
    'python': ('https://docs.python.org/3', None),
    'torch': ('https://pytorch.org/docs/stable', None),
    'torch_geometric': ('https://pytorch-geometric.readthedocs.io/en/latest/',
                        None),
    'scipy': ('https://docs.scipy.org/doc/scipy', None),
    'numpy': ('https://numpy.org/doc/stable', None),
}
if os.environ.get('TGH_DOCS_INTERSPHINX', '0') == '1':
    intersphinx_mapping = INTERSPHINX
    intersphinx_timeout = 10
else:
    intersphinx_mapping = {}

# -- doctest -------------------------------------------------------------
doctest_global_setup = '''
import torch
torch.set_num_threads(1)
'''

# -- API reference, generated from __all__ -------------------------------
#: Order and titles of the API pages; the names come from ``__all__``.
API_PAGES = [
    ('data', 'torch_geometric_hyper.data', 'Hypergraph data objects.'),
    ('datasets', 'torch_geometric_hyper.datasets',
     'Set-to-hypergraph benchmark datasets, generated or read once and '
     'cached on disk.'),
    ('nn', 'torch_geometric_hyper.nn',
     'Models, layers and losses.'),
    ('kernels', 'torch_geometric_hyper.nn.kernels',
     'The memory-lean kernels behind the models: the candidate incidence, '
     'the chunked pair MLP and the incidence products.'),
    ('train', 'torch_geometric_hyper.train',
     'Training from Python: the options, fit, the per-batch step, the '
     'schedules of recurrent refiners and the evaluators.'),
    ('lightning', 'torch_geometric_hyper.lightning',
     'Training with PyTorch Lightning (optional extra ``lightning``).'),
    ('metrics', 'torch_geometric_hyper.metrics',
     'Evaluation of decoded predictions.'),
    ('matching', 'torch_geometric_hyper.matching',
     ''),
]

#: ``nn`` is split into sections like PyG's reference.
NN_SECTIONS = ['Models', 'Layers', 'Losses', 'Outputs and state',
               'Functional']


def public_names(module_name):
    """The ``__all__`` of a module, or its public non-module attributes."""
    module = importlib.import_module(module_name)
    names = getattr(module, '__all__', None)
    if names is None:
        names = [n for n, v in vars(module).items()
                 if not n.startswith('_') and not inspect.ismodule(v)]
    return list(names)


def nn_section(obj):
    """Section of an ``nn`` name, by what the object is."""
    if inspect.isclass(obj) and issubclass(obj, torch.nn.Module):
        mod = obj.__module__
        if obj.__name__.endswith('Loss') or '.loss' in mod:
            return 'Losses'
        if (obj.__name__.endswith(('Refiner', 'Model')) or 'baselines' in mod
                or hasattr(obj, 'init_state')):
            return 'Models'
        return 'Layers'
    if inspect.isclass(obj):
        return 'Outputs and state'
    return 'Functional'


def _directive(obj):
    if inspect.isclass(obj):
        return 'autoclass'
    if callable(obj):
        return 'autofunction'
    return 'autodata'


def _entries(module_name, names, objects):
    lines = ['.. autosummary::', '   :nosignatures:', '']
    lines += [f'   {n}' for n in names]
    lines.append('')
    for n in names:
        lines += [f'.. {_directive(objects[n])}:: {module_name}.{n}', '']
    return lines


def render_api_page(slug, module_name, blurb):
    module = importlib.import_module(module_name)
    names = public_names(module_name)
    objects = {n: getattr(module, n) for n in names}
    title = module_name
    lines = [title, '=' * len(title), '',
             f'.. automodule:: {module_name}', '   :no-members:', '',
             f'.. currentmodule:: {module_name}', '', blurb, '']
    if slug == 'nn':
        groups = {s: [] for s in NN_SECTIONS}
        for n in names:
            groups[nn_section(objects[n])].append(n)
        for section in NN_SECTIONS:
            if not groups[section]:
                continue
            lines += [section, '-' * len(section), '']
            lines += _entries(module_name, groups[section], objects)
    else:
        lines += _entries(module_name, names, objects)
    return '\n'.join(lines) + '\n'


def api_pages():
    """:data:`API_PAGES` plus any module the top-level ``__all__`` exports
    that is not listed there (so a new subpackage gets a page too)."""
    pages = [page for page in API_PAGES
             if importlib.util.find_spec('lightning') is not None
             or page[0] != 'lightning']
    listed = {module_name for _, module_name, _ in pages}
    for name in torch_geometric_hyper.__all__:
        obj = getattr(torch_geometric_hyper, name)
        if inspect.ismodule(obj) and obj.__name__ not in listed:
            doc = (inspect.getdoc(obj) or '').split('\n\n')[0]
            pages.append((name, obj.__name__, doc))
    return pages


def write_api_pages(app=None):
    """Writes ``docs/api/<subpackage>.rst`` from the ``__all__`` lists.

    Files are only rewritten when their content changes, so incremental
    builds stay incremental.
    """
    out_dir = osp.join(HERE, 'api')
    os.makedirs(out_dir, exist_ok=True)
    pages = {}
    for slug, module_name, blurb in api_pages():
        pages[f'{slug}.rst'] = render_api_page(slug, module_name, blurb)
    toc = ['API reference', '=============', '',
           'Every name in a subpackage\'s ``__all__`` is documented here; '
           'the pages are generated from those lists when the docs are '
           'built.', '', '.. toctree::', '   :maxdepth: 1', '']
    toc += [f'   {slug}' for slug, _, _ in api_pages()]
    pages['index.rst'] = '\n'.join(toc) + '\n'
    for name, text in pages.items():
        path = osp.join(out_dir, name)
        if osp.exists(path):
            with open(path) as f:
                if f.read() == text:
                    continue
        with open(path, 'w') as f:
            f.write(text)


def setup(app):
    app.connect('builder-inited', write_api_pages)
