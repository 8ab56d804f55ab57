r"""The package's modules import each other without a cycle.

The graph holds every import of a ``torch_geometric_hyper`` module, at
module level and inside functions alike (an import moved into a function
still runs, later, and would only hide a cycle)."""
import ast
import os.path as osp
import pkgutil

import torch_geometric_hyper

PACKAGE = 'torch_geometric_hyper'


def _modules():
    # {module name: source path} of the package and all its subpackages,
    # found without importing them (a module of an optional extra may not
    # import here)
    found = {}

    def walk(directory, name):
        found[name] = osp.join(directory, '__init__.py')
        for info in pkgutil.iter_modules([directory]):
            if info.ispkg:
                walk(osp.join(directory, info.name), f'{name}.{info.name}')
            else:
                found[f'{name}.{info.name}'] = osp.join(directory,
                                                        info.name + '.py')

    walk(osp.dirname(torch_geometric_hyper.__file__), PACKAGE)
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    # the absolute name of ``from <...> import`` (relative levels resolved)
    if node.level == 0:
        return node.module or ''
    parts = module.split('.')
    base = parts if is_package else parts[:-1]
    base = base[:len(base) - (node.level - 1)]
    return '.'.join(base + ([node.module] if node.module else []))


def _target(name: str, modules) -> str:
    # the longest known module that ``name`` names or lies in
    while name and name not in modules:
        name = name.rpartition('.')[0]
    return name


def import_graph():
    r"""``{module: set of package modules it imports}``: an ``import a.b``
    points at ``a.b``, a ``from a import b`` at ``a.b`` when that is a
    module and at ``a`` otherwise."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        is_package = path.endswith('__init__.py')
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                targets = [f'{base}.{alias.name}'
                           if f'{base}.{alias.name}' in modules else base
                           for alias in node.names]
            else:
                continue
            for target in targets:
                if target == PACKAGE or target.startswith(PACKAGE + '.'):
                    target = _target(target, modules)
                    if target and target != name:
                        edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph):
    r"""One import cycle ``[a, b, ..., a]`` of ``graph``, or ``None``."""
    state, stack = {}, []

    def visit(node):
        state[node] = 'open'
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_graph_sees_every_module_and_function_level_imports():
    graph = import_graph()
    assert 'torch_geometric_hyper.nn' in graph
    assert 'torch_geometric_hyper.debug' in graph
    # a cycle made of a function-level import is found
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == \
        ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None


def test_package_imports_are_acyclic():
    cycle = find_cycle(import_graph())
    assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


def test_debug_is_a_leaf():
    assert import_graph()['torch_geometric_hyper.debug'] == set()
