// The one layer-streaming driver: every sequence through decoder layer i before layer i + 1, so a
// streamed model (Model::open) reads each weight once per run and holds one layer's weights plus
// the sequences' hidden states. Calibration, evaluation and SparseGPT all run models through it.
#pragma once

#include <functional>
#include <vector>

#include "libst/core/callbacks.hpp"
#include "libst/data/tokens.hpp"
#include "libst/model/model.hpp"

namespace st::model {

struct LayerRun {
  // observers[w]: what worker w reports to (empty: no observer). Worker w runs sequences w,
  // w + workers, ... in order (for_each_item), as a sequence-by-sequence run would.
  std::vector<Observer*> observers;
  // Set: each layer first runs over every sequence with the observers on a copy of its input,
  // then revise(li) may change the layer's weights (SparseGPT prunes it), then the layer runs again
  // without observers to give the next layer its input. Unset: one observed pass, in place.
  std::function<Status(size_t li)> revise;
};

// Worker count for_each_item uses on these sequences (how many observers to make).
int layer_run_workers(const TokenData& data);

// Runs every sequence of data (checked against the model's vocabulary and length) through the
// embeddings and the decoder layers, loading and dropping each part of a streamed model in turn,
// and returns each sequence's hidden state after the last layer [tokens, hidden] (for head();
// the head is not read). Progress: "layer passes" (one sequence through one layer), tokens.
// The arithmetic per sequence is forward()'s: the same hidden states, bit for bit.
Result<std::vector<std::vector<float>>> run_layers(Model& model, const TokenData& data, const LayerRun& run,
                                                   const ProgressFn& progress = {});

}  // namespace st::model
