r"""Write docs/reliability.md from the JSON of a fuzzing run, a soak run and the tools' corpus.

::

    python -m dev.reliability.fuzz --malformed 10000 --json-out fuzz.json
    python -m dev.reliability.soak --minutes 10 --json-out soak.json
    python test/tools/door_corpus.py --big-photo --json-out tools.json
    python -m dev.reliability.report --fuzz fuzz.json --soak soak.json --tools tools.json \\
        --out docs/reliability.md

The hostile-file and fault sections describe what the test suite checks on every run. A
section whose JSON is not given is kept as it stands in the file written before.
"""
import argparse
import json
import os
import sys
from typing import Dict, List, Optional

from .fuzz_cases import CASE_DESCRIPTIONS, DECODER

TITLE = '# Reliability of hydranet_node'
FUZZ_HEADING = '## 1. Bad input: fuzzing'
SOAK_HEADING = '## 4. Long runs: soak'
TOOLS_HEADING = '## 5. The tools: bad input at every door'
FAILED_VERDICT = 'a target FAILED'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--fuzz', help='JSON written by dev.reliability.fuzz --json-out '
                                       '(default: keep the section of --out)')
    parser.add_argument('--soak', help='JSON written by dev.reliability.soak --json-out '
                                       '(default: keep the section of --out)')
    parser.add_argument('--tools', help='JSON written by test/tools/door_corpus.py --json-out '
                                        '(default: keep the section of --out)')
    parser.add_argument('--out', default='docs/reliability.md', help='Markdown file to write')
    return parser.parse_args(argv)


def _number(value, digits: int = 1) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def _held(flag: bool) -> str:
    return 'held' if flag else '**FAILED**'


def _table(header: List[str], rows: List[List[object]]) -> List[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(_number(cell) if not isinstance(cell, str) else cell
                                for cell in row) + ' |' for row in rows]
    return lines


def fuzz_section(fuzz: Dict) -> List[str]:
    """Return the Markdown of the fuzzing run."""
    lines = [FUZZ_HEADING, '',
             f'Command: `python -m dev.reliability.fuzz --malformed '
             f'{fuzz["malformed_messages"]}` (source {fuzz.get("source_revision") or "unknown"}; '
             f'{fuzz["seconds"]:.0f} s; {fuzz.get("cpu_count")} '
             f'CPU cores, load average {fuzz["load_average_1min"]:.1f}). Two nodes (raw and '
             f'compressed input, a random-weight 4-class HydraNet, {fuzz["image"]} frames, '
             f'max_input_pixels {fuzz["max_input_pixels"]}) received bursts of '
             f'{fuzz["per_good"]} malformed messages, each burst followed by one good frame '
             f'whose output (with its own stamp) was awaited before the next burst.', '']
    lines += _table(['figure', 'result'], [
        ['malformed messages sent', fuzz['malformed_messages']],
        ['of which camera_info', fuzz['malformed_camera_info']],
        ['good frames sent', fuzz['good_frames']],
        ['good frames answered with their own stamp', fuzz['good_frames_answered']],
        ['good frames unanswered', fuzz['good_frames_unanswered']],
        ['crashes (node died, non-zero exit, traceback)', fuzz['crashes']],
        ['depth/camera_info published / with invalid K',
         f'{fuzz["camera_info_outputs"]} / {fuzz["camera_info_outputs_invalid"]}'],
        ['good frame round trip p50 / p99 (ms)',
         f'{_number(fuzz["good_frame_latency_ms_p50"])} / '
         f'{_number(fuzz["good_frame_latency_ms_p99"])}'],
        ['verdict', 'passed' if fuzz['passed'] else '**FAILED**'],
    ])
    lines += ['', 'What was sent (each case drawn at random, fresh random values each time):', '']
    lines += _table(['case', 'what it is', 'sent'], [
        [f'`{name}`', CASE_DESCRIPTIONS.get(name, ''), sent]
        for name, sent in sorted(fuzz['cases'].items())])
    for node in fuzz['nodes'].values():
        diagnostics = node['diagnostics']
        expected = node['expected']
        lines += ['', f'**{node["input"]} input node** ({node["node"]}): '
                      f'{node["images_sent"]} images sent, '
                      f'{diagnostics["frames_received"]} received; processed '
                      f'{diagnostics["frames_processed"]}, dropped for a newer frame '
                      f'{diagnostics["frames_dropped"]}, rejected '
                      f'{diagnostics["frames_rejected"]}, failed {diagnostics["frames_failed"]}; '
                      f'exit code {node["exit_code"]}.', '']
        kinds = sorted({key[len('frames_rejected_'):] for key in diagnostics
                        if key.startswith('frames_rejected_')} | set(expected) - {
                            DECODER, 'camera_info', 'good'})
        rows = [[f'`{kind}`', expected.get(kind, 0), diagnostics.get(f'frames_rejected_{kind}', 0),
                 node['log_lines_by_kind'].get(kind, 0)] for kind in kinds]
        rows.append(['`camera_info`', expected.get('camera_info', 0),
                     diagnostics['camera_info_rejected'],
                     node['log_lines_by_kind'].get('camera_info', 0)])
        if expected.get(DECODER):
            rows.append([f'left to the decoder (`{DECODER}`)', expected[DECODER],
                         'in `undecodable`, dropped or answered', '-'])
        lines += _table(['rejection kind', 'sent', 'counted in diagnostics',
                         'log lines (throttled)'], rows)
        lines += ['', 'Checks: ' + ', '.join(
            f'{name.replace("_", " ")}: {_held(flag)}' for name, flag in node['checks'].items())
            + '.']
    return lines


