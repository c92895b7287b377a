"""Reference outputs from Debian's torch and torchvision, for the golden tests.

usage: reference.py vgg16 OUT_DIR SEED FRAMES_BIN N H W [FORMATS]
         writes torchvision.models.vgg16() weights (seeded) in each format asked for
         (zip, legacy, safetensors, timm; comma-separated) and fc7.bin, the float32 fc7 of the
         frames (uint8 [N, H, W, 3]) with classifier[:-1], in eval mode
       reference.py seed-logits CHECKPOINT FRAMES_BIN LENGTHS H W OUT_BIN [BACKBONE]
         loads a video-rnn checkpoint (a small one with the torchvision weights file BACKBONE) into the
         seed's model (bugs fixed) with load_state_dict and writes the logits of the clips (LENGTHS:
         comma-separated frame counts, in FRAMES_BIN order)
"""
import collections
import json
import pathlib
import struct
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / 'bench' / 'reference'))
from seed_model import load_checkpoint  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def read_frames(path, n, h, w):
    data = np.fromfile(path, dtype=np.uint8).reshape(n, h, w, 3)
    x = torch.from_numpy(data).permute(0, 3, 1, 2).float() / 255.0
    return (x - MEAN) / STD


def write_safetensors(path, tensors, metadata=None):
    header, chunks, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name, tensor in tensors.items():
        data = tensor.detach().float().contiguous().numpy().astype('<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(tensor.shape), 'data_offsets': [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header).encode('utf-8')
    with open(path, 'wb') as out:
        out.write(struct.pack('<Q', len(encoded)))
        out.write(encoded)
        for chunk in chunks:
            out.write(chunk)


def vgg16(out_dir, seed, frames_bin, n, h, w, formats):
    torch.manual_seed(seed)
    model = torchvision.models.vgg16().eval()
    state = model.state_dict()
    if 'zip' in formats:
        torch.save(state, f'{out_dir}/vgg16.pth')
    if 'legacy' in formats:
        torch.save(state, f'{out_dir}/vgg16-legacy.pth', _use_new_zipfile_serialization=False)
    if 'safetensors' in formats:
        write_safetensors(f'{out_dir}/vgg16.safetensors', state)
    if 'timm' in formats:
        timm = collections.OrderedDict((k, v) for k, v in state.items() if k.startswith('features.'))
        timm['pre_logits.fc1.weight'] = state['classifier.0.weight'].view(4096, 512, 7, 7)
        timm['pre_logits.fc1.bias'] = state['classifier.0.bias']
        timm['pre_logits.fc2.weight'] = state['classifier.3.weight'].view(4096, 4096, 1, 1)
        timm['pre_logits.fc2.bias'] = state['classifier.3.bias']
        timm['head.fc.weight'] = state['classifier.6.weight']
        timm['head.fc.bias'] = state['classifier.6.bias']
        write_safetensors(f'{out_dir}/vgg16-timm.safetensors', timm)
    with torch.no_grad():
        x = read_frames(frames_bin, n, h, w)
        fc7 = model.classifier[:-1](torch.flatten(model.avgpool(model.features(x)), 1))
    fc7.numpy().astype('<f4').tofile(f'{out_dir}/fc7.bin')


def seed_logits(checkpoint, frames_bin, lengths, h, w, out_bin, backbone=None):
    # The one PyTorch version of the seed's model (bugs fixed), shared with the benchmarks.
    model, _, _ = load_checkpoint(checkpoint, backbone)
    x = read_frames(frames_bin, sum(lengths), h, w)
    clips = list(torch.split(x, lengths))
    packed = torch.nn.utils.rnn.pack_sequence(clips, enforce_sorted=False)
    with torch.no_grad():
        logits = model(packed)
    logits.numpy().astype('<f4').tofile(out_bin)


def main(argv):
    if argv[1] == 'vgg16':
        formats = argv[8].split(',') if len(argv) > 8 else ['zip']
        vgg16(argv[2], int(argv[3]), argv[4], int(argv[5]), int(argv[6]), int(argv[7]), formats)
    elif argv[1] == 'seed-logits':
        seed_logits(argv[2], argv[3], [int(v) for v in argv[4].split(',')], int(argv[5]), int(argv[6]), argv[7],
                    argv[8] if len(argv) > 8 else None)
    else:
        raise SystemExit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
