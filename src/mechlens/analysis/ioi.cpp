#include "mechlens/analysis/ioi.h"

#include <map>
#include <random>

#include "mechlens/core/error.h"

namespace mechlens {

const std::vector<std::string>& ioi_templates() {
  // The BABA templates of Wang et al. 2022; the ABBA forms swap the first two names.
  static const std::vector<std::string> t = {
      "Then, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]",
      "Then, [B] and [A] had a lot of fun at the [PLACE]. [B] gave a [OBJECT] to [A]",
      "Then, [B] and [A] were working at the [PLACE]. [B] decided to give a [OBJECT] to [A]",
      "Then, [B] and [A] were thinking about going to the [PLACE]. [B] wanted to give a [OBJECT] to [A]",
      "Then, [B] and [A] had a long argument, and afterwards [B] said to [A]",
      "After [B] and [A] went to the [PLACE], [B] gave a [OBJECT] to [A]",
      "When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give it to [A]",
      "When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give the [OBJECT] to [A]",
      "While [B] and [A] were working at the [PLACE], [B] gave a [OBJECT] to [A]",
      "While [B] and [A] were commuting to the [PLACE], [B] gave a [OBJECT] to [A]",
      "After the lunch, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]",
      "Afterwards, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]",
      "Then, [B] and [A] had a long argument. Afterwards [B] said to [A]",
      "The [PLACE] [B] and [A] went to had a [OBJECT]. [B] gave it to [A]",
      "Friends [B] and [A] found a [OBJECT] at the [PLACE]. [B] gave it to [A]",
  };
  return t;
}

const std::vector<std::string>& ioi_names() {
  static const std::vector<std::string> n = {
      "Michael", "Christopher", "Jessica", "Matthew",  "Ashley",   "Jennifer", "Joshua",   "Amanda",  "Daniel",
      "David",   "James",       "Robert",  "John",     "Joseph",   "Andrew",   "Ryan",     "Brandon", "Jason",
      "Justin",  "Sarah",       "William", "Jonathan", "Stephanie", "Brian",   "Nicole",   "Nicholas", "Anthony",
      "Heather", "Eric",        "Elizabeth", "Adam",   "Megan",    "Melissa",  "Kevin",    "Steven",  "Thomas",
      "Timothy", "Christina",   "Kyle",    "Rachel",   "Laura",    "Lauren",   "Amber",    "Brittany", "Danielle",
      "Richard", "Kimberly",    "Jeffrey", "Amy",      "Crystal",  "Michelle", "Tiffany",  "Jeremy",  "Benjamin",
      "Mark",    "Emily",       "Aaron",   "Charles",  "Rebecca",  "Jacob",    "Stephen",  "Patrick", "Sean",
      "Erin",    "Zachary",     "Jamie",   "Kelly",    "Samantha", "Nathan",   "Sara",     "Dustin",  "Paul",
      "Angela",  "Tyler",       "Scott",   "Katherine", "Andrea",  "Gregory",  "Erica",    "Mary",    "Travis",
      "Lisa",    "Kenneth",     "Bryan",   "Lindsey",  "Kristen",  "Jose",     "Alexander", "Jesse",  "Katie",
      "Lindsay", "Shannon",     "Vanessa", "Courtney", "Christine", "Alicia",  "Cody",     "Allison", "Bradley",
      "Samuel"};
  return n;
}

const std::vector<std::string>& ioi_places() {
  static const std::vector<std::string> p = {"store", "garden", "restaurant", "school",
                                             "hospital", "office", "house", "station"};
  return p;
}

const std::vector<std::string>& ioi_objects() {
  static const std::vector<std::string> o = {"ring", "kiss", "bone", "basketball",
                                             "computer", "necklace", "drink", "snack"};
  return o;
}

namespace {
std::string fill(std::string t, const std::string& a, const std::string& b, const std::string& place,
                 const std::string& object, bool abba) {
  // Template is BABA; ABBA swaps the first occurrence of [B] and [A].
  if (abba) {
    auto pb = t.find("[B]"), pa = t.find("[A]");
    t.replace(pb, 3, "[X]");
    t.replace(pa, 3, "[B]");
    t.replace(t.find("[X]"), 3, "[A]");
  }
  auto sub = [&](const std::string& key, const std::string& v) {
    for (size_t p; (p = t.find(key)) != std::string::npos;) t.replace(p, key.size(), v);
  };
  sub("[A]", a), sub("[B]", b), sub("[PLACE]", place), sub("[OBJECT]", object);
  return t;
}
}  // namespace

std::vector<IOIPrompt> make_ioi_dataset(const Tokenizer& tok, int n, uint64_t seed, bool prepend_bos) {
  if (n < 1 || n > 100000) throw Error("the number of prompts n must be between 1 and 100000");
  std::vector<std::string> names;
  for (const auto& name : ioi_names())
    if (tok.encode(" " + name).size() == 1) names.push_back(name);
  if (names.size() < 3) throw Error("fewer than 3 IOI names are single tokens in this tokenizer");
  std::mt19937_64 rng(seed);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  std::vector<IOIPrompt> out;
  for (int i = 0; i < n; ++i) {
    IOIPrompt p;
    p.order = i % 2 == 0 ? "ABBA" : "BABA";
    p.template_index = static_cast<int>(rng() % ioi_templates().size());
    const std::string& t = ioi_templates()[p.template_index];
    std::string a = pick(names), b;
    do b = pick(names); while (b == a);
    const std::string place = pick(ioi_places()), object = pick(ioi_objects());
    p.io = a, p.s = b;
    // The prompt stops before the final " [A]" (the answer).
    std::string full = fill(t, a, b, place, object, p.order == "ABBA");
    p.text = full.substr(0, full.rfind(" " + a));
    // ABC: the three name slots (first, second, subject repeat) get three other names.
    std::string x, y, z;
    do x = pick(names); while (x == a || x == b);
    do y = pick(names); while (y == a || y == b || y == x);
    do z = pick(names); while (z == a || z == b || z == x || z == y);
    // The template's slots are [B] [A] [B] then the answer [A]; ABC fills the first
    // three with x, y, z and leaves the answer slot (cut off below).
    std::string abc = t;
    auto first = [&](const std::string& key, const std::string& v) { abc.replace(abc.find(key), key.size(), v); };
    first("[B]", x), first("[A]", y), first("[B]", z);
    abc = fill(abc, a, b, place, object, false);
    p.corrupted = abc.substr(0, abc.rfind(" " + a));
    p.tokens = tok.encode(p.text, prepend_bos);
    p.corrupted_tokens = tok.encode(p.corrupted, prepend_bos);
    p.io_token = tok.encode(" " + a)[0];
    p.s_token = tok.encode(" " + b)[0];
    out.push_back(std::move(p));
  }
  return out;
}

IOIResult evaluate_ioi(HookedTransformer& m, const std::vector<IOIPrompt>& prompts) {
  IOIResult r;
  r.logit_diffs.assign(prompts.size(), 0.0);
  r.corrupted_logit_diffs.assign(prompts.size(), 0.0);
  at::NoGradGuard no_grad;
  for (int which = 0; which < 2; ++which) {
    std::map<size_t, std::vector<size_t>> by_len;
    for (size_t i = 0; i < prompts.size(); ++i)
      by_len[(which ? prompts[i].corrupted_tokens : prompts[i].tokens).size()].push_back(i);
    for (auto& [len, idx] : by_len) {
      std::vector<int64_t> flat;
      for (size_t i : idx) {
        const auto& t = which ? prompts[i].corrupted_tokens : prompts[i].tokens;
        flat.insert(flat.end(), t.begin(), t.end());
      }
      at::Tensor toks = at::tensor(flat, at::kLong).view({static_cast<int64_t>(idx.size()), static_cast<int64_t>(len)});
      at::Tensor last = m.forward(toks).select(1, len - 1).to(at::kFloat);
      for (size_t k = 0; k < idx.size(); ++k) {
        const auto& p = prompts[idx[k]];
        double d = (last[k][p.io_token] - last[k][p.s_token]).item<double>();
        (which ? r.corrupted_logit_diffs : r.logit_diffs)[idx[k]] = d;
      }
    }
  }
  double s = 0, sc = 0, acc = 0;
  for (size_t i = 0; i < prompts.size(); ++i)
    s += r.logit_diffs[i], sc += r.corrupted_logit_diffs[i], acc += r.logit_diffs[i] > 0;
  r.mean_logit_diff = s / prompts.size();
  r.mean_corrupted_logit_diff = sc / prompts.size();
  r.accuracy = acc / prompts.size();
  return r;
}

}  // namespace mechlens
