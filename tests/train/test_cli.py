"""The examples' command line: one flag per TrainConfig field, --quick."""
import pytest

from tests.conftest import load_script


def load(name):
    return load_script(f'examples/{name}.py')


# -- flags --------------------------------------------------------------
@pytest.mark.parametrize('name', ['convex_hull', 'delaunay',
                                  'particle_partitioning'])
def test_help_shows_every_default_and_one_vocabulary(name):
    parser = load(name).build_parser()
    text = parser.format_help()
    for flag in ('--T', '--B', '--S', '--val-every', '--max-minutes',
                 '--grad-clip', '--activation-checkpointing', '--quick',
                 '--resume', '--device', '--bf16', '--compile'):
        assert f'{flag} ' in text or f'{flag}\n' in text, flag
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.option_strings and action.dest != 'help' \
                and not action.required:
            assert action.help, action.dest
            assert '(default: ' in formatter._get_help_string(action), \
                action.dest
    assert ' '.join(text.split()).count('(default: ') >= 30


@pytest.mark.parametrize('flags, match', [
    (['--batch-size', '0'], r'batch_size \(--batch-size\) must be a positive'),
    (['--grad-clip', '-1'], r'grad_clip \(--grad-clip\) must be a positive'),
    (['--val-every', '-2'], r'val_every \(--val-every\) must be a non-neg'),
    (['--T', '4', '--B', '3', '--S', '2'], r'--B \* --S <= --T'),
    (['--bf16', '--dtype', 'float64'], '--bf16'),
    (['--device', 'nonsense'], '--device'),
])
def test_bad_flags_raise_value_errors(flags, match):
    mod = load('convex_hull')
    with pytest.raises(ValueError, match=match):
        mod.parse_args(flags)


def test_quick_means_the_same_everywhere(tmp_path):
    """--quick: less data, the whole-run budget, validation every 50
    batches; the model and training settings stay the defaults."""
    for name in ('convex_hull', 'delaunay', 'particle_partitioning'):
        mod = load(name)
        extra = ['--root', str(tmp_path)] \
            if name == 'particle_partitioning' else []
        plain, quick = (mod.parse_args(extra), mod.parse_args(
            extra + ['--quick']))
        assert quick.max_total_minutes == 4.7 and quick.val_every == 50
        for key in ('hidden', 'T', 'B', 'S', 'batch_size', 'lr', 'method',
                    'activation_checkpointing'):
            if name == 'particle_partitioning' and key == 'batch_size':
                # jets: 2048 sets a batch make too few updates in 4.7 min
                assert (plain.batch_size, quick.batch_size) == (2048, 128)
                continue
            assert getattr(quick, key) == getattr(plain, key), (name, key)
        assert quick.out == plain.out + '_quick'