def soak_notes(soak: Dict) -> List[str]:
    """Return the facts that explain a missed soak target, from the run's own figures."""
    notes = []
    periods = soak['per_period']
    first, last = periods[0], periods[-1]
    if not soak['targets']['p99_last_within_1.5x_first'] and first['outputs'] and last['outputs']:
        note = (f'The p99 latency grew {soak["latency_p99_last_over_first"]:.2f}x while the '
                f'outputs per minute fell from {first["outputs"]} to {last["outputs"]} '
                f'({first["outputs"] / last["outputs"]:.2f}x fewer). The node works back to '
                f'back at this input rate, so each frame took that much longer to process; no '
                f'frame waited longer than one inference period (stale frames: '
                f'{soak["frames_stale"]}).')
        cpu_ratio = soak.get('cpu_ms_per_output_last_over_first')
        if cpu_ratio is not None:
            note += (f' CPU time per output changed {cpu_ratio:.2f}x and the CPU share of the '
                     f'node went from {_number(first.get("node_cpu_percent"))} % to '
                     f'{_number(last.get("node_cpu_percent"))} % (load average '
                     f'{_number(first.get("load_average_1min"))} to '
                     f'{_number(last.get("load_average_1min"))}).')
        else:
            note += (f' This run predates the per-minute CPU figures; the load average was '
                     f'{soak["load_average_1min"]:.1f} on {soak.get("cpu_count")} cores at its '
                     f'end.')
        notes.append(note)
    lost = soak['frames_published'] - soak['frames_received']
    if lost and 'frames_lost_in_transport' not in soak:
        notes.append(f'{lost} frame(s) published never reached the node (best-effort input); '
                     f'this run predates the count of such frames by the node '
                     f'(`frames_lost_in_transport`). Every frame the node received was '
                     f'accounted for: received = processed + dropped + rejected + skipped + '
                     f'failed held exactly.')
    return notes


