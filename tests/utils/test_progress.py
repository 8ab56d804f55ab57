import io

from torch_geometric_hyper.utils import Progress, progress


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_log_lines_when_not_a_terminal():
    out = io.StringIO()
    items = list(progress(range(1000), desc='gen', stream=out, interval=1e9))
    assert items == list(range(1000))
    lines = out.getvalue().splitlines()
    # one line at the end only (the interval never elapsed), no '\r'
    assert len(lines) == 1 and lines[0].startswith('gen: 1000/1000 (100%')
    assert '\r' not in out.getvalue()


def test_interval_zero_prints_each_step_and_postfix():
    out = io.StringIO()
    with Progress(2, 'train', stream=out, interval=0) as bar:
        bar.set_postfix(loss='0.5')
        bar.update()
        bar.update()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith('loss=0.5')


def test_disabled_prints_nothing():
    out = FakeTTY()
    list(progress(range(10), stream=out, enabled=False))
    out2 = io.StringIO()
    list(progress(range(10), stream=out2, enabled=False, interval=0))
    assert out.getvalue() == '' and out2.getvalue() == ''


def test_terminal_uses_a_bar():
    out = FakeTTY()
    list(progress(range(5), desc='bar', stream=out))
    assert 'bar:' in out.getvalue() and '/5 [' in out.getvalue()


def test_dataset_generation_log_is_short(tmp_path, capfd):
    from torch_geometric_hyper.datasets import ConvexHull
    ConvexHull(str(tmp_path), 'val', num_points=8, num_samples=300, log=True)
    err = capfd.readouterr().err
    assert '\r' not in err and len(err.splitlines()) <= 4
    ConvexHull(str(tmp_path / 'b'), 'val', num_points=8, num_samples=30,
               log=False)
    assert capfd.readouterr().err == ''
