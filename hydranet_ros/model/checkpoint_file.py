"""Reading a checkpoint file safely, and saying precisely what is wrong with one that fails.

A checkpoint is always read with ``torch.load(..., weights_only=True)``: tensors and plain
values only, never pickled code. A file that cannot be read is diagnosed as one of: not a file,
empty, not a PyTorch checkpoint at all (random bytes, a picture, a web page, ...), truncated,
refused because it carries pickled objects (their types named), or damaged. No message relays
PyTorch's advice to load the file with ``weights_only`` turned off: that would run whatever
code the file carries.
"""
import io
import os
import pickle
import pickletools
import re
import stat
import zipfile
from typing import Any, BinaryIO, Iterable, List, Optional, Tuple, Union

import torch

PathLike = Union[str, os.PathLike]
HEAD_BYTES = 512
ZIP_MAGIC = b'PK\x03\x04'
PICKLE_PROTO = 0x80
TAR_MAGIC_OFFSET = 257
MAX_NAMED_TYPES = 4
MAX_LEGACY_PICKLES = 4
MAX_REASON_CHARS = 160
SAVE_HINT = ('pass a file written by torch.save (.pt, .pth or .ckpt), e.g. a published HydraNet '
             'checkpoint or one written by hydranet-train')

# Names that a checkpoint of plain tensors pickles: tensor and storage rebuilding, dtypes,
# sizes, devices and ordered dicts. Anything else is an object weights_only refuses.
_PLAIN_GLOBALS = re.compile(
    r'^(torch\._utils\._rebuild_\w+|torch\.\w*Storage|torch\.(Size|device|dtype|[a-z0-9_]+)'
    r'|collections\.OrderedDict|_codecs\.encode|builtins\.(set|frozenset|bytearray|slice|'
    r'complex|int|float|bool|str|bytes|tuple|list|dict)|torch\._tensor\._rebuild_from_type_v2'
    r'|torch\.serialization\._get_layout)$')
_TERMINAL_ESCAPES = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')
# A sentence of library text that advises turning off weights_only or allow-listing globals
# (a sentence ends at a full stop followed by a space or the end; `torch.load` does not end it).
_SENTENCE_PART = r'(?:[^.\n]|\.(?=\S))*'
_UNSAFE_SENTENCE = re.compile(
    _SENTENCE_PART + r'(?:weights_only' + _SENTENCE_PART + r'False|safe_globals|arbitrary code'
    r'|trusted source|trust the source)' + _SENTENCE_PART + r'(?:\.|$)', re.IGNORECASE)
_REFUSED_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')
# (magic bytes, offset, what the file is, what to do)
_KNOWN_FORMATS: Tuple[Tuple[bytes, int, str, str], ...] = (
    (b'\x89PNG\r\n\x1a\n', 0, 'a PNG image', SAVE_HINT),
    (b'\xff\xd8\xff', 0, 'a JPEG image', SAVE_HINT),
    (b'GIF8', 0, 'a GIF image', SAVE_HINT),
    (b'\x89HDF\r\n\x1a\n', 0, 'an HDF5 file (Keras or TensorFlow weights?)', SAVE_HINT),
    (b'\x93NUMPY', 0, 'a NumPy .npy array', SAVE_HINT),
    (b'\x1f\x8b', 0, 'a gzip-compressed file', 'decompress it first (gunzip)'),
    (b'BZh', 0, 'a bzip2-compressed file', 'decompress it first (bunzip2)'),
    (b'\xfd7zXZ\x00', 0, 'an xz-compressed file', 'decompress it first (unxz)'),
    (b'(\xb5/\xfd', 0, 'a zstd-compressed file', 'decompress it first (unzstd)'),
    (b'7z\xbc\xaf\x27\x1c', 0, 'a 7-Zip archive', 'extract the checkpoint from it first'),
    (b'\x7fELF', 0, 'a program (ELF executable)', SAVE_HINT),
    (b'%PDF', 0, 'a PDF document', SAVE_HINT),
    (b'version https://git-lfs', 0, 'a Git LFS pointer, not the file it points to',
     'fetch the real file (git lfs pull)'),
)


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, unsafe or does not fit the network."""


def without_unsafe_advice(text: str) -> str:
    """Return ``text`` without terminal escapes and without advice to disable weights_only."""
    return _UNSAFE_SENTENCE.sub('', _TERMINAL_ESCAPES.sub('', text))


def library_reason(error: BaseException, limit: int = MAX_REASON_CHARS) -> str:
    """Return the gist of a library's error: its first safe sentence, in one short line."""
    text = ' '.join(without_unsafe_advice(str(error)).split())
    text = text.split('. ')[0].rstrip('.') or type(error).__name__
    return text if len(text) <= limit else text[:limit - 3].rstrip() + '...'


