"""What a Python user of the seed's model writes: ffmpeg in a subprocess, rgb24 bytes to a tensor,
normalise, pack, forward. Every function returns its timings beside its results."""
import contextlib
import copy
import subprocess
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pack_sequence

# ImageNet statistics, as torchvision's pretrained VGG16 expects.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
# The same binary video-rnn runs; the server sets it.
FFMPEG = 'ffmpeg'


def decode(path, size, fps=None):
    """uint8 [T, size, size, 3]: shorter side to `size`, centre square, the filter chain video-rnn uses,
    so that both sides see the same pixels."""
    filters = [f'fps={fps}'] if fps else []
    filters.append(f"scale=w='if(gte(dar,1),max({size},round({size}*dar)),{size})'"
                   f":h='if(gte(dar,1),{size},max({size},round({size}/dar)))':flags=bilinear")
    filters += ['format=rgb24', f'crop={size}:{size}', 'setsar=1']
    command = [FFMPEG, '-nostdin', '-hide_banner', '-loglevel', 'error', '-i', 'file:' + path, '-map', '0:v:0',
               '-vf', ','.join(filters), '-vsync', 'passthrough', '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1']
    raw = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, size, size, 3)


def normalise(frames):
    """uint8 [T, H, W, 3] to normalised float [T, 3, H, W]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(255.0)
    return (x - MEAN) / STD


class Settings:
    """Device, autocast and memory format, applied the way a PyTorch user applies them."""

    def __init__(self, device='cpu', precision='fp32', channels_last=False):
        self.device = torch.device(device)
        self.precision = precision
        self.channels_last = channels_last

    def autocast(self):
        if self.precision == 'fp32':
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == 'bf16' else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def prepare(self, model):
        model = model.to(self.device)
        if self.channels_last:
            model.embedding.to(memory_format=torch.channels_last)
        return model

    def packed(self, clips):
        packed = pack_sequence(clips, enforce_sorted=False).to(self.device)
        if self.channels_last:
            packed = packed._replace(data=packed.data.contiguous(memory_format=torch.channels_last))
        return packed

    def synchronize(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)


def predict(model, files, size, batch, settings, fps=None):
    """Softmax rows in input order, with seconds spent decoding and in all."""
    model.eval()
    rows, decoding, frames = [], 0.0, 0
    started = time.perf_counter()
    for first in range(0, len(files), batch):
        began = time.perf_counter()
        clips = [normalise(decode(path, size, fps)) for path in files[first:first + batch]]
        decoding += time.perf_counter() - began
        frames += sum(len(clip) for clip in clips)
        with torch.no_grad(), settings.autocast():
            logits = model(settings.packed(clips))
        rows.append(F.softmax(logits.float(), dim=1).cpu())
    settings.synchronize()
    return {'seconds': time.perf_counter() - started, 'decodeSeconds': decoding, 'frames': frames,
            'probabilities': torch.cat(rows).tolist()}


def train(model, files, labels, size, batch, epochs, learning_rate, settings, fps=None):
    """Adam over the LSTM and the head; VGG runs again on every frame of every epoch."""
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    report = []
    for _ in range(epochs):
        started = time.perf_counter()
        decoding, loss_sum = 0.0, 0.0
        for first in range(0, len(files), batch):
            began = time.perf_counter()
            clips = [normalise(decode(path, size, fps)) for path in files[first:first + batch]]
            decoding += time.perf_counter() - began
            targets = torch.tensor(labels[first:first + batch], device=settings.device)
            with settings.autocast():
                loss = F.cross_entropy(model(settings.packed(clips)).float(), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(clips)
        settings.synchronize()
        report.append({'seconds': time.perf_counter() - started, 'decodeSeconds': decoding,
                       'loss': loss_sum / len(files)})
    model.eval()
    return report


def backbone_variants(embedding, settings):
    """The ways a PyTorch user can run torchvision's VGG16 on the CPU: the default NCHW, channels_last,
    and oneDNN's own tensors (weights reordered once by torch.utils.mkldnn, activations kept in
    oneDNN's blocked layout through the convolutions)."""
    variants = {'nchw': (embedding, lambda model, x: model(x))}
    channels_last = copy.deepcopy(embedding).to(memory_format=torch.channels_last)
    variants['channels_last'] = (channels_last, lambda model, x: model(x.contiguous(memory_format=torch.channels_last)))
    if settings.device.type == 'cpu' and torch.backends.mkldnn.is_available():
        from torch.utils import mkldnn
        blocked = mkldnn.to_mkldnn(copy.deepcopy(embedding))

        def forward(model, x):
            # oneDNN's adaptive pooling needs an input size divisible by 7: leave the blocked layout before it.
            y = model.features(x.to_mkldnn()).to_dense()
            return model.classifier(torch.flatten(model.avgpool(y), 1))
        variants['onednn'] = (blocked, forward)
    return variants


def backbone_forward(variant, frames, settings):
    """fc7 of uint8 frames [N, H, W, 3], normalisation included, and the seconds it took."""
    model, forward = variant
    model.eval()
    started = time.perf_counter()
    x = normalise(frames).to(settings.device)
    with torch.no_grad(), settings.autocast():
        fc7 = forward(model, x)
    fc7 = fc7.float().cpu()
    settings.synchronize()
    return fc7, time.perf_counter() - started


def padded_versus_packed(model, frames, lengths, settings):
    """The padded approach runs VGG on all B x maxT frames of a [maxT, B, C, H, W] tensor, then packs;
    the packed approach runs it on the sum(lengths) real frames only. Both give the same logits."""
    clips = list(torch.split(normalise(frames), lengths))
    model.eval()
    timings = {}
    with torch.no_grad(), settings.autocast():
        started = time.perf_counter()
        packed_logits = model(settings.packed(clips))
        settings.synchronize()
        timings['packed'] = {'seconds': time.perf_counter() - started, 'frames': int(sum(lengths))}

        started = time.perf_counter()
        padded = torch.nn.utils.rnn.pad_sequence(clips).to(settings.device)  # [maxT, B, C, H, W]
        steps, batch = padded.shape[:2]
        embedded = model.embedding(padded.flatten(0, 1)).view(steps, batch, -1)
        packed = pack_padded_sequence(embedded, torch.tensor(lengths), enforce_sorted=False)
        _, (h_n, _) = model.lstm(packed)
        final = torch.cat((h_n[-2], h_n[-1]), dim=1) if model.bidirectional else h_n[-1]
        padded_logits = model.classifier(final)
        settings.synchronize()
        timings['padded'] = {'seconds': time.perf_counter() - started, 'frames': int(steps * batch)}
    timings['maxLogitDifference'] = float((packed_logits - padded_logits).abs().max())
    return timings
