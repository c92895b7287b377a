"""Writes the weights-reader test files with Debian's torch, and a manifest of what they hold.

usage: weights.fixtures.py small|vgg16 OUTPUT_DIR
       weights.fixtures.py malicious OUTPUT_DIR MARKER_PATH
       weights.fixtures.py read-safetensors OUTPUT_DIR SAFETENSORS_FILE

The manifest gives, per file, each tensor's shape and the SHA-256 of its values as contiguous
little-endian float32 (what the readers return), so the tests compare every value exactly.
"""
import collections
import hashlib
import json
import os
import pickle
import struct
import sys
import zipfile

import torch
import torchvision

# The identity as Python computes it from its definition, the one README's interop snippet uses.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'bench', 'reference'))
from seed_model import backbone_identity  # noqa: E402

SAFETENSORS_DTYPES = {
    torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',
    torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8', torch.uint8: 'U8',
    torch.bool: 'BOOL',
}


def expected(tensors):
    out = {}
    for name, tensor in tensors.items():
        values = tensor.detach().float().contiguous().numpy().astype('<f4').tobytes()
        out[name] = {'shape': list(tensor.shape), 'sha256': hashlib.sha256(values).hexdigest()}
    return out


def raw_bytes(tensor):
    tensor = tensor.detach().contiguous()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.view(torch.int16)
    return tensor.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    """The format by hand: unpadded header, names unsorted, data in reverse header order."""
    header = {}
    if metadata:
        header['__metadata__'] = metadata
    chunks = []
    offset = 0
    for name, tensor in reversed(list(tensors.items())):
        data = raw_bytes(tensor)
        header[name] = {'dtype': SAFETENSORS_DTYPES[tensor.dtype], 'shape': list(tensor.shape),
                        'data_offsets': [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    ordered = {key: header[key] for key in ['__metadata__'] * bool(metadata) + list(tensors)}
    encoded = json.dumps(ordered).encode('utf-8')
    with open(path, 'wb') as out:
        out.write(struct.pack('<Q', len(encoded)))
        out.write(encoded)
        for chunk in chunks:
            out.write(chunk)


def write_zip64(source, target):
    """Rewrites a torch zip with zip64 records everywhere (sizes, offsets, end of directory)."""
    with zipfile.ZipFile(source) as archive:
        entries = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    out = bytearray()
    central = bytearray()
    for name, data in entries:
        encoded = name.encode()
        crc = zipfile.crc32(data)
        offset = len(out)
        local_extra = struct.pack('<HHQQ', 1, 16, len(data), len(data))
        out += struct.pack('<IHHHHHIIIHH', 0x04034b50, 45, 0x800, 0, 0, 0, crc, 0xffffffff, 0xffffffff,
                           len(encoded), len(local_extra)) + encoded + local_extra + data
        central_extra = struct.pack('<HHQQQ', 1, 24, len(data), len(data), offset)
        central += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 45, 45, 0x800, 0, 0, 0, crc, 0xffffffff,
                               0xffffffff, len(encoded), len(central_extra), 0, 0, 0, 0, 0xffffffff)
        central += encoded + central_extra
    directory_offset = len(out)
    out += central
    zip64_end = len(out)
    out += struct.pack('<IQHHIIQQQQ', 0x06064b50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central),
                       directory_offset)
    out += struct.pack('<IIQI', 0x07064b50, 0, zip64_end, 1)
    out += struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, 0xffff, 0xffff, 0xffffffff, 0xffffffff, 0)
    with open(target, 'wb') as handle:
        handle.write(out)


def small_sets():
    torch.manual_seed(1234)
    sets = {}
    sets['ordered'] = collections.OrderedDict([
        ('conv.weight', torch.randn(4, 3, 3, 3)), ('conv.bias', torch.randn(4)),
        ('scalar', torch.tensor(2.5)), ('empty', torch.zeros(0, 5)),
    ])
    sets['plain'] = {'linear.weight': torch.randn(5, 7), 'linear.bias': torch.randn(7)}
    halves = torch.tensor([1.0, -0.0, float('inf'), float('-inf'), float('nan'), 2.0 ** -24, 65504.0, -3.14159],
                          dtype=torch.float16)
    sets['dtypes'] = {
        'half': halves, 'half.random': torch.randn(3, 5).half(), 'bfloat16': torch.randn(4, 6).bfloat16(),
        'double': torch.randn(7, 3, dtype=torch.float64), 'long': torch.arange(-5, 7, dtype=torch.int64).view(3, 4),
        'int': torch.tensor([-(2 ** 31), 2 ** 24, 7], dtype=torch.int32),
        'short': torch.tensor([-32768, 32767], dtype=torch.int16), 'char': torch.tensor([-128, 127], dtype=torch.int8),
        'byte': torch.tensor([0, 255, 17], dtype=torch.uint8), 'bool': torch.tensor([True, False, True]),
    }
    base = torch.randn(24)
    sets['strided'] = {
        'transposed': torch.randn(6, 4).t(), 'stepped': torch.randn(10)[::3],
        'permuted': torch.randn(2, 3, 4).permute(2, 0, 1), 'expanded': torch.randn(3, 1).expand(3, 4),
        'shared.first': base[2:8].view(2, 3), 'shared.second': base[10:22].view(3, 4).t(), 'shared.whole': base,
        'half.transposed': torch.randn(3, 5).half().t(),
    }
    sets['single'] = collections.OrderedDict([('only', torch.randn(3))])
    sets['single.plain'] = {'only': torch.randn(2, 2)}
    module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    sets['module'] = module.state_dict()
    return sets


