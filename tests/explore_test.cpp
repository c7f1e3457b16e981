// The explorer's HTTP API against the library: every endpoint's numbers equal what
// the model and the index give directly; every bad request gets a 4xx JSON error and
// the server keeps serving; parallel clients get the answers of sequential ones.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "mechlens/analysis/logit_lens.h"
#include "mechlens/core/error.h"
#include "mechlens/explore/explorer.h"
#include "mechlens/explore/web_assets.h"
#include "mechlens/http/server.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/model/weights.h"
#include "mechlens/scope/index_build.h"
#include "mechlens/scope/neuron_index.h"
#include "mechlens/tokenize/tokenizer.h"
#include "mechlens/train/metrics_store.h"
#include "test_util.h"

namespace mechlens {
namespace {

using nlohmann::json;

struct Reply {
  int status = 0;
  std::string body;
  json j() const { return json::parse(body); }
};

// One request over a fresh TCP connection, sent exactly as given.
Reply raw_request(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return {};
  }
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  // Read the headers, then Content-Length bytes (the server may keep the connection open).
  std::string resp;
  char buf[65536];
  size_t want = std::string::npos;
  for (ssize_t n; (want == std::string::npos || resp.size() < want) && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
    resp.append(buf, static_cast<size_t>(n));
    auto end = resp.find("\r\n\r\n");
    if (want == std::string::npos && end != std::string::npos) {
      std::string head = resp.substr(0, end);
      for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      auto cl = head.find("content-length:");
      want = end + 4 + (cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 15)));
    }
  }
  ::close(fd);
  Reply r;
  if (resp.size() > 12) r.status = std::atoi(resp.c_str() + 9);
  auto at = resp.find("\r\n\r\n");
  if (at != std::string::npos) r.body = resp.substr(at + 4);
  return r;
}

