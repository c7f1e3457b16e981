// A thin C interface over Debian's libsentencepiece, built as its own shared object.
//
// Why a separate object: Debian's libsentencepiece carries its own copy of protobuf
// 3.14 while libtorch's dependencies load the system protobuf 3.21. Linked into one
// process the two clash during static initialisation (a crash before main). mechlens
// loads this shim with dlopen(RTLD_LOCAL | RTLD_DEEPBIND), so sentencepiece binds to
// its own protobuf and the rest of the process never sees it.
#include <sentencepiece_processor.h>

#include <cstring>
#include <string>
#include <vector>

namespace {
void copy_out(const std::string& s, char* out, size_t cap) {
  if (!out || cap == 0) return;
  size_t n = std::min(cap - 1, s.size());
  std::memcpy(out, s.data(), n);
  out[n] = 0;
}
}  // namespace

extern "C" {

void* mlspm_load(const char* data, size_t n, char* err, size_t errlen) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  auto st = sp->LoadFromSerializedProto(std::string(data, n));
  if (!st.ok()) {
    copy_out(st.ToString(), err, errlen);
    delete sp;
    return nullptr;
  }
  return sp;
}

void mlspm_free(void* h) { delete static_cast<sentencepiece::SentencePieceProcessor*>(h); }

// Writes up to cap ids; returns how many there are (call again with more room if
// larger than cap), or -1 on error.
long mlspm_encode(void* h, const char* text, size_t n, int* out, size_t cap) {
  std::vector<int> ids;
  auto st = static_cast<sentencepiece::SentencePieceProcessor*>(h)->Encode(std::string(text, n), &ids);
  if (!st.ok()) return -1;
  for (size_t i = 0; i < ids.size() && i < cap; ++i) out[i] = ids[i];
  return static_cast<long>(ids.size());
}

int mlspm_piece_size(void* h) { return static_cast<sentencepiece::SentencePieceProcessor*>(h)->GetPieceSize(); }

// Returns the piece's byte length; copies it (NUL-terminated, truncated) into out.
long mlspm_id_to_piece(void* h, int id, char* out, size_t cap) {
  std::string p = static_cast<sentencepiece::SentencePieceProcessor*>(h)->IdToPiece(id);
  copy_out(p, out, cap);
  return static_cast<long>(p.size());
}

int mlspm_piece_to_id(void* h, const char* piece, size_t n) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(h)->PieceToId(std::string(piece, n));
}

long mlspm_decode(void* h, const int* ids, size_t n, char* out, size_t cap) {
  std::string s;
  auto st = static_cast<sentencepiece::SentencePieceProcessor*>(h)->Decode(std::vector<int>(ids, ids + n), &s);
  if (!st.ok()) return -1;
  copy_out(s, out, cap);
  return static_cast<long>(s.size());
}

// kind: 0 bos, 1 eos, 2 unk, 3 pad
int mlspm_special_id(void* h, int kind) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  switch (kind) {
    case 0: return sp->bos_id();
    case 1: return sp->eos_id();
    case 2: return sp->unk_id();
    default: return sp->pad_id();
  }
}

// 0 normal, 1 control, 2 unknown, 3 byte, 4 unused
int mlspm_piece_type(void* h, int id) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  if (sp->IsControl(id)) return 1;
  if (sp->IsUnknown(id)) return 2;
  if (sp->IsByte(id)) return 3;
  if (sp->IsUnused(id)) return 4;
  return 0;
}

}  // extern "C"
