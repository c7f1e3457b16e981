// Loads a model folder with the installed libmechlens, runs a forward with a cache and
// prints the loss and one cached activation's shape: app <model-folder>.
#include <mechlens/mechlens.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) return std::cerr << "usage: app <model-folder>\n", 2;
  try {
    auto model = mechlens::load_model(argv[1], {mechlens::ProcessingOptions::tl_defaults()});
    at::Tensor tokens = at::arange(1, 9, at::kLong).unsqueeze(0);
    auto [logits, cache] = model->run_with_cache(tokens);
    at::Tensor resid = cache[mechlens::act_name("resid_pre", 1)];
    std::cout << "loss " << mechlens::HookedTransformer::loss(logits, tokens).item<double>() << "\n"
              << "resid_pre1 " << resid.sizes() << "\n";
  } catch (const mechlens::Error& e) {
    return std::cerr << e.what() << "\n", 2;
  }
}