Reply get(int port, const std::string& target) {
  return raw_request(port, "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}
Reply post(int port, const std::string& target, const std::string& body) {
  return raw_request(port, "POST " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
}

std::string temp_dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "/mechlens_explore_" + name + "_" + std::to_string(::getpid());
  std::system(("rm -rf '" + d + "' && mkdir -p '" + d + "'").c_str());
  return d;
}

ModelConfig tiny_gpt2_vocab() {  // GPT-2's vocabulary, so the embedded tokenizer applies
  ModelConfig c;
  c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.d_head = 8, c.d_mlp = 64, c.d_vocab = 50257, c.n_ctx = 64;
  c.act_fn = ActFn::Gelu, c.model_name = "explore-test";
  return c;
}

class ExploreApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = temp_dir("api");
    model_dir_ = dir_ + "/model";
    ModelConfig c = tiny_gpt2_vocab();
    {
      HookedTransformer m(c, random_state_dict(c, 11));
      save_checkpoint(m, model_dir_);
    }
    model_ = load_model(model_dir_);
    at::manual_seed(2);
    at::Tensor docs = at::randint(1000, {20, 16}, at::kLong);
    ScopeBuildOptions o;
    o.top_k = 5, o.progress = false;
    build_neuron_index(*model_, docs, vocab_strings(gpt2_tokenizer().get(), 50257), {{"kind", "tokens"}, {"name", "random"}}, model_dir_, dir_ + "/index.db", o);
    // A real training-lab run folder: a few steps of the induction recipe.
    const std::string cmd = std::string("MECHLENS_THREADS=1 '") + MECHLENS_BINARY + "' train induction --steps 30 --checkpoints 3 --out '" +
                            dir_ + "/runs/ind' > /dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    ExplorerOptions eo;
    eo.model_dir = model_dir_, eo.index_path = dir_ + "/index.db", eo.runs_dir = dir_ + "/runs";
    eo.max_tokens = 48;
    explorer_ = new Explorer(eo);
    server_ = new ExplorerServer(*explorer_, "127.0.0.1", 0, eo.max_body);
    thread_ = new std::thread([] { server_->run(); });
    for (int i = 0; i < 200 && !server_->running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    port_ = server_->port();
  }
  static void TearDownTestSuite() {
    server_->stop();
    thread_->join();
    delete thread_;
    delete server_;
    delete explorer_;
    model_.reset();
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  static std::string dir_, model_dir_;
  static std::unique_ptr<HookedTransformer> model_;
  static Explorer* explorer_;
  static ExplorerServer* server_;
  static std::thread* thread_;
  static int port_;
};
std::string ExploreApi::dir_, ExploreApi::model_dir_;
std::unique_ptr<HookedTransformer> ExploreApi::model_;
Explorer* ExploreApi::explorer_ = nullptr;
ExplorerServer* ExploreApi::server_ = nullptr;
std::thread* ExploreApi::thread_ = nullptr;
int ExploreApi::port_ = 0;

TEST_F(ExploreApi, ModelAndModels) {
  Reply r = get(port_, "/api/model");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.j();
  EXPECT_EQ(j["n_layers"], 2);
  EXPECT_EQ(j["d_model"], 32);
  EXPECT_EQ(j["n_heads"], 4);
  EXPECT_EQ(j["d_mlp"], 64);
  EXPECT_EQ(j["d_vocab"], 50257);
  EXPECT_EQ(j["act_fn"], "gelu");
  EXPECT_EQ(j["has_index"], true);
  EXPECT_EQ(j["hook_names"].size(), model_->hook_names().size());
  json models = get(port_, "/api/models").j();
  ASSERT_GE(models.size(), 4u);  // the model, then the run's checkpoints
  EXPECT_EQ(models[0]["id"], "model");
  EXPECT_EQ(models[1]["id"], "ind@0");
  json ck = get(port_, "/api/model?model=ind@30").j();
  EXPECT_EQ(ck["n_layers"], 2);
  EXPECT_EQ(ck["attn_only"], true);
  EXPECT_EQ(ck["step"], 30);
}

TEST_F(ExploreApi, NeuronEqualsIndex) {
  NeuronIndex idx(dir_ + "/index.db");
  for (auto [l, n] : {std::pair<int, int>{0, 0}, {1, 63}, {1, 17}}) {
    Reply r = get(port_, "/api/neuron/" + std::to_string(l) + "/" + std::to_string(n));
    ASSERT_EQ(r.status, 200) << r.body;
    json j = r.j(), want = neuron_json(idx.neuron(l, n), idx);
    EXPECT_EQ(j, json::parse(want.dump(-1, ' ', false, json::error_handler_t::replace)));
    // Examples sorted by activation, descending, with the activation at pos.
    for (size_t i = 0; i + 1 < j["examples"].size(); ++i) EXPECT_GE(j["examples"][i]["act"], j["examples"][i + 1]["act"]);
    for (const auto& e : j["examples"]) EXPECT_EQ(e["acts"][e["pos"].get<int>()].get<float>(), e["act"].get<float>());
  }
}

TEST_F(ExploreApi, ProbeEqualsCache) {
  std::vector<int64_t> ids = {50256, 464, 3797, 3332, 319, 262, 2603, 13};
  Reply r = post(port_, "/api/probe", json{{"tokens", ids}, {"layer", 1}, {"neuron", 9}, {"position", 3}, {"top", 5}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.j();
  at::NoGradGuard ng;
  auto [logits, cache] = model_->run_with_cache(at::tensor(ids).view({1, -1}), names_in({"blocks.1.mlp.hook_post"}));
  at::Tensor hp = cache.at("blocks.1.mlp.hook_post")[0];
  ASSERT_EQ(j["acts"].size(), ids.size());
  for (size_t p = 0; p < ids.size(); ++p) EXPECT_NEAR(j["acts"][p].get<double>(), hp[p][9].item<double>(), 1e-6);
  auto [v, i] = hp[3].topk(5);
  for (int k = 0; k < 5; ++k) EXPECT_EQ(j["top_neurons"][k]["neuron"], i[k].item<int64_t>());
  // Text is tokenized with BOS first, as TransformerLens does.
  json t = post(port_, "/api/probe", R"({"text": "The cat", "layer": 0, "neuron": 1})").j();
  EXPECT_EQ(t["ids"], json({50256, 464, 3797}));
  EXPECT_EQ(t["tokens"], json({"<|endoftext|>", "The", " cat"}));
}

TEST_F(ExploreApi, AttentionEqualsCache) {
  std::vector<int64_t> ids = {50256, 464, 3797, 464, 3797, 13};
  Reply r = post(port_, "/api/attention", json{{"tokens", ids}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.j();
  at::NoGradGuard ng;
  auto [logits, cache] = model_->run_with_cache(at::tensor(ids).view({1, -1}), names_matching("hook_pattern$"));
  ASSERT_EQ(j["patterns"].size(), 2u);
  for (int l = 0; l < 2; ++l) {
    at::Tensor p = cache.at("blocks." + std::to_string(l) + ".attn.hook_pattern")[0];
    ASSERT_EQ(j["patterns"][l].size(), 4u);
    for (int h = 0; h < 4; ++h)
      for (size_t q = 0; q < ids.size(); ++q)
        for (size_t k = 0; k < ids.size(); ++k)
          EXPECT_NEAR(j["patterns"][l][h][q][k].get<double>(), p[h][q][k].item<double>(), 1e-6);
  }
  for (const char* s : {"previous_token", "duplicate_token", "induction", "induction_random"}) {
    ASSERT_EQ(j["head_scores"][s].size(), 2u) << s;
    ASSERT_EQ(j["head_scores"][s][0].size(), 4u) << s;
  }
}

TEST_F(ExploreApi, LensEqualsLibrary) {
  std::vector<int64_t> ids = {50256, 464, 3797, 3332};
  Reply r = post(port_, "/api/lens", json{{"tokens", ids}, {"top_k", 3}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.j();
  LogitLensTop want = logit_lens_top(*model_, at::tensor(ids).view({1, -1}), 3);
  ASSERT_EQ(j["labels"], json(want.labels));
  for (size_t c = 0; c < want.labels.size(); ++c)
    for (size_t p = 0; p < ids.size(); ++p)
      for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(j["top"][c][p][k]["id"], want.ids[c][0][p][k].item<int64_t>());
        EXPECT_NEAR(j["top"][c][p][k]["logprob"].get<double>(), want.log_probs[c][0][p][k].item<double>(), 1e-5);
      }
}

TEST_F(ExploreApi, RunsEqualMetricsStore) {
  json runs = get(port_, "/api/runs").j();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["id"], "ind");
  EXPECT_EQ(runs[0]["recipe"], "induction");
  Reply r = get(port_, "/api/runs/ind");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.j();
  MetricsStore store(dir_ + "/runs/ind/metrics.sqlite", true);
  auto loss = store.series("loss");
  ASSERT_EQ(j["metrics"]["loss"].size(), loss.size());
  for (size_t i = 0; i < loss.size(); ++i) {
    EXPECT_EQ(j["metrics"]["loss"][i][0], loss[i].first);
    EXPECT_DOUBLE_EQ(j["metrics"]["loss"][i][1].get<double>(), loss[i].second);
  }
  EXPECT_EQ(j["checkpoints"].back()["model"], "ind@30");
  EXPECT_EQ(get(port_, "/api/runs/nope").status, 404);
}

TEST_F(ExploreApi, PagesAreServed) {
  for (const std::string p : {"/", "/neuron.html", "/probe.html", "/attention.html", "/lens.html", "/runs.html",
                              "/problems.html", "/glossary.html", "/app.js", "/style.css", "/glossary.json", "/uPlot.iife.min.js"}) {
    Reply r = get(port_, p);
    EXPECT_EQ(r.status, 200) << p;
    EXPECT_GT(r.body.size(), 100u) << p;
  }
  json g = json::parse(std::string(find_web_asset("glossary.json")->begin, find_web_asset("glossary.json")->end));
  EXPECT_GE(g.size(), 20u);
}

TEST_F(ExploreApi, BadRequestsAre4xxAndTheServerKeepsServing) {
  const std::string big_text(5000, 'a');
  std::vector<int64_t> many(49, 464);
  struct Case {
    std::string what;
    Reply r;
    int status;
    std::string needle;
  };
  std::vector<Case> cases = {
      {"non-integer layer", get(port_, "/api/neuron/x/0"), 400, "layer"},
      {"negative neuron", get(port_, "/api/neuron/0/-1"), 400, "neuron"},
      {"layer out of range", get(port_, "/api/neuron/2/0"), 404, "layer 2"},
      {"neuron out of range", get(port_, "/api/neuron/0/64"), 404, "neuron 64"},
      {"huge id", get(port_, "/api/neuron/0/99999999999999999999"), 400, "neuron"},
      {"unknown route", get(port_, "/api/nothing"), 404, "unknown API route"},
      {"unknown page", get(port_, "/secret.txt"), 404, "no page"},
      {"unknown model", get(port_, "/api/model?model=../../etc"), 404, "unknown model"},
      {"dot segments", raw_request(port_, "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400, "dot segments"},
      {"encoded slash", get(port_, "/api/neuron/0%2F1/2"), 400, "encoded"},
      {"encoded dots", get(port_, "/%2e%2e/%2e%2e/etc/passwd"), 400, "encoded"},
      {"wrong method", post(port_, "/api/model", "{}"), 405, "GET"},
      {"GET a POST route", get(port_, "/api/probe"), 405, "POST"},
      {"malformed JSON", post(port_, "/api/probe", "{\"text\": "), 400, "malformed JSON"},
      {"JSON not an object", post(port_, "/api/probe", "[1, 2]"), 400, "object"},
      {"missing layer", post(port_, "/api/probe", R"({"text": "hi", "neuron": 1})"), 400, "layer"},
      {"string layer", post(port_, "/api/probe", R"({"text": "hi", "layer": "0", "neuron": 1})"), 400, "layer"},
      {"probe layer out of range", post(port_, "/api/probe", R"({"text": "hi", "layer": 5, "neuron": 1})"), 400, "layer 5"},
      {"probe neuron out of range", post(port_, "/api/probe", R"({"text": "hi", "layer": 0, "neuron": 640})"), 400, "neuron 640"},
      {"position out of range", post(port_, "/api/probe", R"({"text": "hi", "layer": 0, "position": 99})"), 400, "position 99"},
      {"text and tokens", post(port_, "/api/lens", R"({"text": "hi", "tokens": [1]})"), 400, "exactly one"},
      {"neither", post(port_, "/api/attention", "{}"), 400, "exactly one"},
      {"empty tokens", post(port_, "/api/attention", R"({"tokens": []})"), 400, "empty"},
      {"token out of range", post(port_, "/api/attention", R"({"tokens": [1, 50257]})"), 400, "50257"},
      {"negative token", post(port_, "/api/attention", R"({"tokens": [-3]})"), 400, "-3"},
      {"float token", post(port_, "/api/attention", R"({"tokens": [1.5]})"), 400, "integers"},
      {"oversized text", post(port_, "/api/lens", json{{"text", big_text}}.dump()), 413, "5000 bytes"},
      {"too many tokens", post(port_, "/api/lens", json{{"tokens", many}}.dump()), 413, "49 tokens"},
      {"oversized body", post(port_, "/api/lens", std::string(100000, ' ')), 413, "too large"},
      {"bad top_k", post(port_, "/api/lens", R"({"text": "hi", "top_k": 0})"), 400, "top_k"},
      {"no neurons in attention-only checkpoint", post(port_, "/api/probe", R"({"model": "ind@30", "tokens": [1], "layer": 0, "neuron": 0})"), 400, "attention-only"},
      {"no index for checkpoint", get(port_, "/api/neuron/0/0?model=ind@30"), 404, "no neuron index"},
      {"garbage request line", raw_request(port_, "NONSENSE\r\n\r\n"), 400, ""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.r.status, c.status) << c.what << ": " << c.r.body;
    json j;
    ASSERT_NO_THROW(j = c.r.j()) << c.what << ": not JSON: " << c.r.body;
    ASSERT_TRUE(j.contains("error")) << c.what;
    EXPECT_NE(j["error"].get<std::string>().find(c.needle), std::string::npos) << c.what << ": " << j["error"];
  }
  EXPECT_EQ(get(port_, "/api/model").status, 200);  // still serving
}

TEST_F(ExploreApi, ParallelClientsGetSequentialAnswers) {
  std::vector<std::pair<std::string, std::string>> reqs;  // (target, body or "" for GET)
  for (int i = 0; i < 6; ++i) {
    std::vector<int64_t> ids = {50256, 100 + i, 200 + i, 300 + i, 100 + i, 200 + i};
    reqs.push_back({"/api/probe", json{{"tokens", ids}, {"layer", i % 2}, {"neuron", i}, {"position", 2}}.dump()});
    reqs.push_back({"/api/attention", json{{"tokens", ids}}.dump()});
    reqs.push_back({"/api/lens", json{{"tokens", ids}}.dump()});
    reqs.push_back({"/api/neuron/" + std::to_string(i % 2) + "/" + std::to_string(i), ""});
    reqs.push_back({"/api/attention", json{{"tokens", std::vector<int64_t>{0, 5 + i, 9, 5 + i, 9}}, {"model", "ind@15"}}.dump()});
  }
  auto send = [&](size_t i) { return reqs[i].second.empty() ? get(port_, reqs[i].first) : post(port_, reqs[i].first, reqs[i].second); };
  std::vector<std::string> want;
  for (size_t i = 0; i < reqs.size(); ++i) {
    Reply r = send(i);
    ASSERT_EQ(r.status, 200) << reqs[i].first << " " << r.body;
    want.push_back(r.body);
  }
  std::atomic<int> mismatches{0}, done{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&, t] {
      for (size_t k = 0; k < reqs.size(); ++k) {
        const size_t i = (k * 7 + t * 5) % reqs.size();
        if (send(i).body != want[i]) ++mismatches;
        ++done;
      }
    });
  for (auto& c : clients) c.join();
  EXPECT_EQ(done.load(), 8 * static_cast<int>(reqs.size()));
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(ExploreStartup, BadIndexOrModelIsAnError) {
  const std::string d = temp_dir("startup");
  ModelConfig c = tiny_gpt2_vocab();
  {
    HookedTransformer a(c, random_state_dict(c, 1));
    save_checkpoint(a, d + "/a");
    HookedTransformer b(c, random_state_dict(c, 2));
    save_checkpoint(b, d + "/b");
    ScopeBuildOptions o;
    o.progress = false;
    build_neuron_index(b, at::randint(100, {4, 8}, at::kLong), std::vector<std::string>(50257, "x"), {{"kind", "tokens"}}, d + "/b",
                       d + "/b.db", o);
  }
  ExplorerOptions o;
  o.model_dir = d + "/a", o.index_path = d + "/b.db";
  try {
    Explorer e(o);
    ADD_FAILURE() << "an index of another model was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
  }
  o.index_path = d + "/missing.db";
  EXPECT_THROW(Explorer{o}, Error);
  write_file_atomic(d + "/junk.db", std::string(4096, 'j'));
  o.index_path = d + "/junk.db";
  EXPECT_THROW(Explorer{o}, Error);
  // The index alone names its model.
  ExplorerOptions only;
  only.index_path = d + "/b.db";
  Explorer e(only);
  EXPECT_EQ(e.model_ids(), std::vector<std::string>{"model"});
  std::system(("rm -rf '" + d + "'").c_str());
}

TEST(ExploreHandler, SmallVocabularyAndPatternBudget) {
  // Without HTTP: Explorer::handle on a 1-layer, 1-head model with 20 tokens and a long context.
  const std::string d = temp_dir("small");
  ModelConfig c;
  c.n_layers = 1, c.d_model = 8, c.n_heads = 1, c.d_head = 8, c.d_mlp = 16, c.d_vocab = 20, c.n_ctx = 4096;
  c.act_fn = ActFn::Gelu, c.model_name = "small";
  {
    HookedTransformer m(c, random_state_dict(c, 5));
    save_checkpoint(m, d + "/m");
  }
  ExplorerOptions o;
  o.model_dir = d + "/m", o.max_tokens = 4096;
  Explorer e(o);
  auto post_json = [&](const std::string& path, const json& body) {
    HttpRequest r;
    r.method = "POST", r.path = path, r.target = path, r.body = body.dump();
    return e.handle(r);
  };
  // top_k above the vocabulary gives the whole vocabulary, not garbage.
  HttpReply lens = post_json("/api/lens", {{"tokens", {1, 2, 3}}, {"top_k", 50}});
  ASSERT_EQ(lens.status, 200) << lens.body;
  json j = json::parse(lens.body);
  EXPECT_EQ(j["top"][0][0].size(), 20u);
  for (const auto& t : j["top"][0][0]) EXPECT_LT(t["id"].get<int64_t>(), 20);
  // Attention patterns of 2,100 tokens (4.4 M numbers) are refused; 1,000 tokens are not.
  std::vector<int64_t> big(2100, 3), fine(1000, 3);
  HttpReply a = post_json("/api/attention", {{"tokens", big}});
  EXPECT_EQ(a.status, 413) << a.body;
  EXPECT_NE(a.body.find("shorter prompt"), std::string::npos);
  EXPECT_EQ(post_json("/api/attention", {{"tokens", fine}}).status, 200);
  // "neuron": null is absent, not neuron 0.
  HttpReply p = post_json("/api/probe", {{"tokens", {1, 2}}, {"layer", 0}, {"neuron", nullptr}});
  EXPECT_EQ(p.status, 400);
  std::system(("rm -rf '" + d + "'").c_str());
}

}  // namespace
}  // namespace mechlens
