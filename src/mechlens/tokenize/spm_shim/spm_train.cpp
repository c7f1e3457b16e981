// mechlens_spm_train: SentencePiece's own trainer as a small program, linked with
// Debian's libsentencepiece_train and nothing of libtorch (their protobufs clash in one
// process; see spm_shim.cpp). mechlens runs it with spm_train's flags.
#include <sentencepiece_trainer.h>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  std::string args;
  for (int i = 1; i < argc; ++i) args += (i > 1 ? " " : "") + std::string(argv[i]);
  const auto st = sentencepiece::SentencePieceTrainer::Train(args);
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 1;
  }
  return 0;
}
