"""One forward of a packed batch through the seed's model (bugs fixed), timed: for bench/forward-batch.mjs.

argv: checkpoint, raw uint8 frames file [sum(lengths), S, S, 3], S, comma-separated lengths, threads, rounds.
Prints one JSON line: the seconds of each round and the logits of the last one.
"""
import json
import sys
import time

import numpy as np
import torch
from torch.nn.utils.rnn import pack_sequence

from pipeline import normalise
from seed_model import load_checkpoint


def main():
    checkpoint, frames_file, size, lengths, threads, rounds = sys.argv[1:7]
    size, threads, rounds = int(size), int(threads), int(rounds)
    lengths = [int(value) for value in lengths.split(',')]
    torch.set_num_threads(threads)
    model, _, _ = load_checkpoint(checkpoint)
    frames = np.fromfile(frames_file, dtype=np.uint8).reshape(sum(lengths), size, size, 3)
    seconds = []
    with torch.no_grad():
        for _ in range(rounds + 1):
            started = time.perf_counter()
            clips = list(torch.split(normalise(frames), lengths))
            logits = model(pack_sequence(clips, enforce_sorted=False))
            seconds.append(time.perf_counter() - started)
    # The first call builds kernels and allocates: not counted.
    print(json.dumps({'seconds': seconds[1:], 'logits': logits.tolist(), 'threads': torch.get_num_threads()}))


if __name__ == '__main__':
    main()
