"""The reference side of the benchmarks, as a long-lived process so that its rounds can alternate with
ours without paying Python's start-up and the weights load each time.

One JSON request per line on stdin, one JSON answer per line on stdout; anything else goes to stderr.
  {"op": "load", "checkpoint": PATH, "device": "cpu", "precision": "fp32", "channelsLast": false}
  {"op": "predict", "files": [...], "batch": 8}
  {"op": "train", "files": [...], "labels": [...], "batch": 8, "epochs": 2, "learningRate": 0.001}
  {"op": "backbone", "frames": PATH, "count": N, "size": S, "variant": "nchw", "precision": "fp32", "output": PATH?}
  {"op": "padded", "frames": PATH, "lengths": [...], "size": S}
  {"op": "info"}
Threads: torch.set_num_threads(--threads, default: all cores); OpenBLAS keeps its own default, as
for any Python user, and `info` reports what it chose.
"""
import argparse
import ctypes
import json
import os
import sys
import traceback

import numpy as np
import torch

import pipeline
from seed_model import load_checkpoint


def openblas():
    """OpenBLAS's thread count and the kernel family it picked for this CPU, when torch uses OpenBLAS."""
    for name in ('libopenblas.so.0', 'libblas.so.3'):
        try:
            library = ctypes.CDLL(name)
            library.openblas_get_corename.restype = ctypes.c_char_p
            return {'threads': library.openblas_get_num_threads(), 'core': library.openblas_get_corename().decode()}
        except (OSError, AttributeError):
            continue
    return None


class Reference:
    def __init__(self):
        self.model = None
        self.state = None
        self.config = None
        self.settings = pipeline.Settings()
        self.variants = {}

    def load(self, request):
        model, self.config, self.state = load_checkpoint(request['checkpoint'])
        self.settings = pipeline.Settings(request.get('device', 'cpu'), request.get('precision', 'fp32'),
                                          request.get('channelsLast', False))
        self.model = self.settings.prepare(model)
        self.variants = {}
        return {'classes': len(self.config['classes']), 'frameSize': self.config['frameSize']}

    def restart_weights(self):
        """Training starts from the checkpoint every time, as ours does with a freshly loaded model."""
        self.model.load_state_dict(self.state, strict=True)
        self.model = self.settings.prepare(self.model)

    def sampling_fps(self):
        return self.config.get('sampling', {}).get('fps')

    def predict(self, request):
        return pipeline.predict(self.model, request['files'], self.config['frameSize'], request['batch'],
                                self.settings, self.sampling_fps())

    def train(self, request):
        self.restart_weights()
        epochs = pipeline.train(self.model, request['files'], request['labels'], self.config['frameSize'],
                                request['batch'], request['epochs'], request['learningRate'], self.settings,
                                self.sampling_fps())
        return {'epochs': epochs}

    def frames(self, request, count):
        size = request['size']
        return np.fromfile(request['frames'], dtype=np.uint8, count=count * size * size * 3).reshape(count, size, size, 3)

    def backbone(self, request):
        if not self.variants:
            self.variants = pipeline.backbone_variants(self.model.embedding, self.settings)
        name = request['variant']
        if name not in self.variants:
            return {'unavailable': f'no {name} variant here'}
        settings = pipeline.Settings(self.settings.device, request.get('precision', 'fp32'))
        fc7, seconds = pipeline.backbone_forward(self.variants[name], self.frames(request, request['count']), settings)
        if request.get('output'):
            fc7.numpy().astype('<f4').tofile(request['output'])
        return {'seconds': seconds, 'frames': request['count']}

    def padded(self, request):
        lengths = request['lengths']
        return pipeline.padded_versus_packed(self.model, self.frames(request, sum(lengths)), lengths, self.settings)

    def info(self, _request):
        return {
            'python': sys.version.split()[0],
            'torch': torch.__version__,
            'torchThreads': torch.get_num_threads(),
            'openblas': openblas(),
            'OPENBLAS_NUM_THREADS': os.environ.get('OPENBLAS_NUM_THREADS'),
            'OPENBLAS_CORETYPE': os.environ.get('OPENBLAS_CORETYPE'),
            'mkldnn': torch.backends.mkldnn.is_available(),
            'cuda': torch.cuda.is_available(),
            'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--ffmpeg', default='ffmpeg')
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    pipeline.FFMPEG = arguments.ffmpeg
    reference = Reference()
    handlers = {'load': reference.load, 'predict': reference.predict, 'train': reference.train,
                'backbone': reference.backbone, 'padded': reference.padded, 'info': reference.info}
    print(json.dumps({'ready': True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get('op') == 'quit':
            break
        try:
            answer = handlers[request['op']](request)
        except Exception as error:  # the Node side reports it and stops the measurement
            traceback.print_exc(file=sys.stderr)
            answer = {'error': f'{type(error).__name__}: {error}'}
        print(json.dumps(answer), flush=True)


if __name__ == '__main__':
    main()
