"""Writes the throughput figures of benchmarks/README.md and the docs from the
benchmark's own result file, so that no figure is typed by hand.

    python benchmarks/train_throughput.py --out benchmarks/results \\
        --name train_throughput            # measure (both modes, 2 threads)
    python benchmarks/readme_figures.py    # rewrite the block + docs table

The README block sits between the markers ``<!-- throughput:begin -->`` and
``<!-- throughput:end -->``; the docs include
``docs/_static/train_throughput.csv``. ``tests/test_readme_figures.py``
checks that both equal what this script makes of the result file.
"""
import argparse
import csv
import io
import json
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULTS = osp.join(ROOT, 'benchmarks', 'results', 'train_throughput.json')
README = osp.join(ROOT, 'benchmarks', 'README.md')
DOCS_CSV = osp.join(ROOT, 'docs', '_static', 'train_throughput.csv')
BEGIN, END = '<!-- throughput:begin -->', '<!-- throughput:end -->'
HEADER = ['n (m)', 'activation checkpointing', 'threads', 's / batch',
          'samples / s', 'peak RSS (MiB)', 'RSS after imports (MiB)']


def rows_of(results: dict):
    """The table rows (strings) of a train_throughput result file."""
    out = []
    for r in results['rows']:
        size = str(r['size']).replace('-', '–')
        out.append([f"{size} ({r['max_edges']})", r.get('checkpointing', '?'),
                    str(r['threads']), f"{r['seconds_per_batch']:.2f}",
                    f"{r['samples_per_s']:.1f}", f"{r['peak_rss_mib']:.0f}",
                    f"{r['rss_after_imports_mib']:.0f}"])
    return out


def _shown(arg: str) -> str:
    # an absolute path into a checkout's benchmarks/ (a run from a clone
    # writing into this one) as the path from the repository root
    if osp.isabs(arg) and '/benchmarks/' in arg:
        return 'benchmarks/' + arg.split('/benchmarks/', 1)[1]
    return arg


def caption(results: dict) -> str:
    m = results['meta']
    r = results['rows'][0]
    argv = ' '.join(_shown(a) for a in m.get('argv', []))
    return (f"Measured {m['time'][:10]} by `python benchmarks/"
            f"train_throughput.py {argv}` on "
            f"{m['cpu_count']} CPU cores ({m['cpu']}), torch {m['torch']}, "
            f"1-min load average {m['load_average_1min']:.1f}; batch "
            f"{r['batch_size']}, d={r['hidden']}, T={r['T']}, B={r['B']}, "
            f"S={r['S']}, one warm-up batch then the mean of the timed ones "
            f"(`benchmarks/results/train_throughput.json`).")


def readme_block(results: dict) -> str:
    lines = [BEGIN, caption(results), '',
             '| ' + ' | '.join(HEADER) + ' |',
             '|' + '---|' * len(HEADER)]
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows_of(results)]
    return '\n'.join(lines + [END])


def docs_csv(results: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator='\n')
    w.writerow(HEADER)
    w.writerows(rows_of(results))
    return buf.getvalue()


def load(path: str = RESULTS) -> dict:
    with open(path) as f:
        return json.load(f)


def current_block(text: str) -> str:
    match = re.search(re.escape(BEGIN) + '.*?' + re.escape(END), text,
                      re.DOTALL)
    if match is None:
        raise SystemExit(f'benchmarks/README.md has no {BEGIN} ... {END} '
                         f'block')
    return match.group(0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.
                                RawDescriptionHelpFormatter)
    p.add_argument('--results', default=RESULTS)
    args = p.parse_args(argv)
    results = load(args.results)
    with open(README) as f:
        text = f.read()
    text = text.replace(current_block(text), readme_block(results))
    with open(README, 'w') as f:
        f.write(text)
    with open(DOCS_CSV, 'w') as f:
        f.write(docs_csv(results))
    print(readme_block(results))


if __name__ == '__main__':
    main()
