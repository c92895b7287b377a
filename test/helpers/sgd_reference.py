"""torch.optim.SGD on a video-rnn checkpoint, the reference for the `momentum` option.

usage: sgd_reference.py CHECKPOINT FRAMES_BIN LENGTHS H W LABELS LR MOMENTA STEPS OUT_DIR
  for each momentum m of MOMENTA (comma-separated): loads CHECKPOINT into the seed's model (bugs
  fixed; frozen VGG16 in eval mode), then takes STEPS steps of SGD(lr=LR, momentum=m) over the LSTM
  and head on one batch: the clips of FRAMES_BIN (uint8 [sum(LENGTHS), H, W, 3], LENGTHS
  comma-separated) with LABELS (comma-separated), mean cross-entropy. Writes the trained LSTM and
  head tensors to OUT_DIR/momentum-m.safetensors (float32).
"""
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / 'bench' / 'reference'))
from reference import read_frames, write_safetensors  # noqa: E402
from seed_model import load_checkpoint  # noqa: E402


def main(argv):
    if len(argv) != 11:
        raise SystemExit(__doc__)
    checkpoint, frames_bin, lengths, h, w, labels, lr, momenta, steps, out_dir = argv[1:]
    lengths = [int(value) for value in lengths.split(',')]
    labels = torch.tensor([int(value) for value in labels.split(',')])
    x = read_frames(frames_bin, sum(lengths), int(h), int(w))
    for momentum in momenta.split(','):
        model, _, _ = load_checkpoint(checkpoint)
        model.train()
        packed = torch.nn.utils.rnn.pack_sequence(list(torch.split(x, lengths)), enforce_sorted=False)
        trained = [p for name, p in model.named_parameters() if not name.startswith('embedding.')]
        optimizer = torch.optim.SGD(trained, lr=float(lr), momentum=float(momentum))
        for _ in range(int(steps)):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(packed), labels)
            loss.backward()
            optimizer.step()
        state = {name: tensor for name, tensor in model.state_dict().items() if not name.startswith('embedding.')}
        write_safetensors(f'{out_dir}/momentum-{momentum}.safetensors', state)


if __name__ == '__main__':
    main(sys.argv)
