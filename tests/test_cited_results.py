"""Every benchmark result that README.md, benchmarks/README.md and the
prose docs cite exists in ``benchmarks/results/``; that folder holds only a
few files; README.md stays short and free of measurement provenance.

A consistency check of the repository's text (no timing, no import of the
package)."""
import glob
import os
import os.path as osp
import re

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS = osp.join(ROOT, 'benchmarks', 'results')
MAX_RESULT_FILES = 80
MAX_README_LINES = 130

#: ``benchmarks/results/<path>`` or ``results/<path>`` (a relative link from
#: benchmarks/README.md); braces ``{a,b}`` and ``*`` are expanded.
CITED = re.compile(r'(?<![\w/.-])(?:benchmarks/)?results/([\w.{},*/-]+)')
#: a bare file name that starts like a result of a benchmark script
BARE = re.compile(r'(?<![\w/.{*-])([a-z][\w{},*-]*\.(?:json|log|csv))\b')
#: a 7- to 40-digit hex word (with a digit) next to the word "commit"
HASH = r'(?=[0-9a-f]*\d)[0-9a-f]{7,40}'
COMMIT_HASH = re.compile(
    r'\bcommits?\b\W{1,3}(?:\w+\W{1,3}){0,2}?' + HASH + r'\b|\b' + HASH +
    r'\b\W{1,3}commits?\b', re.IGNORECASE)


def cited_texts():
    """(path, text) of README.md, benchmarks/README.md and docs/**/*.rst."""
    paths = [osp.join(ROOT, 'README.md'),
             osp.join(ROOT, 'benchmarks', 'README.md')]
    paths += sorted(glob.glob(osp.join(ROOT, 'docs', '**', '*.rst'),
                              recursive=True))
    out = []
    for path in paths:
        with open(path, encoding='utf-8') as f:
            out.append((osp.relpath(path, ROOT), f.read()))
    return out


def expand_braces(pattern: str):
    """``a_{x,y}_b`` -> ``['a_x_b', 'a_y_b']`` (nested braces too)."""
    match = re.search(r'\{([^{}]*)\}', pattern)
    if match is None:
        return [pattern]
    out = []
    for part in match.group(1).split(','):
        out += expand_braces(pattern[:match.start()] + part +
                             pattern[match.end():])
    return out


def _exists(name: str, results: str) -> bool:
    path = osp.join(results, name)
    if '*' in name:
        return bool(glob.glob(path))
    return osp.exists(path)


def script_stems(root: str = ROOT):
    """Names a result file of a benchmark script starts with."""
    stems = {osp.splitext(osp.basename(p))[0]
             for p in glob.glob(osp.join(root, 'benchmarks', '*.py'))}
    stems = {s for s in stems if not s.startswith('_')} - {'readme_figures'}
    return stems | {'reference_bench', 'reference_curve', 'convex_hull_quick'}


def missing_citations(text: str, results: str = RESULTS, stems=None):
    """The cited result names of ``text`` that are not in ``results``."""
    stems = script_stems() if stems is None else stems
    missing, seen = [], set()
    for match in CITED.finditer(text):
        name = match.group(1).rstrip('.,;:')
        if not name or name.startswith('{'):
            continue
        for one in expand_braces(name):
            seen.add(one)
            if not _exists(one, results):
                missing.append(one)
    for match in BARE.finditer(text):
        name = match.group(1)
        if not any(name.startswith(s) for s in stems):
            continue
        for one in expand_braces(name):
            if one in seen or any(s.endswith('/' + one) for s in seen):
                continue
            if not _exists(one, results):
                missing.append(one)
    return missing


def result_files(results: str = RESULTS):
    out = []
    for folder, _, files in os.walk(results):
        out += [osp.relpath(osp.join(folder, f), results) for f in files]
    return sorted(out)


@pytest.mark.parametrize('path,text', cited_texts(),
                         ids=[p for p, _ in cited_texts()])
def test_every_cited_result_file_exists(path, text):
    missing = missing_citations(text)
    assert not missing, (f'{path} cites result files that are not in '
                         f'benchmarks/results/: {missing}')


def test_the_docs_cite_results_at_all():
    # the parser finds the citations (a parser that finds none passes the
    # test above vacuously)
    found = set()
    for _, text in cited_texts():
        found.update(m.group(1) for m in CITED.finditer(text))
    assert len(found) >= 20


def test_results_folder_is_small():
    files = result_files()
    assert 0 < len(files) <= MAX_RESULT_FILES, (
        f'benchmarks/results/ holds {len(files)} files (at most '
        f'{MAX_RESULT_FILES}): keep the current file of each figure that '
        'README.md, benchmarks/README.md and docs/ cite; replace a result '
        'instead of keeping dated copies')


def test_every_result_file_is_cited():
    cited = ' '.join(t for _, t in cited_texts())
    names = set()
    for match in CITED.finditer(cited):
        for one in expand_braces(match.group(1).rstrip('.,;:')):
            names.update(osp.relpath(p, RESULTS) for p in
                         glob.glob(osp.join(RESULTS, one)))
            if osp.isdir(osp.join(RESULTS, one)):
                names.update(f for f in result_files()
                             if f.startswith(one.rstrip('/') + '/'))
    for match in BARE.finditer(cited):
        names.update(expand_braces(match.group(1)))
    uncited = [f for f in result_files() if f not in names]
    assert not uncited, f'result files no page cites: {uncited}'


def test_readme_is_short_and_without_provenance():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    lines = text.splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f'README.md has {len(lines)} lines (at most {MAX_README_LINES})')
    hashes = [m.group(0) for m in COMMIT_HASH.finditer(text)]
    assert not hashes, f'README.md names commits: {hashes}'
    assert not re.search(r'\bsittings?\b', text, re.IGNORECASE)
    dates = re.findall(r'\b20\d\d-\d\d-\d\d\b', text)
    assert not dates, f'README.md dates its measurements: {dates}'


def test_the_checks_can_fail(tmp_path):
    (tmp_path / 'there.json').write_text('{}')
    (tmp_path / 'run_r1.log').write_text('')
    text = ('see benchmarks/results/there.json and '
            '[a link](results/made_up_figure.json), '
            '``benchmarks/results/run_r{1,2}.log`` and '
            '``train_throughput_made_up.json``.')
    assert missing_citations(text, str(tmp_path),
                             stems={'train_throughput'}) == [
        'made_up_figure.json', 'run_r2.log', 'train_throughput_made_up.json']
    assert missing_citations('benchmarks/results/there.json.',
                             str(tmp_path)) == []
    for bad in ('measured at commit 7788aab', 'Commit a5ae25c, torch',
                'at commits 4596e1c and aef4012',
                'from a clone at commit ' + 'f' * 39 + '0',
                '7e167a4 commit'):
        assert COMMIT_HASH.search(bad), bad
    for good in ('a commit of the defaced file', 'commit message',
                 'batch 512 after commit'):
        assert not COMMIT_HASH.search(good), good