def soak_section(soak: Dict) -> List[str]:
    """Return the Markdown of the soak run."""
    targets = soak['targets']
    identity_ok = soak['accounted'] == soak['frames_received']
    published_ok = soak['frames_published'] == soak['frames_received'] + soak.get(
        'frames_lost_in_transport', 0)
    lines = [SOAK_HEADING, '',
             f'Command: `python -m dev.reliability.soak --minutes '
             f'{soak["minutes_measured"]:g}` (source {soak.get("source_revision") or "unknown"}; '
             f'{soak["seconds"] / 60:.1f} min in all; '
             f'{soak.get("cpu_count")} CPU cores, load average at the end '
             f'{soak["load_average_1min"]:.1f}). Camera {soak["camera"]}, network input '
             f'{soak["network_input"]}, backend {soak["backend"]}; warm-up '
             f'{soak["warmup_s"]:g} s, then {soak["minutes_measured"]:g} measured minutes.', '']
    lines += _table(['figure', 'result', 'target'], [
        ['RSS after warm-up / at the end / max (MB)',
         f'{_number(soak.get("rss_mb_after_warmup"))} / {_number(soak.get("rss_mb_end"))} / '
         f'{_number(soak.get("rss_mb_max"))}', ''],
        ['RSS growth after warm-up (MB)', _number(soak.get('rss_growth_mb')),
         f'<= 50: {_held(targets["rss_growth_le_50mb"])}'],
        ['RSS trend (MB per minute, linear fit)', _number(soak.get('rss_trend_mb_per_min'), 2),
         ''],
        ['latency p50 / p99 over the run (ms)',
         f'{_number(soak["latency_ms_p50"])} / {_number(soak["latency_ms_p99"])}', ''],
        ['latency p99, last minute / first minute', _number(
            soak['latency_p99_last_over_first'], 2),
         f'<= 1.5: {_held(targets["p99_last_within_1.5x_first"])}'],
        ['CPU time of the node per output, last minute / first minute',
         _number(soak.get('cpu_ms_per_output_last_over_first'), 2), ''],
        ['inference time, last minute / first minute',
         _number(soak.get('inference_ms_last_over_first'), 2), ''],
        ['frames published by the camera (from the first that reached the node; sent '
         'before it, while the transport connected)',
         f'{soak["frames_published"]} ({_number(soak.get("frames_published_before_delivery"))}'
         f' before)', ''],
        ['frames received by the node + lost in transport (sequence gaps)',
         f'{soak["frames_received"]} + {_number(soak.get("frames_lost_in_transport"))}',
         f'= published: {_held(published_ok)}'],
        ['processed + dropped + rejected + skipped + failed',
         f'{soak["frames_processed"]} + {soak["frames_dropped"]} + {soak["frames_rejected"]} + '
         f'{soak["frames_skipped_no_subscribers"]} + {soak["frames_failed"]} = '
         f'{soak["accounted"]}', f'= received: {_held(identity_ok)}'],
        ['every frame counted (both rows above)', '',
         _held(targets['every_drop_counted'])],
        ['dropped-frame ratio (dropped for a newer frame)', _number(soak['dropped_ratio'], 3), ''],
        ['stale frames (older than one inference period)', soak['frames_stale'], ''],
        ['exit code, traceback', f'{soak["exit_code"]}, {soak["traceback_in_log"]}',
         f'0, False: {_held(targets["no_crash"])}'],
    ])
    notes = soak_notes(soak)
    if notes:
        lines += [''] + [f'- {note}' for note in notes]
    period = 'minute' if soak['period_s'] == 60 else f'{soak["period_s"]:g} s period'
    lines += ['', f'Per {period} (latency from the camera stamp to the consumer; counts from '
                  f'the diagnostics, which the node publishes once a second):', '']
    lines += _table([period, 'outputs', 'latency p50 (ms)', 'p99 (ms)', 'max (ms)',
                     'received', 'processed', 'dropped', 'RSS (MB)', 'inference (ms)',
                     'node CPU (%)', 'CPU ms per output', 'load average'],
                    [[p['period'], p['outputs'], p['latency_ms_p50'], p['latency_ms_p99'],
                      p['latency_ms_max'], p.get('frames_received'), p.get('frames_processed'),
                      p.get('frames_dropped'), p['rss_mb'], p.get('inference_ms_mean'),
                      p.get('node_cpu_percent'), p.get('node_cpu_ms_per_output'),
                      p.get('load_average_1min')]
                     for p in soak['per_period']])
    return lines


