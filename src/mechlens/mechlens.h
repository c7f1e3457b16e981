// mechlens as a C++ library: one include for the engine and the techniques.
//
//   find_package(mechlens CONFIG REQUIRED)
//   target_link_libraries(app PRIVATE mechlens::mechlens)
//
//   auto model = mechlens::load_model("path/to/hf-folder", {mechlens::ProcessingOptions::tl_defaults()});
//   auto [logits, cache] = model->run_with_cache(tokens);
//   at::Tensor resid = cache[mechlens::act_name("resid_pre", 1)];
//
// Every function that reads user input throws mechlens::Error (mechlens::NotFoundError
// for a missing file) with a one-line message naming the file and the problem.
#pragma once

#include "mechlens/analysis/ablation.h"
#include "mechlens/analysis/circuits.h"
#include "mechlens/analysis/head_detect.h"
#include "mechlens/analysis/ioi.h"
#include "mechlens/analysis/logit_lens.h"
#include "mechlens/analysis/patching.h"
#include "mechlens/analysis/path_patching.h"
#include "mechlens/analysis/residual.h"
#include "mechlens/analysis/verify.h"
#include "mechlens/core/error.h"
#include "mechlens/core/factored_matrix.h"
#include "mechlens/core/tensor_json.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/model/activation_cache.h"
#include "mechlens/model/generate.h"
#include "mechlens/model/hook_names.h"
#include "mechlens/model/hooked_transformer.h"
#include "mechlens/tokenize/tokenizer.h"
#include "mechlens/tokenize/tokens.h"
