// The indirect-object-identification task (Wang et al. 2022): prompts like
// "When Mary and John went to the store, John gave a drink to" whose answer is the
// indirect object (" Mary", IO) rather than the subject (" John", S), in ABBA and BABA
// orders, with matched corrupted prompts from the paper's ABC distribution (the three
// name slots filled with three other names). The evaluation is the mean logit
// difference logit(IO) - logit(S) at the final position.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mechlens/model/hooked_transformer.h"
#include "mechlens/tokenize/tokenizer.h"

namespace mechlens {

struct IOIPrompt {
  std::string text;       // without the answer
  std::string corrupted;  // the ABC counterpart (same template, place, object)
  std::string io, s;      // names (no leading space)
  std::string order;      // "ABBA" or "BABA"
  int template_index = 0;
  std::vector<int64_t> tokens, corrupted_tokens;  // with BOS when the model prepends it
  int64_t io_token = -1, s_token = -1;            // ids of " IO" and " S"
};

const std::vector<std::string>& ioi_templates();  // BABA form, with [A] [B] [PLACE] [OBJECT]
const std::vector<std::string>& ioi_names();
const std::vector<std::string>& ioi_places();
const std::vector<std::string>& ioi_objects();

// n prompts, half ABBA and half BABA, names drawn among those that are one token with
// a leading space in `tok`. Throws Error if too few names are single tokens.
std::vector<IOIPrompt> make_ioi_dataset(const Tokenizer& tok, int n, uint64_t seed, bool prepend_bos);

struct IOIResult {
  std::vector<double> logit_diffs;          // per prompt
  std::vector<double> corrupted_logit_diffs;
  double mean_logit_diff = 0, mean_corrupted_logit_diff = 0;
  double accuracy = 0;  // share of prompts with logit(IO) > logit(S)
};

// Runs the prompts grouped by length (no padding, so every number is exact).
IOIResult evaluate_ioi(HookedTransformer& m, const std::vector<IOIPrompt>& prompts);

}  // namespace mechlens