def small(directory):
    manifest = {'files': {}, 'expected': {}}
    sets = small_sets()
    for set_name, tensors in sets.items():
        manifest['expected'][set_name] = expected(tensors)
        torch.save(tensors, os.path.join(directory, f'{set_name}.zip.pth'))
        torch.save(tensors, os.path.join(directory, f'{set_name}.legacy.pth'), _use_new_zipfile_serialization=False)
        manifest['files'][f'{set_name}.zip.pth'] = set_name
        manifest['files'][f'{set_name}.legacy.pth'] = set_name
    for protocol in (4, 5):
        name = f'module.protocol{protocol}.zip.pth'
        torch.save(sets['module'], os.path.join(directory, name), pickle_protocol=protocol)
        manifest['files'][name] = 'module'
    parameters = {'parameter': torch.nn.Parameter(torch.randn(2, 3))}
    manifest['expected']['parameter'] = expected(parameters)
    torch.save(parameters, os.path.join(directory, 'parameter.zip.pth'))
    manifest['files']['parameter.zip.pth'] = 'parameter'
    for wrapper in ('state_dict', 'model'):
        name = f'wrapped.{wrapper}.zip.pth'
        torch.save({'epoch': 3, 'learning_rate': 0.5, wrapper: sets['ordered']}, os.path.join(directory, name))
        manifest['files'][name] = 'ordered'
    write_zip64(os.path.join(directory, 'ordered.zip.pth'), os.path.join(directory, 'ordered.zip64.pth'))
    assert all(torch.equal(torch.load(os.path.join(directory, 'ordered.zip64.pth'))[key], value)
               for key, value in sets['ordered'].items()), 'torch cannot read the zip64 rewrite'
    manifest['files']['ordered.zip64.pth'] = 'ordered'
    for set_name in ('dtypes', 'strided', 'single'):
        name = f'{set_name}.safetensors'
        write_safetensors(os.path.join(directory, name), sets[set_name], {'format': 'pt', 'note': 'ünïcode ✓'})
        manifest['files'][name] = set_name
    write_safetensors(os.path.join(directory, 'plain.safetensors'), sets['plain'])
    manifest['files']['plain.safetensors'] = 'plain'
    # A whole module rather than its state_dict(): its class is not a global we allow.
    torch.save(torch.nn.Linear(2, 2), os.path.join(directory, 'whole-model.zip.pth'))
    torch.save(torch.nn.Linear(2, 2), os.path.join(directory, 'whole-model.legacy.pth'), _use_new_zipfile_serialization=False)
    manifest['refused'] = {'whole-model.zip.pth': 'torch.nn.modules.linear.Linear',
                           'whole-model.legacy.pth': 'torch.nn.modules.linear.Linear'}
    return manifest


def read_safetensors(path):
    """Reads a safetensors file by hand (struct, json, numpy), as a Python user without the package would."""
    import numpy
    numpy_types = {'F32': '<f4', 'F16': '<f2', 'F64': '<f8', 'I64': '<i8', 'I32': '<i4', 'I16': '<i2', 'I8': 'i1',
                   'U8': 'u1', 'BOOL': '?'}
    with open(path, 'rb') as handle:
        length, = struct.unpack('<Q', handle.read(8))
        header = json.loads(handle.read(length))
        data = handle.read()
    metadata = header.pop('__metadata__', {})
    tensors = {}
    for name, info in header.items():
        begin, end = info['data_offsets']
        array = numpy.frombuffer(data[begin:end], dtype=numpy_types[info['dtype']]).reshape(info['shape'])
        tensors[name] = torch.from_numpy(array.copy())
    return {'expected': expected(tensors), 'metadata': metadata, 'header_length': length,
            'key_order': list(header)}


def vgg16(directory):
    torch.manual_seed(0)
    state = torchvision.models.vgg16().state_dict()
    manifest = {'expected': expected(state), 'identity': backbone_identity(state)}
    torch.save(state, os.path.join(directory, 'vgg16.zip.pth'))
    torch.save(state, os.path.join(directory, 'vgg16.legacy.pth'), _use_new_zipfile_serialization=False)
    timm = collections.OrderedDict((name, value) for name, value in state.items() if name.startswith('features.'))
    timm['pre_logits.fc1.weight'] = state['classifier.0.weight'].view(4096, 512, 7, 7)
    timm['pre_logits.fc1.bias'] = state['classifier.0.bias']
    timm['pre_logits.fc2.weight'] = state['classifier.3.weight'].view(4096, 4096, 1, 1)
    timm['pre_logits.fc2.bias'] = state['classifier.3.bias']
    timm['head.fc.weight'] = state['classifier.6.weight']
    timm['head.fc.bias'] = state['classifier.6.bias']
    write_safetensors(os.path.join(directory, 'vgg16.timm.safetensors'), timm)
    return manifest


