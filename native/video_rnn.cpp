#include "video_rnn.h"

#include "phase_times.h"

namespace video_rnn {

VideoRNNImpl::VideoRNNImpl(const VideoRNNOptions& options) : options_(options) {
  const int64_t directions = options.bidirectional ? 2 : 1;
  embedding = register_module("embedding", Vgg16());
  lstm = register_module("lstm", torch::nn::LSTM(
      torch::nn::LSTMOptions(kEmbeddingSize, options.hidden_size)
          .num_layers(options.num_layers)
          .bidirectional(options.bidirectional)
          .dropout(options.num_layers > 1 ? options.dropout : 0.0)));
  classifier = register_module("classifier", torch::nn::Sequential(
      torch::nn::Linear(directions * options.hidden_size, options.head_size),
      torch::nn::ReLU(),
      torch::nn::Linear(options.head_size, options.classes)));
  // Training only, as nn.Dropout: set_mode puts it in eval mode for predict, evaluate and embed.
  head_dropout = register_module("head_dropout", torch::nn::Dropout(options.dropout));
}

PackedSequence VideoRNNImpl::embed(const PackedSequence& frames, int64_t chunk_rows) {
  auto backbone = [this](const torch::Tensor& chunk) {
    torch::Tensor input;
    {
      PhaseTimer timer(Phase::kNormalize);
      input = normalize_frames(chunk);
    }
    return embedding->forward(input);
  };
  return elementwise_apply(backbone, frames, chunk_rows);
}

torch::Tensor VideoRNNImpl::final_state(const PackedSequence& embeddings) {
  const int64_t directions = options_.bidirectional ? 2 : 1;
  const int64_t batch = embeddings.batch_sizes()[0].item<int64_t>();
  // Zero initial states sized from this batch, not from a fixed batch size.
  auto zeros = torch::zeros({options_.num_layers * directions, batch, options_.hidden_size},
                            embeddings.data().options());
  auto output = lstm->forward_with_packed_input(embeddings, std::make_tuple(zeros, zeros.clone()));
  // h_n is [layers * directions, B, H], already in the caller's order (unsorted_indices).
  const auto& h_n = std::get<0>(std::get<1>(output));
  if (directions == 1) return h_n[-1];
  return torch::cat({h_n[-2], h_n[-1]}, 1);
}

torch::Tensor VideoRNNImpl::classify(const PackedSequence& embeddings) {
  auto hidden = classifier->at<torch::nn::LinearImpl>(0).forward(final_state(embeddings));
  hidden = classifier->at<torch::nn::ReLUImpl>(1).forward(hidden);
  return classifier->at<torch::nn::LinearImpl>(2).forward(head_dropout->forward(hidden));
}

void VideoRNNImpl::set_mode(bool training) {
  torch::nn::Module::train(training);
  embedding->apply_modes(training);
}

}  // namespace video_rnn