def _is_text(head: bytes) -> bool:
    try:
        decoded = head.decode('utf-8')
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in '\r\n\t' for ch in decoded)


def _what_it_is(head: bytes) -> Tuple[str, str]:
    """Return what a file that is not a PyTorch checkpoint looks like, and what to do."""
    for magic, offset, what, fix in _KNOWN_FORMATS:
        if head[offset:offset + len(magic)] == magic:
            return what, fix
    if len(head) >= 9 and head[8:9] == b'{' and int.from_bytes(head[:8], 'little') < 10**8:
        return 'a safetensors file', ('this tool reads torch.save checkpoints; save its tensors '
                                      'with torch.save')
    stripped = head.lstrip().lower()
    if stripped.startswith((b'<!doctype html', b'<html', b'<?xml')):
        return 'an HTML or XML page (a failed download?)', 'download the checkpoint again'
    if _is_text(head):
        return 'a text file', SAVE_HINT
    shown = head[:8].hex(' ')
    return f'data of an unknown kind (first bytes {shown})', SAVE_HINT


def _check_file(path: str) -> int:
    """Raise ``CheckpointError`` unless ``path`` is a readable, non-empty file; return its size."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f'checkpoint {path!r} does not exist; check the model path') \
            from None
    except OSError as error:
        raise CheckpointError(f'checkpoint {path!r} cannot be read ({error.strerror}); check '
                              f'the path and its permissions') from None
    if stat.S_ISDIR(status.st_mode):
        raise CheckpointError(f'checkpoint {path!r} is a directory, not a file; pass the '
                              f'checkpoint file itself')
    if not stat.S_ISREG(status.st_mode):
        raise CheckpointError(f'checkpoint {path!r} is not a regular file (a device, pipe or '
                              f'socket); pass a checkpoint file')
    if not os.access(path, os.R_OK):
        raise CheckpointError(f'checkpoint {path!r} cannot be read (permission denied); check '
                              f'its permissions')
    if status.st_size == 0:
        raise CheckpointError(f'checkpoint {path!r} is empty (0 bytes): the file is truncated; '
                              f'copy or download it again')
    return status.st_size


def _archive_kind(path: str, head: bytes) -> str:
    """Return 'zip', 'legacy' or 'tar' for PyTorch's formats; raise for anything else."""
    if head.startswith(ZIP_MAGIC):
        return 'zip'
    if head and head[0] == PICKLE_PROTO:
        return 'legacy'
    if head[TAR_MAGIC_OFFSET:TAR_MAGIC_OFFSET + 5] == b'ustar':
        return 'tar'
    if ZIP_MAGIC.startswith(head):
        raise CheckpointError(f'checkpoint {path!r} is truncated: it ends after {len(head)} '
                              f'bytes, inside the header of its archive; copy or download it '
                              f'again')
    what, fix = _what_it_is(head)
    raise CheckpointError(f'checkpoint {path!r} is not a PyTorch checkpoint: it is {what}; '
                          f'{fix}')


def _torchscript(path: str) -> CheckpointError:
    return CheckpointError(
        f'checkpoint {path!r} is a TorchScript program (torch.jit.save), not a checkpoint of '
        f'weights; save the weights with torch.save(model.state_dict(), path)')


