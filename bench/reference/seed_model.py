"""The seed's CNN+RNN model in PyTorch, with its bugs fixed, and a reader for video-rnn checkpoints.

Fixed relative to the seed: the final state is cat(h_n[-2], h_n[-1]) rather than a view of h_n;
the elementwise apply keeps sorted_indices and unsorted_indices, so outputs come back in the
caller's order; the initial states are LSTM's zero default, sized by the batch; weights come from a
file (our checkpoint) rather than a download; the frozen backbone stays in eval mode while the rest
trains, so its dropout layers do nothing (a frozen feature extractor must give fixed features).
"""
import collections
import hashlib
import json
import struct

import numpy as np
import torch
import torchvision
from torch.nn.utils.rnn import PackedSequence

EMBEDDING_SIZE = 4096


def elementwise_apply(fn, packed):
    """fn over the packed frames; the result keeps the batch sizes and both index tensors."""
    return PackedSequence(fn(packed.data), packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)


class SeedVideoRNN(torch.nn.Module):
    def __init__(self, classes, hidden_size, num_layers=1, bidirectional=True, head_size=256, dropout=0.0):
        super().__init__()
        vgg = torchvision.models.vgg16()
        vgg.classifier = torch.nn.Sequential(*list(vgg.classifier.children())[:-1])
        for parameter in vgg.parameters():
            parameter.requires_grad = False
        self.embedding = vgg
        self.lstm = torch.nn.LSTM(EMBEDDING_SIZE, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                                  dropout=dropout if num_layers > 1 else 0.0)
        directions = 2 if bidirectional else 1
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(directions * hidden_size, head_size),
            torch.nn.ReLU(),
            torch.nn.Linear(head_size, classes),
        )
        # Outside the Sequential, so the Linears keep the names classifier.0 and classifier.2.
        self.head_dropout = torch.nn.Dropout(dropout)
        self.bidirectional = bidirectional

    def train(self, mode=True):
        super().train(mode)
        self.embedding.eval()
        return self

    def forward(self, packed):
        embedded = elementwise_apply(self.embedding, packed)
        _, (h_n, _) = self.lstm(embedded)
        final = torch.cat((h_n[-2], h_n[-1]), dim=1) if self.bidirectional else h_n[-1]
        hidden = self.classifier[1](self.classifier[0](final))
        return self.classifier[2](self.head_dropout(hidden))


def read_safetensors(path):
    """8-byte little-endian header length, a JSON header, then raw little-endian tensor bytes."""
    with open(path, 'rb') as handle:
        (length,) = struct.unpack('<Q', handle.read(8))
        header = json.loads(handle.read(length))
        data = handle.read()
    metadata = header.pop('__metadata__', {})
    tensors = collections.OrderedDict()
    for name, info in header.items():
        if info['dtype'] != 'F32':
            raise ValueError(f'{path}: tensor {name} is {info["dtype"]}, only F32 is expected in a checkpoint')
        begin, end = info['data_offsets']
        tensors[name] = torch.from_numpy(np.frombuffer(data, dtype='<f4', count=(end - begin) // 4, offset=begin).copy())
        tensors[name] = tensors[name].view(info['shape'])
    return tensors, metadata


def backbone_identity(weights):
    """video-rnn's backbone identity of torchvision-named VGG16 weights: SHA-256 of a domain line, then for
    each backbone tensor in torchvision's order (fc8 left out) "name F32 d0,d1,...\n" and its values as
    little-endian float32."""
    digest = hashlib.sha256(b'video-rnn vgg16 backbone identity 1\n')
    for name, tensor in weights.items():
        if name.startswith('classifier.6.'):
            continue
        digest.update(f"{name} F32 {','.join(str(size) for size in tensor.shape)}\n".encode())
        digest.update(tensor.detach().float().contiguous().numpy().astype('<f4').tobytes())
    return digest.hexdigest()


def read_backbone(path):
    """torchvision-named VGG16 weights from a torch .pth (as torchvision publishes them) or a safetensors file."""
    with open(path, 'rb') as handle:
        head = handle.read(2)
    if head in (b'PK', b'\x80\x02'):
        return torch.load(path, map_location='cpu')
    return read_safetensors(path)[0]


def load_checkpoint(path, backbone=None):
    """A video-rnn checkpoint as (model in eval mode, its config, its state dict on the CPU). A small
    checkpoint (metadata `backbone`) holds the LSTM, the head and any trained backbone tensors: the rest
    comes from `backbone`, the torchvision weights file it names, checked by identity."""
    tensors, metadata = read_safetensors(path)
    if metadata.get('format') != 'video-rnn':
        raise ValueError(f'{path} is not a video-rnn checkpoint')
    config = json.loads(metadata['config'])
    if not any(name.startswith('embedding.features.') for name in tensors):
        if backbone is None:
            raise ValueError(f'{path} references its backbone: pass the weights file it names')
        weights = read_backbone(backbone)
        reference = json.loads(metadata['backbone'])
        if backbone_identity(weights) != reference['identity']:
            raise ValueError(f'{backbone} is not the backbone {reference["identity"]} that {path} was trained on')
        base = collections.OrderedDict((f'embedding.{name}', value) for name, value in weights.items()
                                       if not name.startswith('classifier.6.'))
        base.update(tensors)
        tensors = base
    model = SeedVideoRNN(len(config['classes']), config['hiddenSize'], config['numLayers'], config['bidirectional'],
                         config['headSize'], config.get('dropout', 0.0))
    model.load_state_dict(tensors, strict=True)
    return model.eval(), config, tensors