HOSTILE_FILES = [
    ('a checkpoint whose pickle would call `pathlib.Path.touch` (creating a marker file)',
     '`was refused: it is not a plain weights file` (loaded with `weights_only=True`: the '
     'payload never runs; the test first proves that an unsafe load would run it)'),
    ('the first half of a real checkpoint',
     '`is truncated: its zip archive (... bytes) ends without the directory that closes every '
     'complete archive`'),
    ('an empty file', '`is empty (0 bytes)`'),
    ('weights of another network', '`has no segmentation and depth heads: it is not a HydraNet`'),
    ('a HydraNet whose config says 6 classes over 4-class weights',
     '`does not fit a HydraNet with 6 classes ...: 2 shape mismatch(es)`'),
]
FAULTS = [
    ('`device: cuda` on a machine without CUDA', 'node started with `device_fallback: true`',
     'serves on the CPU; the log says `CUDA is not available` and `falling back to the CPU`; '
     'diagnostics `device: cpu`'),
    ('the same, `device_fallback: false`', 'a separate start',
     "exit code 1, `device 'cuda' requested but CUDA is not available`, no traceback"),
    ('camera_info never arrives', 'images only',
     'outputs flow; after 2 s the log names the topic waited on; diagnostics WARN '
     '`no camera_info received`'),
    ('camera_info with NaN intrinsics', 'one message',
     'refused (`K has non-finite values`), counted (`camera_info_rejected`), never published; '
     'the next valid one is used'),
    ('camera stops and restarts', 'frames, a pause longer than `input_timeout_s`, frames',
     'log `input stale: no image on /image for ...`, diagnostics WARN `input stale` with '
     '`seconds_since_last_image`; outputs resume, log `images resumed ... after a gap of`, '
     '`input_gaps` and `longest_input_gap_s` counted'),
    ('frame over `max_input_pixels`', 'a complete 300x300 frame, limit 200x200',
     'rejected on arrival (`too_large`) before anything is allocated for it; next frame '
     'answered'),
    ('out of memory during inference',
     'a real address-space limit on the node process (`prlimit RLIMIT_AS`, 96 MB above its '
     'size), then a 2400x1800 frame',
     "PyTorch's allocator fails; the frame is counted as rejected (`out_of_memory`), memory is "
     'released, the node lives and answers the next frame (`torch.cuda.OutOfMemoryError` '
     'takes the same path and empties the CUDA cache)'),
    ('SIGINT, SIGTERM', 'while frames stream',
     'exit code 0 within 3 s (measured 1.3-1.5 s), no traceback'),
]
START_UP_SIGNALS = (
    'Signals during start-up were checked by hand (timing-dependent, so not in the suite): '
    'once the libraries are loaded, SIGINT or SIGTERM during node creation, model loading or '
    'activation ends the node with exit code 0 and no traceback (the context is shut down '
    'under it); while rclpy, PyTorch and OpenCV are still being imported (the first 1-2 s) '
    'the process started through `hydranet_ros.node.launcher` (the `hydranet_node` and '
    '`hydranet_demo_source` entry points) ends at once with exit code 0 and no traceback.')
ARRIVAL_CHECKS = (
    'The node checks every image on arrival (encoding, size, step, data length, PNG/JPEG '
    'header and pixel count) before it can displace a good frame from the newest-frame slot, '
    'logs at most 3 lines per kind of rejection in any 5 s (the next line says how many went '
    'unlogged) and counts each kind in the diagnostics (`frames_rejected_<kind>`); see '
    '[node.md](node.md#diagnostics).')