class Payload:
    """Pickles as a call of `function(argument)`: what a hostile weights file does."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


ALLOWED = {'collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch.FloatStorage'}


def first_foreign_global(path):
    """The first global outside what a state dict needs, as the file spells it ("module.name")."""
    import pickletools
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            name = next(entry for entry in archive.namelist() if entry.endswith('/data.pkl'))
            streams = [archive.read(name)]
    else:
        with open(path, 'rb') as handle:
            data = handle.read()
        # A legacy file is several pickles in a row; a bare pickle is one.
        streams, position = [], 0
        while position < len(data) and len(streams) < 5:
            end = [offset for _, _, offset in pickletools.genops(data[position:])][-1] + 1
            streams.append(data[position:position + end])
            position += end
    for stream in streams:
        strings = []
        for opcode, argument, _ in pickletools.genops(stream):
            if isinstance(argument, str):
                strings.append(argument)
            name = None
            if opcode.name == 'GLOBAL':
                name = argument.replace(' ', '.')
            elif opcode.name == 'STACK_GLOBAL':
                name = f'{strings[-2]}.{strings[-1]}'
            if name is not None and name not in ALLOWED:
                return name
    return None


def malicious(directory, marker):
    """Files that would create `marker` if loaded by an unrestricted unpickler."""
    import builtins
    import subprocess
    files = {}
    payloads = {
        'os.system': Payload(os.system, f'touch {marker}'),
        'builtins.eval': Payload(builtins.eval, f'open({marker!r}, "w").close()'),
        'builtins.exec': Payload(builtins.exec, f'open({marker!r}, "w").close()'),
        'subprocess.check_call': Payload(subprocess.check_call, ['touch', marker]),
    }
    for label, payload in payloads.items():
        state = collections.OrderedDict([('weight', torch.randn(2)), ('hook', payload)])
        torch.save(state, os.path.join(directory, f'{label}.zip.pth'))
        torch.save(state, os.path.join(directory, f'{label}.legacy.pth'), _use_new_zipfile_serialization=False)
        files[f'{label}.zip.pth'] = files[f'{label}.legacy.pth'] = label
    # Protocol 4 names globals with STACK_GLOBAL instead.
    torch.save({'hook': payloads['builtins.eval']}, os.path.join(directory, 'builtins.eval.protocol4.zip.pth'),
               pickle_protocol=4)
    files['builtins.eval.protocol4.zip.pth'] = 'builtins.eval'
    # os.system pickles as posix.system; the literal module name "os" only by hand.
    literal = b'\x80\x02cos\nsystem\nq\x00X' + struct.pack('<I', len(f'touch {marker}')) + f'touch {marker}'.encode() + b'\x85R.'
    with zipfile.ZipFile(os.path.join(directory, 'os.literal.zip.pth'), 'w') as archive:
        archive.writestr('archive/data.pkl', literal)
        archive.writestr('archive/version', '3\n')
    files['os.literal.zip.pth'] = 'os.system'
    with open(os.path.join(directory, 'os.literal.pickle'), 'wb') as handle:
        handle.write(literal)
    files['os.literal.pickle'] = 'os.system'
    # Protocol 2 spells some modules the Python 2 way (builtins as __builtin__): record the spelling.
    return {'files': {name: first_foreign_global(os.path.join(directory, name)) for name in files}}


def prove_payloads_work(directory, proof_marker):
    """Loads the hostile files the unsafe way, with another marker, to show the payloads are live."""
    results = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith('.zip.pth') or 'literal' in name:
            continue
        if os.path.exists(proof_marker):
            os.remove(proof_marker)
        # weights_only=False: torch 2.6 refuses such files by default, and these must run to prove they are live.
        torch.load(os.path.join(directory, name), weights_only=False)
        results[name] = os.path.exists(proof_marker)
    return results


def main():
    command, directory = sys.argv[1], sys.argv[2]
    if command == 'small':
        manifest = small(directory)
    elif command == 'read-safetensors':
        manifest = read_safetensors(sys.argv[3])
    elif command == 'vgg16':
        manifest = vgg16(directory)
    elif command == 'malicious':
        proof_directory = os.path.join(directory, 'proof')
        os.makedirs(proof_directory)
        proof_marker = os.path.join(directory, 'proof-marker')
        malicious(proof_directory, proof_marker)
        manifest = malicious(directory, sys.argv[3])
        manifest['proof'] = prove_payloads_work(proof_directory, proof_marker)
    else:
        raise SystemExit(f'unknown command {command}')
    with open(os.path.join(directory, 'manifest.json'), 'w') as handle:
        json.dump(manifest, handle)


if __name__ == '__main__':
    main()
