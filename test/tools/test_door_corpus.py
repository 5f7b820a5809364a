"""The tools' fuzz corpus (door_corpus): every bad input answered as documented.

The corpus runs once per test session, in this process; the tests then look at its outcomes
by tool. A few cases run again as real subprocesses of the installed commands, for their real
exit codes.
"""
import pathlib
import subprocess
import sys
import time

import pytest

import door_corpus
from door_corpus import CHECKPOINT, Outcome

MIN_BAD_INPUTS = 50
MIN_BAG_FUZZ_CASES = 30
SUBPROCESS_TIMEOUT_S = 300
TOOL_NAMES = ('hydranet-infer', 'hydranet-bag', 'hydranet-eval', 'hydranet-train',
              'hydranet-bench', CHECKPOINT)


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    """Run the whole corpus once; return (work folder, outcomes, figures)."""
    work = tmp_path_factory.mktemp('doors')
    started = time.perf_counter()
    outcomes = door_corpus.run_corpus(work)
    return work, outcomes, door_corpus.figures(outcomes, time.perf_counter() - started)


def report(outcomes) -> str:
    """Return the broken cases, one per line, with what their output said."""
    return '\n'.join(f'{o.case.tool} [{o.case.name}] {o.problems}\n    said: '
                     f'{o.output.strip()[-600:]}' for o in outcomes if o.problems)


def test_corpus_is_large_and_covers_every_tool(corpus):
    _, outcomes, figures = corpus
    assert figures['bad_inputs'] >= MIN_BAD_INPUTS
    assert figures['bag_fuzz_cases'] >= MIN_BAG_FUZZ_CASES
    assert set(figures['tools']) == set(TOOL_NAMES)


@pytest.mark.parametrize('tool', TOOL_NAMES)
def test_every_bad_input_is_answered_as_documented(corpus, tool):
    _, outcomes, _ = corpus
    mine = [o for o in outcomes if o.case.tool == tool]
    assert mine
    broken = [o for o in mine if o.problems]
    assert not broken, report(broken)


def test_no_traceback_and_no_unsafe_advice_anywhere(corpus):
    _, outcomes, figures = corpus
    assert figures['tracebacks'] == 0 and figures['unsafe_advice'] == 0, report(outcomes)
    assert not any('Traceback' in o.output for o in outcomes)


def test_bag_fuzz_meets_every_kind_of_ending(corpus):
    """Damage at many offsets is refused (2), cut short or skipped (1), or harmless (0)."""
    _, outcomes, figures = corpus
    codes = figures['bag_fuzz_exit_codes']
    assert set(codes) <= {'0', '1', '2'}
    assert codes.get('2', 0) > 0, 'some damage makes the bag unreadable'
    fuzz: list = [o for o in outcomes if o.case.name.startswith('fuzz:')]
    for outcome in fuzz:
        if outcome.code == 2:
            assert 'error:' in outcome.output and 'fuzz' in outcome.output
        if outcome.code == 1:
            assert 'damaged' in outcome.output or 'skipped' in outcome.output, outcome.output


def tool_command(name: str) -> list:
    """Return the installed console script, or the module when it is not installed."""
    script = pathlib.Path(sys.executable).with_name(name)
    module = {'hydranet-infer': 'infer', 'hydranet-bag': 'bag', 'hydranet-eval': 'evaluate',
              'hydranet-train': 'train', 'hydranet-bench': 'bench'}[name]
    return [str(script)] if script.exists() else [sys.executable, '-m',
                                                  f'hydranet_ros.tools.{module}']


SUBPROCESS_CASES = (('hydranet-infer', '--model random.pt'),
                    ('hydranet-infer', '--model payload.pt'),
                    ('hydranet-infer', 'a folder of broken pictures'),
                    ('hydranet-bag', 'random .mcap'), ('hydranet-bag', 'mixed encodings'),
                    ('hydranet-eval', 'missing root'), ('hydranet-train', 'crop text'),
                    ('hydranet-bench', 'random model'))


@pytest.mark.parametrize('tool,name', SUBPROCESS_CASES)
def test_real_exit_codes_of_the_installed_commands(corpus, tool, name):
    """The same inputs through the console scripts: the same exit code and error line."""
    work, outcomes, _ = corpus
    (outcome,) = [o for o in outcomes if o.case.name == name and o.case.tool == tool]
    argv = outcome.case.argv(work)
    result = subprocess.run(tool_command(tool) + argv, capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT_S)
    output = result.stdout + result.stderr
    again = Outcome(outcome.case, result.returncode, output, 0.0,
                    door_corpus.problems_of(outcome.case, result.returncode, output, None,
                                            work))
    assert not again.problems, report([again])
    if outcome.case.code == 2:
        errors = [line for line in result.stderr.splitlines() if ': error: ' in line]
        assert len(errors) == 1, result.stderr


def test_debug_prints_the_traceback(tmp_path):
    """--debug: the same one-line error, with the traceback before it."""
    model = door_corpus.write(tmp_path / 'random.pt', b'\x00\x01' * 100)
    picture = door_corpus.write(tmp_path / 'room.png', door_corpus.encoded(
        door_corpus.sample_rgb(48, 64), '.png'))
    code, output, escaped = door_corpus.run_tool('hydranet-infer', [
        str(picture), '--model', str(model), '--out', str(tmp_path / 'out'), '--debug'])
    assert escaped is None and code == 2
    assert 'Traceback' in output and 'hydranet-infer: error: checkpoint' in output
    assert door_corpus.unsafe_advice_in(output) is None