COMMANDS = [
    '# the long forms (a few minutes; 10 minutes plus warm-up)',
    'nice -n 10 python -m dev.reliability.fuzz --malformed 10000 --json-out fuzz.json',
    'nice -n 10 python -m dev.reliability.soak --minutes 10 --json-out soak.json',
    'python test/tools/door_corpus.py --big-photo --json-out tools.json',
    'python -m dev.reliability.report --fuzz fuzz.json --soak soak.json --tools tools.json \\',
    '    --out docs/reliability.md   # a JSON left out keeps its section as it is',
    '# the short forms, in the test suite (about three minutes together)',
    'python -m pytest test/dev/test_fuzz.py test/node/test_hostile_files.py \\',
    '    test/node/test_faults.py test/dev/test_soak.py test/tools/test_door_corpus.py -q',
]
TOOL_RULES = (
    'Every tool reports a bad input in one line, `<tool>: error: <file>: <what is wrong>; <what '
    'to do>`, and ends with exit code 2 for bad usage or input found before any work, 1 for a '
    'failure while running (a folder run or a bag goes on past a bad file or frame, names each '
    'one and counts them by reason in its summary) and 0 when done; a traceback is printed '
    'only with `--debug`. No output may advise loading a checkpoint with `weights_only` '
    'turned off. See [tools.md](tools.md#when-something-is-wrong).')


def static_sections() -> List[str]:
    """Return the hostile-file and fault sections (what the test suite checks each run)."""
    lines = ['## 2. Hostile files', '',
             '`test/node/test_hostile_files.py` (every test run) gives the node each of these '
             'files, at start (each ends the start with exit code 1 and the message) and as a '
             'run-time `model_path` change (the rebuild fails, the old model keeps serving: the '
             'node answers the next frame with the same depth and logs `still serving good.pth`).',
             '']
    lines += _table(['file', 'what the node says'], [list(row) for row in HOSTILE_FILES])
    lines += ['', '## 3. Faults', '', '`test/node/test_faults.py` (every test run) makes each '
              'fault real:', '']
    lines += _table(['fault', 'how', 'what holds'], [list(row) for row in FAULTS])
    return lines + ['', START_UP_SIGNALS, '', ARRIVAL_CHECKS]


def tools_passed(tools: Dict) -> bool:
    """Return True when every case of the corpus held."""
    return tools['held'] == tools['cases'] and not tools['tracebacks'] and \
        not tools['unsafe_advice']


def _exit_codes(codes: Dict[str, int]) -> str:
    return ', '.join(f'{code}: {count}' for code, count in sorted(codes.items()))


def tools_section(tools: Dict) -> List[str]:
    """Return the Markdown of the tools' corpus (and of the large photo, when measured)."""
    lines = [TOOLS_HEADING, '',
             f'Command: `python test/tools/door_corpus.py` (source '
             f'{tools.get("source_revision") or "unknown"}; {tools["seconds"]:.0f} s; in the '
             f'suite as `test/tools/test_door_corpus.py`, which also runs a few of the cases '
             f'again as the installed commands). {tools["cases"]} cases, '
             f'{tools["bad_inputs"]} bad inputs in all, each generated by the corpus (nothing '
             f'downloaded), each with the exit code and the words its output must hold.', '',
             TOOL_RULES, '']
    lines += _table(['figure', 'result'], [
        ['cases / bad inputs', f'{tools["cases"]} / {tools["bad_inputs"]}'],
        ['answered as documented (exit code and words)', f'{tools["held"]} of '
                                                         f'{tools["cases"]}'],
        ['tracebacks', tools['tracebacks']],
        ['unsafe advice (turning weights_only off, allow-listing globals)',
         tools['unsafe_advice']],
        ['bags cut or bit-flipped (sqlite3 and MCAP, many offsets)',
         f'{tools["bag_fuzz_cases"]} (exit codes {_exit_codes(tools["bag_fuzz_exit_codes"])})'],
        ['verdict', 'passed' if tools_passed(tools) else '**FAILED**'],
    ])
    lines += ['', 'Per door:', '']
    lines += _table(['door', 'cases', 'bad inputs', 'exit codes', 'held'], [
        [f'`{tool}`', entry['cases'], entry['bad_inputs'], _exit_codes(entry['exit_codes']),
         f'{entry["held"]} of {entry["cases"]}'] for tool, entry in tools['tools'].items()])
    examples = [o for o in tools['outcomes'] if not o['case'].startswith(('fuzz:', '--model '))]
    lines += ['', 'What each bad input gets (its first error, skip or note line, paths relative '
                  'to the work folder; the checkpoints say the same through `hydranet-infer '
                  '--model`, after `hydranet-infer: error:`):', '']
    lines += _table(['door', 'bad input', 'exit', 'says'], [
        [f'`{o["tool"]}`', o['what'], o['exit_code'],
         '`' + _shortened(o['said']).replace('|', '/').replace('`', "'") + '`']
        for o in examples])
    photo = tools.get('big_photo')
    if photo:
        lines += ['', f'Memory: `{photo["command"]}` on a generated {photo["size"]} (HxW) JPEG '
                      f'photo: peak resident memory {photo["peak_rss_mb"]:.0f} MB '
                      f'({photo["seconds"]:.0f} s, exit code {photo["exit_code"]}); the '
                      f'picture is shrunk to {photo["processed"]} (`--max-input-pixels`, the '
                      f'node\'s default {photo["max_input_pixels"]}) with a note. Without '
                      f'the limit (`--max-input-pixels 0`) the same run peaks at '
                      f'{photo.get("unlimited_peak_rss_mb", float("nan")):.0f} MB.']
    return lines


