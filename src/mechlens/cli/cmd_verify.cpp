// mechlens verify --model DIR [--reference-dir GOLDEN] [--json]: the parity report of
// analysis/verify.h. Exit status 0 when every check holds, 1 when one does not, 2 on
// bad input.
#include "mechlens/analysis/verify.h"
#include "mechlens/cli/common.h"

namespace mechlens::cli {

void add_verify(CLI::App& app) {
  auto* sub = app.add_subcommand("verify", "a table of identities that must hold (and differences to a golden folder)");
  struct Opts {
    std::string model;
    VerifyOptions v;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "model folder (HF or mechlens checkpoint)")->required();
  sub->add_option("--reference-dir", o->v.reference_dir,
                  "golden folder (expected.safetensors, tl_cache_*.safetensors) for per-tensor differences");
  sub->add_option("--seq", o->v.seq, "length of the random test prompts")->check(CLI::Range(2, 4096));
  sub->add_flag("--json", o->json, "print one JSON object");
  sub->callback([o] {
    VerifyReport r = verify_model(o->model, o->v);
    if (o->json) std::printf("%s\n", r.to_json().dump().c_str());
    else std::printf("%s%s\n", r.table().c_str(), r.ok() ? "all checks hold" : "SOME CHECKS FAIL");
    if (!r.ok()) std::exit(1);
  });
}

}  // namespace mechlens::cli