def _check_zip(path: str, size: int) -> None:
    """Raise ``CheckpointError`` for a zip that is cut off or holds no PyTorch checkpoint."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise CheckpointError(
            f'checkpoint {path!r} is truncated: its zip archive ({size} bytes) ends without the '
            f'directory that closes every complete archive, as when a copy or download stopped '
            f'early; copy or download it again') from None
    if any(name.endswith('constants.pkl') or '/code/' in name for name in names):
        raise _torchscript(path)
    if any(name.endswith('data.pkl') for name in names):
        return
    shown = ', '.join(names[:3]) + (' ...' if len(names) > 3 else '') or 'nothing'
    raise CheckpointError(f'checkpoint {path!r} is a zip archive but not a PyTorch checkpoint '
                          f'(no data.pkl inside; it holds {shown}); {SAVE_HINT}')


def _pickles(path: str, kind: str) -> Iterable[BinaryIO]:
    """Yield the pickle streams of a checkpoint (the zip's data.pkl, or the legacy file)."""
    if kind == 'zip':
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith('data.pkl'):
                    yield io.BytesIO(archive.read(name))
        return
    with open(path, 'rb') as stream:
        yield stream


def _globals_in(stream: BinaryIO) -> List[str]:
    """Return the module.name of every global a pickle stream refers to, in order.

    Opcodes are only read, never executed. STACK_GLOBAL takes its names from the two strings
    pushed (or fetched from the memo) before it.
    """
    found: List[str] = []
    strings: List[Any] = []
    memo: dict = {}
    for _ in range(MAX_LEGACY_PICKLES):
        try:
            for opcode, argument, _position in pickletools.genops(stream):
                name = opcode.name
                if name == 'GLOBAL':
                    found.append(str(argument).replace(' ', '.'))
                elif name == 'STACK_GLOBAL' and len(strings) >= 2:
                    found.append(f'{strings[-2]}.{strings[-1]}')
                elif name in ('SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'UNICODE',
                              'SHORT_BINSTRING', 'BINSTRING', 'STRING'):
                    strings.append(argument)
                elif name in ('BINPUT', 'LONG_BINPUT') and strings:
                    memo[argument] = strings[-1]
                elif name == 'MEMOIZE' and strings:
                    memo[len(memo)] = strings[-1]
                elif name in ('BINGET', 'LONG_BINGET', 'GET') and argument in memo:
                    strings.append(memo[argument])
        except (ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError):
            break
        if stream.read(1) == b'':
            break
        stream.seek(-1, io.SEEK_CUR)
    return found


def refused_types(path: str, kind: str, message: str) -> List[str]:
    """Return the types of the pickled objects that make a file more than plain weights."""
    named = _REFUSED_GLOBAL.findall(message)
    try:
        for stream in _pickles(path, kind):
            named.extend(_globals_in(stream))
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        pass
    full = [name if '.' in name else f'builtins.{name}' for name in named]
    full = [re.sub(r'^__builtin__\.', 'builtins.', name) for name in full]
    return list(dict.fromkeys(name for name in full if not _PLAIN_GLOBALS.match(name)))


def _refusal(path: str, types: List[str]) -> CheckpointError:
    shown = ', '.join(types[:MAX_NAMED_TYPES]) + (' ...' if len(types) > MAX_NAMED_TYPES else '')
    what = f'pickled objects of type {shown}' if types else 'pickled objects of other types'
    if any(name.startswith('torch.nn.') for name in types):
        fix = ('it holds a whole pickled network instead of its weights: save '
               'model.state_dict() with torch.save instead')
    elif any(name.startswith('numpy.') for name in types):
        fix = 'it holds NumPy objects: save the weights as torch tensors instead'
    else:
        fix = ('use a checkpoint that holds only tensors and plain values (a state_dict saved '
               'with torch.save)')
    return CheckpointError(
        f'checkpoint {path!r} was refused: it is not a plain weights file: it carries {what}, '
        f'which could run code when loaded and are never loaded; {fix}')


def _load_error(path: str, kind: str, error: BaseException) -> CheckpointError:
    """Return the diagnosis of a torch.load failure on a file that looked like a checkpoint."""
    message = str(error)
    lowered = message.lower()
    if isinstance(error, EOFError) or 'truncated' in lowered or 'ran out of input' in lowered \
            or 'unexpected eof' in lowered \
            or 'central directory' in lowered:
        return CheckpointError(f'checkpoint {path!r} is truncated: its data ends early, as when '
                               f'a copy or download stopped; copy or download it again')
    if isinstance(error, pickle.UnpicklingError):
        types = refused_types(path, kind, message)
        if types or 'GLOBAL' in message:
            return _refusal(path, types)
    if 'torchscript' in lowered:
        return _torchscript(path)
    reason = library_reason(error.__cause__ or error) if 'weights only load failed' in lowered \
        else library_reason(error)
    reason = re.sub(r'^Weights only load failed\W*', '', reason) or type(error).__name__
    return CheckpointError(f'checkpoint {path!r} is damaged ({type(error).__name__}: {reason}); '
                           f'copy or download it again')


def read_checkpoint_file(path: PathLike) -> Any:
    """Load a checkpoint with ``weights_only=True``; raise ``CheckpointError`` if unusable."""
    path = os.fspath(path)
    size = _check_file(path)
    with open(path, 'rb') as stream:
        head = stream.read(HEAD_BYTES)
    kind = _archive_kind(path, head)
    if kind == 'zip':
        _check_zip(path, size)
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: B902 - a parser fed a damaged file may raise anything
        raise _load_error(path, kind, error) from None


def unsafe_advice_in(text: str) -> Optional[str]:
    """Return the first sentence of ``text`` that advises an unsafe load, or None."""
    match = _UNSAFE_SENTENCE.search(_TERMINAL_ESCAPES.sub('', text))
    return match.group(0).strip() if match else None