def _shortened(text: str, limit: int = 160) -> str:
    """Return a line with its length bounded."""
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _sections(text: str) -> Dict[str, List[str]]:
    """Return the sections of an earlier report by heading (the title and intro under '')."""
    sections: Dict[str, List[str]] = {'': []}
    heading = ''
    for line in text.splitlines():
        if line.startswith('## '):
            heading = line
            sections[heading] = []
        sections[heading].append(line)
    return sections


def _kept(sections: Dict[str, List[str]], heading: str) -> List[str]:
    """Return a section of the earlier report (without trailing blank lines)."""
    lines = list(sections.get(heading, [heading, '', '(not measured yet)']))
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def report(fuzz: Optional[Dict], soak: Optional[Dict], tools: Optional[Dict] = None,
           earlier: str = '') -> str:
    """Return the whole Markdown document; sections without JSON come from ``earlier``."""
    sections = _sections(earlier)
    verdicts = [data['passed'] for data in (fuzz, soak) if data is not None]
    verdicts += [tools_passed(tools)] if tools is not None else []
    if None in (fuzz, soak, tools):
        verdicts.append(FAILED_VERDICT not in '\n'.join(sections['']))
    lines = [TITLE, '',
             'How hydranet_node and the command-line tools behave under malformed input, '
             'hostile model files, faults and long runs, measured by the commands at the end '
             'of this page (this file is written by `dev/reliability/report.py` from their '
             'JSON output). '
             f'Overall: **{"every target held" if all(verdicts) else FAILED_VERDICT}**.', '']
    lines += fuzz_section(fuzz) if fuzz is not None else _kept(sections, FUZZ_HEADING)
    lines += [''] + static_sections() + ['']
    lines += soak_section(soak) if soak is not None else _kept(sections, SOAK_HEADING)
    lines += ['']
    lines += tools_section(tools) if tools is not None else _kept(sections, TOOLS_HEADING)
    lines += ['', '## Commands', '', '```bash'] + COMMANDS + ['```']
    return '\n'.join(lines).rstrip() + '\n'


def _load(path: Optional[str]) -> Optional[Dict]:
    if not path:
        return None
    with open(path) as stream:
        return json.load(stream)


def main(argv: Optional[List[str]] = None) -> int:
    """Read the JSON files given and write the Markdown report."""
    args = parse_args(argv)
    earlier = ''
    if os.path.exists(args.out):
        with open(args.out) as stream:
            earlier = stream.read()
    text = report(_load(args.fuzz), _load(args.soak), _load(args.tools), earlier)
    with open(args.out, 'w') as out:
        out.write(text)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
