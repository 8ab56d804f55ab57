"""Documentation checks.

(a) the ``>>>`` examples in the package's docstrings and in the tutorial run
    and print what they show;
(b) ``sphinx-build -W`` builds the HTML docs without a warning;
(c) every name in a subpackage's ``__all__`` is documented in the built
    reference (checked against Sphinx's ``objects.inv``).

(b) and (c) need the ``docs`` extra (``pip install -e '.[docs]'``) and are
skipped without it.
"""
import doctest
import importlib
import importlib.util
import os
import os.path as osp
import pkgutil
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOCS = osp.join(ROOT, 'docs')
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch_geometric_hyper  # noqa: E402

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def package_modules():
    names = [torch_geometric_hyper.__name__]
    for info in pkgutil.walk_packages(torch_geometric_hyper.__path__,
                                      torch_geometric_hyper.__name__ + '.'):
        names.append(info.name)
    return sorted(names)


#: Subpackages with their own API page that the top level does not export.
NESTED_API = ['torch_geometric_hyper.nn.kernels'] + (
    ['torch_geometric_hyper.lightning']
    if importlib.util.find_spec('lightning') is not None else [])


def public_api():
    """``{subpackage: __all__}`` for every module the top level exports, and
    for :data:`NESTED_API`."""
    out = {}
    for name in torch_geometric_hyper.__all__:
        obj = getattr(torch_geometric_hyper, name)
        if hasattr(obj, '__name__') and hasattr(obj, '__file__'):
            out[obj.__name__] = list(obj.__all__)
    for name in NESTED_API:
        out[name] = list(importlib.import_module(name).__all__)
    return out


def _run_doctests(tests, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples may write relative paths
    torch.set_num_threads(1)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        torch.manual_seed(0)
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f'{result.failed} doctest example(s) failed'
    return result.attempted


# -- (a) doctests -------------------------------------------------------
def _docstring_tests(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    # Only docstrings defined in this module (re-exports are found once).
    return [t for t in finder.find(module, module_name) if t.examples]


MODULES_WITH_EXAMPLES = [m for m in package_modules() if _docstring_tests(m)]


def test_docstring_examples_exist():
    assert MODULES_WITH_EXAMPLES, 'no docstring examples found'


@pytest.mark.parametrize('module_name', MODULES_WITH_EXAMPLES)
def test_docstring_examples(module_name, tmp_path, monkeypatch):
    _run_doctests(_docstring_tests(module_name), tmp_path, monkeypatch)


def _rst_files():
    out = []
    for base, _, files in os.walk(DOCS):
        if '_build' in base.split(os.sep):
            continue
        for f in files:
            if f.endswith('.rst'):
                path = osp.join(base, f)
                with open(path, encoding='utf-8') as fh:
                    if '>>> ' in fh.read():
                        out.append(path)
    return sorted(out)


@pytest.mark.parametrize('path', _rst_files(),
                         ids=lambda p: osp.relpath(p, DOCS))
def test_rst_examples(path, tmp_path, monkeypatch):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, osp.basename(path), path, 0)
    assert _run_doctests([test], tmp_path, monkeypatch) > 0


def test_tutorial_is_checked():
    names = [osp.relpath(p, DOCS) for p in _rst_files()]
    assert osp.join('tutorials', 'hypergraph_conv.rst') in names


# -- (b) + (c) the Sphinx build -----------------------------------------
def _docs_tools_missing():
    missing = [m for m in ('sphinx', 'furo')
               if importlib.util.find_spec(m) is None]
    return ', '.join(missing)


@pytest.fixture(scope='module')
def html_build(tmp_path_factory):
    missing = _docs_tools_missing()
    if missing:
        pytest.skip(f"docs tools not installed ({missing}); "
                    f"pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp('html')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('TGH_DOCS_INTERSPHINX', None)  # the build must pass offline
    cmd = [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q',
           '-b', 'html', DOCS, str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         timeout=300)
    return res, out


def test_sphinx_build_has_no_warnings(html_build):
    res, out = html_build
    assert res.returncode == 0, (
        f'sphinx-build -W failed (exit {res.returncode}):\n{res.stderr}')
    assert res.stderr.strip() == '', res.stderr
    assert osp.exists(osp.join(out, 'index.html'))
    for page in ('getting_started', 'method', 'benchmarks',
                 'tutorials/hypergraph_conv', 'guides/convex_hull',
                 'guides/delaunay', 'guides/jets', 'api/index'):
        assert osp.exists(osp.join(out, page + '.html')), page


def _inventory(out):
    from sphinx.util.inventory import InventoryFile
    path = osp.join(out, 'objects.inv')
    with open(path, 'rb') as f:
        inv = InventoryFile.load(f, '', osp.join)
    names = set()
    for kind, entries in getattr(inv, 'data', inv).items():
        if kind.startswith('py:'):
            names.update(entries)
    return names


def test_every_public_name_is_documented(html_build):
    res, out = html_build
    if res.returncode != 0:
        pytest.fail(f'docs did not build:\n{res.stderr}')
    documented = _inventory(out)
    api = public_api()
    assert api, 'torch_geometric_hyper.__all__ exports no subpackage'
    missing = [f'{module}.{name}' for module, names in api.items()
               for name in names if f'{module}.{name}' not in documented]
    assert not missing, f'public names without API docs: {missing}'
    for module in api:
        slug = module.rsplit('.', 1)[-1]
        assert osp.exists(osp.join(out, 'api', f'{slug}.html')), module
