#pragma once
// The classifier: VGG16 fc7 on every real frame of a PackedSequence, a (bidirectional) LSTM over
// the packed embeddings, and a head Linear(D*H, headSize), ReLU, Dropout, Linear(headSize, classes).
// The head's dropout is its own module beside `classifier`, so that the two Linears keep the names
// classifier.0 and classifier.2 that checkpoints and the Python model use (Dropout has no state).
#include <torch/torch.h>

#include "packing.h"
#include "vgg16.h"

namespace video_rnn {

struct VideoRNNOptions {
  int64_t classes = 2;
  int64_t hidden_size = 2048;
  int64_t num_layers = 1;
  bool bidirectional = true;
  int64_t head_size = 256;
  double dropout = 0.0;
};

struct VideoRNNImpl : torch::nn::Module {
  explicit VideoRNNImpl(const VideoRNNOptions& options);

  // uint8 frames packed as a PackedSequence -> fc7 embeddings with the same packing. The CNN sees
  // exactly the packed rows (sum of the clip lengths), `chunk_rows` frames at a time.
  PackedSequence embed(const PackedSequence& frames, int64_t chunk_rows);

  // Packed fc7 embeddings -> logits [B, classes], in the caller's order.
  torch::Tensor classify(const PackedSequence& embeddings);

  // The last layer's final hidden state, both directions concatenated: cat(h_n[-2], h_n[-1]).
  torch::Tensor final_state(const PackedSequence& embeddings);

  // Train or eval mode for the LSTM and head; the backbone's layers follow their trainability.
  void set_mode(bool training);

  const VideoRNNOptions& options() const { return options_; }

  Vgg16 embedding{nullptr};
  torch::nn::LSTM lstm{nullptr};
  torch::nn::Sequential classifier{nullptr};
  torch::nn::Dropout head_dropout{nullptr};

 private:
  VideoRNNOptions options_;
};
TORCH_MODULE(VideoRNN);

}  // namespace video_rnn
