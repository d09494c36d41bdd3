// XFRM netlink message layout (see codec.h).
#include "codec.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace xfrm {

void Message::putAttr(uint16_t attrType, const void* data, size_t len) {
  size_t off = body.size();
  size_t total = NLA_HDRLEN + len;
  body.resize(off + align(total), 0);
  auto* nla = reinterpret_cast<struct nlattr*>(body.data() + off);
  nla->nla_len = static_cast<uint16_t>(total);
  nla->nla_type = attrType;
  if (len) std::memcpy(body.data() + off + NLA_HDRLEN, data, len);
}

namespace {

// ---------------------------------------------------------------- input ---

class Reader {
 public:
  Reader(Napi::Env env, Napi::Object obj, std::string path)
      : env_(env), obj_(obj), path_(std::move(path)) {}

  bool has(const char* name) const {
    Napi::Value v = obj_.Get(name);
    return !v.IsUndefined() && !v.IsNull();
  }

  [[noreturn]] void fail(const char* name, const std::string& what) const {
    throw Napi::TypeError::New(env_, field(name) + ": " + what);
  }

  std::string field(const char* name) const { return path_.empty() ? name : path_ + "." + name; }

  uint64_t u64(const char* name, uint64_t dflt, uint64_t max = UINT64_MAX) const {
    Napi::Value v = obj_.Get(name);
    if (v.IsUndefined() || v.IsNull()) return dflt;
    if (v.IsBigInt()) {
      bool lossless = true;
      uint64_t r = v.As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless || r > max) fail(name, "out of range");
      return r;
    }
    if (!v.IsNumber()) fail(name, "must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d != static_cast<double>(static_cast<uint64_t>(d)) || d > static_cast<double>(max))
      fail(name, "must be an integer in 0.." + std::to_string(max));
    return static_cast<uint64_t>(d);
  }
  uint32_t u32(const char* name, uint32_t dflt) const { return static_cast<uint32_t>(u64(name, dflt, UINT32_MAX)); }
  uint16_t u16(const char* name, uint16_t dflt) const { return static_cast<uint16_t>(u64(name, dflt, UINT16_MAX)); }
  uint8_t u8(const char* name, uint8_t dflt) const { return static_cast<uint8_t>(u64(name, dflt, UINT8_MAX)); }

  bool boolean(const char* name) const {
    Napi::Value v = obj_.Get(name);
    if (v.IsUndefined() || v.IsNull()) return false;
    if (!v.IsBoolean()) fail(name, "must be a boolean");
    return v.As<Napi::Boolean>().Value();
  }

  std::string str(const char* name) const {
    Napi::Value v = obj_.Get(name);
    if (!v.IsString()) fail(name, "must be a string");
    return v.As<Napi::String>().Utf8Value();
  }

  Napi::Buffer<uint8_t> buffer(const char* name) const {
    Napi::Value v = obj_.Get(name);
    if (!v.IsBuffer()) fail(name, "must be a Buffer");
    return v.As<Napi::Buffer<uint8_t>>();
  }

  Reader sub(const char* name) const {
    Napi::Value v = obj_.Get(name);
    if (!v.IsObject()) fail(name, "must be an object");
    return Reader(env_, v.As<Napi::Object>(), field(name));
  }

  Napi::Array array(const char* name) const {
    Napi::Value v = obj_.Get(name);
    if (!v.IsArray()) fail(name, "must be an array");
    return v.As<Napi::Array>();
  }

  Reader element(Napi::Array a, uint32_t i, const char* name) const {
    Napi::Value v = a.Get(i);
    std::string p = field(name) + "[" + std::to_string(i) + "]";
    if (!v.IsObject()) throw Napi::TypeError::New(env_, p + ": must be an object");
    return Reader(env_, v.As<Napi::Object>(), p);
  }

  uint16_t family(const char* name) const {
    uint32_t f = u32(name, 0);
    if (f != AF_INET && f != AF_INET6) fail(name, "must be AF_INET (2) or AF_INET6 (10)");
    return static_cast<uint16_t>(f);
  }

  void address(const char* name, uint16_t fam, xfrm_address_t* out) const {
    std::string s = str(name);
    std::memset(out, 0, sizeof(*out));
    int r = fam == AF_INET ? inet_pton(AF_INET, s.c_str(), &out->a4) : inet_pton(AF_INET6, s.c_str(), &out->in6);
    if (r != 1) fail(name, "'" + s + "' is not an " + (fam == AF_INET ? "IPv4" : "IPv6") + " address");
  }

  // Optional address: empty (all zero) when absent.
  void optAddress(const char* name, uint16_t fam, xfrm_address_t* out) const {
    if (has(name)) address(name, fam, out);
    else std::memset(out, 0, sizeof(*out));
  }

  Napi::Env env() const { return env_; }

 private:
  Napi::Env env_;
  Napi::Object obj_;
  std::string path_;
};

uint64_t limit(const Reader& r, const char* name) {
  uint64_t v = r.u64(name, 0);
  return v == 0 ? XFRM_INF : v;  // 0 = no limit
}

void readSelector(const Reader& r, xfrm_selector* sel) {
  std::memset(sel, 0, sizeof(*sel));
  sel->family = r.family("family");
  r.optAddress("src", sel->family, &sel->saddr);
  r.optAddress("dst", sel->family, &sel->daddr);
  unsigned maxPrefix = sel->family == AF_INET ? 32 : 128;
  sel->prefixlen_s = static_cast<uint8_t>(r.u64("prefixSrc", 0, maxPrefix));
  sel->prefixlen_d = static_cast<uint8_t>(r.u64("prefixDst", 0, maxPrefix));
  sel->proto = r.u8("proto", 0);
  sel->sport = htons(r.u16("sport", 0));
  sel->sport_mask = htons(r.u16("sportMask", 0));
  sel->dport = htons(r.u16("dport", 0));
  sel->dport_mask = htons(r.u16("dportMask", 0));
  sel->ifindex = static_cast<int>(r.u32("ifindex", 0));
}

void readLifetime(const Reader& r, xfrm_lifetime_cfg* l) {
  l->soft_byte_limit = limit(r, "softBytes");
  l->hard_byte_limit = limit(r, "hardBytes");
  l->soft_packet_limit = limit(r, "softPackets");
  l->hard_packet_limit = limit(r, "hardPackets");
  l->soft_add_expires_seconds = r.u64("softAddSeconds", 0);
  l->hard_add_expires_seconds = r.u64("hardAddSeconds", 0);
  l->soft_use_expires_seconds = r.u64("softUseSeconds", 0);
  l->hard_use_expires_seconds = r.u64("hardUseSeconds", 0);
}

void infiniteLifetime(xfrm_lifetime_cfg* l) {
  l->soft_byte_limit = l->hard_byte_limit = XFRM_INF;
  l->soft_packet_limit = l->hard_packet_limit = XFRM_INF;
}

void putMarkAndIfId(const Reader& r, Message& m) {
  if (r.has("mark")) {
    Reader mk = r.sub("mark");
    xfrm_mark mark{mk.u32("value", 0), mk.u32("mask", 0xffffffffu)};
    m.putAttr(XFRMA_MARK, &mark, sizeof(mark));
  }
  if (r.has("ifId")) {
    uint32_t ifId = r.u32("ifId", 0);
    if (ifId) m.putAttr(XFRMA_IF_ID, &ifId, sizeof(ifId));
  }
}

void putAlgo(const Reader& r, Message& m, uint16_t attr, const char* name, int extra /*0 none,1 trunc,2 icv*/) {
  Reader a = r.sub(name);
  std::string algName = a.str("name");
  if (algName.empty() || algName.size() >= 64) a.fail("name", "must be 1..63 characters");
  Napi::Buffer<uint8_t> key = a.has("key") ? a.buffer("key") : Napi::Buffer<uint8_t>::New(r.env(), 0);
  if (key.Length() > 1024) a.fail("key", "too long");
  size_t head = extra ? sizeof(xfrm_algo_aead) : sizeof(xfrm_algo);
  std::vector<uint8_t> buf(head + key.Length(), 0);
  std::memcpy(buf.data(), algName.data(), algName.size());
  auto* base = reinterpret_cast<xfrm_algo*>(buf.data());
  base->alg_key_len = static_cast<unsigned>(key.Length() * 8);
  if (extra == 1) reinterpret_cast<xfrm_algo_auth*>(buf.data())->alg_trunc_len = a.u32("truncBits", 0);
  if (extra == 2) reinterpret_cast<xfrm_algo_aead*>(buf.data())->alg_icv_len = a.u32("icvBits", 128);
  if (key.Length()) std::memcpy(buf.data() + head, key.Data(), key.Length());
  m.putAttr(attr, buf.data(), buf.size());
}

// The fixed part of an SA plus its attributes (NEWSA/UPDSA).
void encodeSa(const Reader& r, Message& m) {
  auto* p = m.reserveStruct<xfrm_usersa_info>();
  p->family = r.family("family");
  r.address("dst", p->family, &p->id.daddr);
  r.address("src", p->family, &p->saddr);
  p->id.spi = htonl(r.u32("spi", 0));
  p->id.proto = r.u8("proto", IPPROTO_ESP);
  p->mode = r.u8("mode", XFRM_MODE_TRANSPORT);
  p->reqid = r.u32("reqid", 0);
  p->flags = r.u8("flags", 0);
  if (r.has("selector")) readSelector(r.sub("selector"), &p->sel);
  // A tunnel SA flagged AF_UNSPEC carries either inner family: its selector family must stay
  // unspecified, or the kernel binds it to the outer family.
  else p->sel.family = (p->flags & XFRM_STATE_AF_UNSPEC) ? AF_UNSPEC : p->family;
  if (r.has("lifetime")) readLifetime(r.sub("lifetime"), &p->lft);
  else infiniteLifetime(&p->lft);

  uint32_t window = r.u32("replayWindow", 0);
  bool esn = r.boolean("esn");
  // A window beyond the legacy 32-bit bitmap, or ESN, needs XFRMA_REPLAY_ESN_VAL
  // and the legacy u8 field must then be zero (the kernel rejects both).
  if (esn || window > 32) {
    if (window > XFRMA_REPLAY_ESN_MAX) r.fail("replayWindow", "exceeds 4096");
    uint32_t bmpLen = (window + 31) / 32;
    std::vector<uint8_t> buf(sizeof(xfrm_replay_state_esn) + bmpLen * 4, 0);
    auto* rs = reinterpret_cast<xfrm_replay_state_esn*>(buf.data());
    rs->bmp_len = bmpLen;
    rs->replay_window = window;
    m.putAttr(XFRMA_REPLAY_ESN_VAL, buf.data(), buf.size());
    if (esn) {
      // reserveStruct pointer may have moved: re-derive
      reinterpret_cast<xfrm_usersa_info*>(m.body.data())->flags |= XFRM_STATE_ESN;
    }
  } else {
    p->replay_window = static_cast<uint8_t>(window);
  }
  if (r.has("aead")) putAlgo(r, m, XFRMA_ALG_AEAD, "aead", 2);
  if (r.has("crypt")) putAlgo(r, m, XFRMA_ALG_CRYPT, "crypt", 0);
  if (r.has("auth")) putAlgo(r, m, XFRMA_ALG_AUTH_TRUNC, "auth", 1);
  if (r.has("comp")) putAlgo(r, m, XFRMA_ALG_COMP, "comp", 0);
  if (r.has("encap")) {
    Reader e = r.sub("encap");
    xfrm_encap_tmpl t{};
    t.encap_type = e.u16("type", 2 /* UDP_ENCAP_ESPINUDP */);
    t.encap_sport = htons(e.u16("sport", 4500));
    t.encap_dport = htons(e.u16("dport", 4500));
    uint16_t fam = reinterpret_cast<xfrm_usersa_info*>(m.body.data())->family;
    e.optAddress("oa", fam, &t.encap_oa);
    m.putAttr(XFRMA_ENCAP, &t, sizeof(t));
  }
  if (r.has("extraFlags")) {
    uint32_t x = r.u32("extraFlags", 0);
    m.putAttr(XFRMA_SA_EXTRA_FLAGS, &x, sizeof(x));
  }
  if (r.has("tfcPad")) {
    uint32_t x = r.u32("tfcPad", 0);
    m.putAttr(XFRMA_TFCPAD, &x, sizeof(x));
  }
  if (r.has("setMark")) {
    Reader sm = r.sub("setMark");
    uint32_t v = sm.u32("value", 0), mk = sm.u32("mask", 0xffffffffu);
    m.putAttr(XFRMA_SET_MARK, &v, sizeof(v));
    m.putAttr(XFRMA_SET_MARK_MASK, &mk, sizeof(mk));
  }
  putMarkAndIfId(r, m);
}

void encodeSaId(const Reader& r, Message& m) {
  auto* id = m.reserveStruct<xfrm_usersa_id>();
  id->family = r.family("family");
  r.address("dst", id->family, &id->daddr);
  id->spi = htonl(r.u32("spi", 0));
  id->proto = r.u8("proto", IPPROTO_ESP);
  if (r.has("src")) {
    xfrm_address_t src;
    r.address("src", id->family, &src);
    m.putAttr(XFRMA_SRCADDR, &src, sizeof(src));
  }
  putMarkAndIfId(r, m);
}

void encodeAllocSpi(const Reader& r, Message& m) {
  auto* u = m.reserveStruct<xfrm_userspi_info>();
  u->info.family = r.family("family");
  r.address("dst", u->info.family, &u->info.id.daddr);
  r.address("src", u->info.family, &u->info.saddr);
  u->info.id.proto = r.u8("proto", IPPROTO_ESP);
  u->info.mode = r.u8("mode", XFRM_MODE_TRANSPORT);
  u->info.reqid = r.u32("reqid", 0);
  u->info.sel.family = u->info.family;
  infiniteLifetime(&u->info.lft);
  u->min = r.u32("min", 0x100);
  u->max = r.u32("max", 0xffffffffu);
  if (u->min > u->max) r.fail("min", "must not exceed max");
  putMarkAndIfId(r, m);
}

void encodePolicy(const Reader& r, Message& m) {
  auto* p = m.reserveStruct<xfrm_userpolicy_info>();
  readSelector(r.sub("selector"), &p->sel);
  if (r.has("lifetime")) readLifetime(r.sub("lifetime"), &p->lft);
  else infiniteLifetime(&p->lft);
  p->priority = r.u32("priority", 0);
  p->index = r.u32("index", 0);
  p->dir = static_cast<uint8_t>(r.u64("dir", 0, XFRM_POLICY_FWD));
  p->action = static_cast<uint8_t>(r.u64("action", XFRM_POLICY_ALLOW, XFRM_POLICY_BLOCK));
  p->flags = r.u8("flags", 0);
  p->share = r.u8("share", 0);
  uint16_t selFamily = p->sel.family;
  if (r.has("templates")) {
    Napi::Array a = r.array("templates");
    if (a.Length() > 6 /* XFRM_MAX_DEPTH */) r.fail("templates", "at most 6");
    std::vector<xfrm_user_tmpl> tmpls(a.Length());
    for (uint32_t i = 0; i < a.Length(); i++) {
      Reader t = r.element(a, i, "templates");
      xfrm_user_tmpl& ut = tmpls[i];
      std::memset(&ut, 0, sizeof(ut));
      ut.family = t.has("family") ? t.family("family") : selFamily;
      t.optAddress("dst", ut.family, &ut.id.daddr);
      t.optAddress("src", ut.family, &ut.saddr);
      ut.id.spi = htonl(t.u32("spi", 0));
      ut.id.proto = t.u8("proto", IPPROTO_ESP);
      ut.reqid = t.u32("reqid", 0);
      ut.mode = t.u8("mode", XFRM_MODE_TRANSPORT);
      ut.share = t.u8("share", 0);
      ut.optional = t.boolean("optional") ? 1 : 0;
      ut.aalgos = t.u32("aalgos", 0xffffffffu);
      ut.ealgos = t.u32("ealgos", 0xffffffffu);
      ut.calgos = t.u32("calgos", 0xffffffffu);
    }
    if (!tmpls.empty()) m.putAttr(XFRMA_TMPL, tmpls.data(), tmpls.size() * sizeof(xfrm_user_tmpl));
  }
  if (r.has("ptype")) {
    xfrm_userpolicy_type t{};
    t.type = r.u8("ptype", XFRM_POLICY_TYPE_MAIN);
    m.putAttr(XFRMA_POLICY_TYPE, &t, sizeof(t));
  }
  putMarkAndIfId(r, m);
}

void encodePolicyId(const Reader& r, Message& m) {
  auto* id = m.reserveStruct<xfrm_userpolicy_id>();
  if (r.has("selector")) readSelector(r.sub("selector"), &id->sel);
  id->index = r.u32("index", 0);
  id->dir = static_cast<uint8_t>(r.u64("dir", 0, XFRM_POLICY_FWD));
  if (!id->index && !r.has("selector")) r.fail("selector", "needed when no index is given");
  putMarkAndIfId(r, m);
}

// --------------------------------------------------------------- output ---

Napi::String addrString(Napi::Env env, uint16_t family, const xfrm_address_t& a) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family == AF_INET) inet_ntop(AF_INET, &a.a4, buf, sizeof(buf));
  else if (family == AF_INET6) inet_ntop(AF_INET6, &a.in6, buf, sizeof(buf));
  return Napi::String::New(env, buf);
}

Napi::Number num(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }
Napi::Number lim(Napi::Env env, uint64_t v) { return num(env, v == XFRM_INF ? 0 : v); }

Napi::Object selectorObj(Napi::Env env, const xfrm_selector& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", num(env, s.family));
  o.Set("src", addrString(env, s.family, s.saddr));
  o.Set("dst", addrString(env, s.family, s.daddr));
  o.Set("prefixSrc", num(env, s.prefixlen_s));
  o.Set("prefixDst", num(env, s.prefixlen_d));
  o.Set("proto", num(env, s.proto));
  o.Set("sport", num(env, ntohs(s.sport)));
  o.Set("sportMask", num(env, ntohs(s.sport_mask)));
  o.Set("dport", num(env, ntohs(s.dport)));
  o.Set("dportMask", num(env, ntohs(s.dport_mask)));
  o.Set("ifindex", num(env, static_cast<uint32_t>(s.ifindex)));
  return o;
}

Napi::Object lifetimeObj(Napi::Env env, const xfrm_lifetime_cfg& l) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("softBytes", lim(env, l.soft_byte_limit));
  o.Set("hardBytes", lim(env, l.hard_byte_limit));
  o.Set("softPackets", lim(env, l.soft_packet_limit));
  o.Set("hardPackets", lim(env, l.hard_packet_limit));
  o.Set("softAddSeconds", num(env, l.soft_add_expires_seconds));
  o.Set("hardAddSeconds", num(env, l.hard_add_expires_seconds));
  o.Set("softUseSeconds", num(env, l.soft_use_expires_seconds));
  o.Set("hardUseSeconds", num(env, l.hard_use_expires_seconds));
  return o;
}

Napi::Object curObj(Napi::Env env, const xfrm_lifetime_cur& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytes", num(env, c.bytes));
  o.Set("packets", num(env, c.packets));
  o.Set("addTime", num(env, c.add_time));
  o.Set("useTime", num(env, c.use_time));
  return o;
}

struct Attrs {
  const struct nlattr* a[XFRMA_MAX + 1] = {nullptr};
  const uint8_t* data(int t) const { return reinterpret_cast<const uint8_t*>(a[t]) + NLA_HDRLEN; }
  size_t len(int t) const { return a[t]->nla_len - NLA_HDRLEN; }
  bool ok(int t, size_t min) const { return a[t] && len(t) >= min; }
};

Attrs parseAttrs(const uint8_t* p, size_t len) {
  Attrs at;
  while (len >= NLA_HDRLEN) {
    auto* nla = reinterpret_cast<const struct nlattr*>(p);
    if (nla->nla_len < NLA_HDRLEN || nla->nla_len > len) break;
    int t = nla->nla_type & NLA_TYPE_MASK;
    if (t <= XFRMA_MAX) at.a[t] = nla;
    size_t step = NLA_ALIGN(nla->nla_len);
    if (step >= len) break;
    p += step;
    len -= step;
  }
  return at;
}

Napi::Object algoObj(Napi::Env env, const Attrs& at, int t, int extra) {
  Napi::Object o = Napi::Object::New(env);
  const uint8_t* d = at.data(t);
  size_t len = at.len(t);
  size_t head = extra ? sizeof(xfrm_algo_aead) : sizeof(xfrm_algo);
  if (len < head) return o;
  auto* base = reinterpret_cast<const xfrm_algo*>(d);
  o.Set("name", Napi::String::New(env, std::string(base->alg_name, strnlen(base->alg_name, 64))));
  size_t keyLen = base->alg_key_len / 8;
  if (head + keyLen > len) keyLen = len - head;
  o.Set("key", Napi::Buffer<uint8_t>::Copy(env, d + head, keyLen));
  if (extra == 1) o.Set("truncBits", num(env, reinterpret_cast<const xfrm_algo_auth*>(d)->alg_trunc_len));
  if (extra == 2) o.Set("icvBits", num(env, reinterpret_cast<const xfrm_algo_aead*>(d)->alg_icv_len));
  return o;
}

void markAndIfId(Napi::Env env, const Attrs& at, Napi::Object o) {
  if (at.ok(XFRMA_MARK, sizeof(xfrm_mark))) {
    auto* mk = reinterpret_cast<const xfrm_mark*>(at.data(XFRMA_MARK));
    Napi::Object m = Napi::Object::New(env);
    m.Set("value", num(env, mk->v));
    m.Set("mask", num(env, mk->m));
    o.Set("mark", m);
  }
  if (at.ok(XFRMA_IF_ID, 4)) o.Set("ifId", num(env, *reinterpret_cast<const uint32_t*>(at.data(XFRMA_IF_ID))));
}

Napi::Object saObj(Napi::Env env, const xfrm_usersa_info& p, const Attrs* at) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", num(env, p.family));
  o.Set("src", addrString(env, p.family, p.saddr));
  o.Set("dst", addrString(env, p.family, p.id.daddr));
  o.Set("spi", num(env, ntohl(p.id.spi)));
  o.Set("proto", num(env, p.id.proto));
  o.Set("mode", num(env, p.mode));
  o.Set("reqid", num(env, p.reqid));
  o.Set("flags", num(env, p.flags));
  o.Set("esn", Napi::Boolean::New(env, (p.flags & XFRM_STATE_ESN) != 0));
  o.Set("replayWindow", num(env, p.replay_window));
  o.Set("seq", num(env, p.seq));
  o.Set("selector", selectorObj(env, p.sel));
  o.Set("lifetime", lifetimeObj(env, p.lft));
  o.Set("current", curObj(env, p.curlft));
  Napi::Object st = Napi::Object::New(env);
  st.Set("replayWindow", num(env, p.stats.replay_window));
  st.Set("replay", num(env, p.stats.replay));
  st.Set("integrityFailed", num(env, p.stats.integrity_failed));
  o.Set("stats", st);
  if (!at) return o;
  if (at->a[XFRMA_ALG_AEAD]) o.Set("aead", algoObj(env, *at, XFRMA_ALG_AEAD, 2));
  if (at->a[XFRMA_ALG_CRYPT]) o.Set("crypt", algoObj(env, *at, XFRMA_ALG_CRYPT, 0));
  if (at->a[XFRMA_ALG_AUTH_TRUNC]) o.Set("auth", algoObj(env, *at, XFRMA_ALG_AUTH_TRUNC, 1));
  else if (at->a[XFRMA_ALG_AUTH]) o.Set("auth", algoObj(env, *at, XFRMA_ALG_AUTH, 0));
  if (at->a[XFRMA_ALG_COMP]) o.Set("comp", algoObj(env, *at, XFRMA_ALG_COMP, 0));
  if (at->ok(XFRMA_ENCAP, sizeof(xfrm_encap_tmpl))) {
    auto* e = reinterpret_cast<const xfrm_encap_tmpl*>(at->data(XFRMA_ENCAP));
    Napi::Object eo = Napi::Object::New(env);
    eo.Set("type", num(env, e->encap_type));
    eo.Set("sport", num(env, ntohs(e->encap_sport)));
    eo.Set("dport", num(env, ntohs(e->encap_dport)));
    eo.Set("oa", addrString(env, p.family, e->encap_oa));
    o.Set("encap", eo);
  }
  if (at->ok(XFRMA_REPLAY_ESN_VAL, sizeof(xfrm_replay_state_esn))) {
    auto* rs = reinterpret_cast<const xfrm_replay_state_esn*>(at->data(XFRMA_REPLAY_ESN_VAL));
    o.Set("replayWindow", num(env, rs->replay_window));
    Napi::Object r = Napi::Object::New(env);
    r.Set("seq", num(env, rs->seq));
    r.Set("oseq", num(env, rs->oseq));
    r.Set("seqHi", num(env, rs->seq_hi));
    r.Set("oseqHi", num(env, rs->oseq_hi));
    o.Set("replay", r);
  } else if (at->ok(XFRMA_REPLAY_VAL, sizeof(xfrm_replay_state))) {
    auto* rs = reinterpret_cast<const xfrm_replay_state*>(at->data(XFRMA_REPLAY_VAL));
    Napi::Object r = Napi::Object::New(env);
    r.Set("seq", num(env, rs->seq));
    r.Set("oseq", num(env, rs->oseq));
    o.Set("replay", r);
  }
  if (at->ok(XFRMA_LASTUSED, 8)) {
    uint64_t lu;
    std::memcpy(&lu, at->data(XFRMA_LASTUSED), 8);
    o.Set("lastUsed", num(env, lu));
  }
  if (at->ok(XFRMA_SA_EXTRA_FLAGS, 4)) o.Set("extraFlags", num(env, *reinterpret_cast<const uint32_t*>(at->data(XFRMA_SA_EXTRA_FLAGS))));
  if (at->ok(XFRMA_TFCPAD, 4)) o.Set("tfcPad", num(env, *reinterpret_cast<const uint32_t*>(at->data(XFRMA_TFCPAD))));
  if (at->ok(XFRMA_SET_MARK, 4)) {
    Napi::Object sm = Napi::Object::New(env);
    sm.Set("value", num(env, *reinterpret_cast<const uint32_t*>(at->data(XFRMA_SET_MARK))));
    sm.Set("mask", num(env, at->ok(XFRMA_SET_MARK_MASK, 4) ? *reinterpret_cast<const uint32_t*>(at->data(XFRMA_SET_MARK_MASK)) : 0xffffffffu));
    o.Set("setMark", sm);
  }
  markAndIfId(env, *at, o);
  return o;
}

Napi::Array templatesArr(Napi::Env env, const Attrs& at) {
  Napi::Array arr = Napi::Array::New(env);
  if (!at.a[XFRMA_TMPL]) return arr;
  size_t n = at.len(XFRMA_TMPL) / sizeof(xfrm_user_tmpl);
  auto* t = reinterpret_cast<const xfrm_user_tmpl*>(at.data(XFRMA_TMPL));
  for (size_t i = 0; i < n; i++) {
    xfrm_user_tmpl ut;
    std::memcpy(&ut, t + i, sizeof(ut));
    Napi::Object o = Napi::Object::New(env);
    o.Set("family", num(env, ut.family));
    o.Set("dst", addrString(env, ut.family, ut.id.daddr));
    o.Set("src", addrString(env, ut.family, ut.saddr));
    o.Set("spi", num(env, ntohl(ut.id.spi)));
    o.Set("proto", num(env, ut.id.proto));
    o.Set("reqid", num(env, ut.reqid));
    o.Set("mode", num(env, ut.mode));
    o.Set("share", num(env, ut.share));
    o.Set("optional", Napi::Boolean::New(env, ut.optional != 0));
    o.Set("aalgos", num(env, ut.aalgos));
    o.Set("ealgos", num(env, ut.ealgos));
    o.Set("calgos", num(env, ut.calgos));
    arr.Set(static_cast<uint32_t>(i), o);
  }
  return arr;
}

Napi::Object policyObj(Napi::Env env, const xfrm_userpolicy_info& p, const Attrs* at) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("selector", selectorObj(env, p.sel));
  o.Set("lifetime", lifetimeObj(env, p.lft));
  o.Set("current", curObj(env, p.curlft));
  o.Set("priority", num(env, p.priority));
  o.Set("index", num(env, p.index));
  o.Set("dir", num(env, p.dir));
  o.Set("action", num(env, p.action));
  o.Set("flags", num(env, p.flags));
  o.Set("share", num(env, p.share));
  if (at) {
    o.Set("templates", templatesArr(env, *at));
    if (at->ok(XFRMA_POLICY_TYPE, sizeof(xfrm_userpolicy_type)))
      o.Set("ptype", num(env, reinterpret_cast<const xfrm_userpolicy_type*>(at->data(XFRMA_POLICY_TYPE))->type));
    markAndIfId(env, *at, o);
  } else {
    o.Set("templates", Napi::Array::New(env));
  }
  return o;
}

Napi::Object saIdObj(Napi::Env env, const xfrm_usersa_id& id) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", num(env, id.family));
  o.Set("dst", addrString(env, id.family, id.daddr));
  o.Set("spi", num(env, ntohl(id.spi)));
  o.Set("proto", num(env, id.proto));
  return o;
}

template <typename T>
bool fixed(const uint8_t* d, size_t len, T* out, Attrs* at) {
  if (len < sizeof(T)) return false;
  std::memcpy(out, d, sizeof(T));
  size_t off = NLMSG_ALIGN(sizeof(T));
  if (at) *at = off < len ? parseAttrs(d + off, len - off) : Attrs();
  return true;
}

}  // namespace

Request encodeRequest(Napi::Env env, const std::string& op, Napi::Object arg) {
  Reader r(env, arg, "");
  Request q;
  Message& m = q.msg;
  if (op == "newsa" || op == "updsa") {
    m.type = op == "newsa" ? XFRM_MSG_NEWSA : XFRM_MSG_UPDSA;
    m.flags = NLM_F_CREATE | (op == "newsa" ? NLM_F_EXCL : NLM_F_REPLACE);
    encodeSa(r, m);
  } else if (op == "getsa" || op == "delsa") {
    m.type = op == "getsa" ? XFRM_MSG_GETSA : XFRM_MSG_DELSA;
    q.reply = op == "getsa" ? ReplyKind::Single : ReplyKind::Ack;
    encodeSaId(r, m);
  } else if (op == "allocspi") {
    m.type = XFRM_MSG_ALLOCSPI;
    q.reply = ReplyKind::Single;
    encodeAllocSpi(r, m);
  } else if (op == "dumpsa") {
    m.type = XFRM_MSG_GETSA;
    m.flags = NLM_F_DUMP;
    q.reply = ReplyKind::Dump;
  } else if (op == "flushsa") {
    m.type = XFRM_MSG_FLUSHSA;
    auto* f = m.reserveStruct<xfrm_usersa_flush>();
    f->proto = r.u8("proto", 255 /* IPSEC_PROTO_ANY */);
  } else if (op == "newpolicy" || op == "updpolicy") {
    m.type = op == "newpolicy" ? XFRM_MSG_NEWPOLICY : XFRM_MSG_UPDPOLICY;
    m.flags = NLM_F_CREATE | (op == "newpolicy" ? NLM_F_EXCL : NLM_F_REPLACE);
    encodePolicy(r, m);
  } else if (op == "getpolicy" || op == "delpolicy") {
    m.type = op == "getpolicy" ? XFRM_MSG_GETPOLICY : XFRM_MSG_DELPOLICY;
    q.reply = op == "getpolicy" ? ReplyKind::Single : ReplyKind::Ack;
    encodePolicyId(r, m);
  } else if (op == "dumppolicy") {
    m.type = XFRM_MSG_GETPOLICY;
    m.flags = NLM_F_DUMP;
    q.reply = ReplyKind::Dump;
  } else if (op == "flushpolicy") {
    m.type = XFRM_MSG_FLUSHPOLICY;
    if (r.has("ptype")) {
      xfrm_userpolicy_type t{};
      t.type = r.u8("ptype", XFRM_POLICY_TYPE_MAIN);
      m.putAttr(XFRMA_POLICY_TYPE, &t, sizeof(t));
    }
  } else {
    throw Napi::TypeError::New(env, "unknown XFRM operation '" + op + "'");
  }
  return q;
}

Napi::Value decodeMessage(Napi::Env env, uint16_t type, const uint8_t* d, size_t len) {
  Attrs at;
  Napi::Object o = Napi::Object::New(env);
  switch (type) {
    case XFRM_MSG_NEWSA:
    case XFRM_MSG_UPDSA: {
      xfrm_usersa_info p;
      if (!fixed(d, len, &p, &at)) return env.Undefined();
      o = saObj(env, p, &at);
      o.Set("type", Napi::String::New(env, type == XFRM_MSG_NEWSA ? "newsa" : "updsa"));
      return o;
    }
    case XFRM_MSG_DELSA: {
      xfrm_usersa_id id;
      if (!fixed(d, len, &id, &at)) return env.Undefined();
      if (at.ok(XFRMA_SA, sizeof(xfrm_usersa_info))) {
        xfrm_usersa_info p;
        std::memcpy(&p, at.data(XFRMA_SA), sizeof(p));
        o = saObj(env, p, &at);
      } else {
        o = saIdObj(env, id);
      }
      o.Set("type", Napi::String::New(env, "delsa"));
      return o;
    }
    case XFRM_MSG_NEWPOLICY:
    case XFRM_MSG_UPDPOLICY: {
      xfrm_userpolicy_info p;
      if (!fixed(d, len, &p, &at)) return env.Undefined();
      o = policyObj(env, p, &at);
      o.Set("type", Napi::String::New(env, type == XFRM_MSG_NEWPOLICY ? "newpolicy" : "updpolicy"));
      return o;
    }
    case XFRM_MSG_DELPOLICY: {
      xfrm_userpolicy_id id;
      if (!fixed(d, len, &id, &at)) return env.Undefined();
      if (at.ok(XFRMA_POLICY, sizeof(xfrm_userpolicy_info))) {
        xfrm_userpolicy_info p;
        std::memcpy(&p, at.data(XFRMA_POLICY), sizeof(p));
        o = policyObj(env, p, &at);
      } else {
        o.Set("selector", selectorObj(env, id.sel));
        o.Set("index", num(env, id.index));
        o.Set("dir", num(env, id.dir));
        markAndIfId(env, at, o);
      }
      o.Set("type", Napi::String::New(env, "delpolicy"));
      return o;
    }
    case XFRM_MSG_FLUSHSA: {
      xfrm_usersa_flush f;
      if (!fixed(d, len, &f, nullptr)) return env.Undefined();
      o.Set("type", Napi::String::New(env, "flushsa"));
      o.Set("proto", num(env, f.proto));
      return o;
    }
    case XFRM_MSG_FLUSHPOLICY:
      o.Set("type", Napi::String::New(env, "flushpolicy"));
      return o;
    case XFRM_MSG_ACQUIRE: {
      xfrm_user_acquire a;
      if (!fixed(d, len, &a, &at)) return env.Undefined();
      o.Set("type", Napi::String::New(env, "acquire"));
      uint16_t fam = a.policy.sel.family ? a.policy.sel.family : a.sel.family;
      // the template carries the outer family; fall back to the selector's
      if (at.ok(XFRMA_TMPL, sizeof(xfrm_user_tmpl))) fam = reinterpret_cast<const xfrm_user_tmpl*>(at.data(XFRMA_TMPL))->family;
      o.Set("family", num(env, fam));
      o.Set("dst", addrString(env, fam, a.id.daddr));
      o.Set("src", addrString(env, fam, a.saddr));
      o.Set("proto", num(env, a.id.proto));
      o.Set("selector", selectorObj(env, a.sel));
      o.Set("policy", policyObj(env, a.policy, &at));
      o.Set("seq", num(env, a.seq));
      Napi::Array tm = templatesArr(env, at);
      o.Set("reqid", num(env, tm.Length() ? tm.Get(0u).As<Napi::Object>().Get("reqid").As<Napi::Number>().Uint32Value() : 0));
      markAndIfId(env, at, o);
      return o;
    }
    case XFRM_MSG_EXPIRE: {
      xfrm_user_expire e;
      if (!fixed(d, len, &e, &at)) return env.Undefined();
      o = saObj(env, e.state, &at);
      o.Set("type", Napi::String::New(env, "expire"));
      o.Set("hard", Napi::Boolean::New(env, e.hard != 0));
      return o;
    }
    case XFRM_MSG_POLEXPIRE: {
      xfrm_user_polexpire e;
      if (!fixed(d, len, &e, &at)) return env.Undefined();
      o = policyObj(env, e.pol, &at);
      o.Set("type", Napi::String::New(env, "polexpire"));
      o.Set("hard", Napi::Boolean::New(env, e.hard != 0));
      return o;
    }
    case XFRM_MSG_NEWAE: {
      xfrm_aevent_id ae;
      if (!fixed(d, len, &ae, &at)) return env.Undefined();
      o = saIdObj(env, ae.sa_id);
      o.Set("type", Napi::String::New(env, "aevent"));
      o.Set("src", addrString(env, ae.sa_id.family, ae.saddr));
      o.Set("flags", num(env, ae.flags));
      o.Set("reqid", num(env, ae.reqid));
      if (at.ok(XFRMA_LTIME_VAL, sizeof(xfrm_lifetime_cur)))
        o.Set("current", curObj(env, *reinterpret_cast<const xfrm_lifetime_cur*>(at.data(XFRMA_LTIME_VAL))));
      if (at.ok(XFRMA_REPLAY_ESN_VAL, sizeof(xfrm_replay_state_esn))) {
        auto* rs = reinterpret_cast<const xfrm_replay_state_esn*>(at.data(XFRMA_REPLAY_ESN_VAL));
        Napi::Object r = Napi::Object::New(env);
        r.Set("seq", num(env, rs->seq));
        r.Set("oseq", num(env, rs->oseq));
        r.Set("seqHi", num(env, rs->seq_hi));
        r.Set("oseqHi", num(env, rs->oseq_hi));
        o.Set("replay", r);
      } else if (at.ok(XFRMA_REPLAY_VAL, sizeof(xfrm_replay_state))) {
        auto* rs = reinterpret_cast<const xfrm_replay_state*>(at.data(XFRMA_REPLAY_VAL));
        Napi::Object r = Napi::Object::New(env);
        r.Set("seq", num(env, rs->seq));
        r.Set("oseq", num(env, rs->oseq));
        o.Set("replay", r);
      }
      markAndIfId(env, at, o);
      return o;
    }
    case XFRM_MSG_REPORT: {
      xfrm_user_report rp;
      if (!fixed(d, len, &rp, &at)) return env.Undefined();
      o.Set("type", Napi::String::New(env, "report"));
      o.Set("proto", num(env, rp.proto));
      o.Set("selector", selectorObj(env, rp.sel));
      if (at.ok(XFRMA_COADDR, sizeof(xfrm_address_t)))
        o.Set("coaddr", addrString(env, rp.sel.family, *reinterpret_cast<const xfrm_address_t*>(at.data(XFRMA_COADDR))));
      return o;
    }
    case XFRM_MSG_MIGRATE: {
      xfrm_userpolicy_id id;
      if (!fixed(d, len, &id, &at)) return env.Undefined();
      o.Set("type", Napi::String::New(env, "migrate"));
      o.Set("selector", selectorObj(env, id.sel));
      o.Set("dir", num(env, id.dir));
      Napi::Array arr = Napi::Array::New(env);
      if (at.a[XFRMA_MIGRATE]) {
        size_t n = at.len(XFRMA_MIGRATE) / sizeof(xfrm_user_migrate);
        for (size_t i = 0; i < n; i++) {
          xfrm_user_migrate um;
          std::memcpy(&um, at.data(XFRMA_MIGRATE) + i * sizeof(um), sizeof(um));
          Napi::Object e = Napi::Object::New(env);
          e.Set("oldDst", addrString(env, um.old_family, um.old_daddr));
          e.Set("oldSrc", addrString(env, um.old_family, um.old_saddr));
          e.Set("newDst", addrString(env, um.new_family, um.new_daddr));
          e.Set("newSrc", addrString(env, um.new_family, um.new_saddr));
          e.Set("proto", num(env, um.proto));
          e.Set("mode", num(env, um.mode));
          e.Set("reqid", num(env, um.reqid));
          e.Set("oldFamily", num(env, um.old_family));
          e.Set("newFamily", num(env, um.new_family));
          arr.Set(static_cast<uint32_t>(i), e);
        }
      }
      o.Set("migrations", arr);
      return o;
    }
    case XFRM_MSG_MAPPING: {
      xfrm_user_mapping mp;
      if (!fixed(d, len, &mp, &at)) return env.Undefined();
      o = saIdObj(env, mp.id);
      o.Set("type", Napi::String::New(env, "mapping"));
      o.Set("reqid", num(env, mp.reqid));
      o.Set("oldSrc", addrString(env, mp.id.family, mp.old_saddr));
      o.Set("newSrc", addrString(env, mp.id.family, mp.new_saddr));
      o.Set("oldSport", num(env, ntohs(mp.old_sport)));
      o.Set("newSport", num(env, ntohs(mp.new_sport)));
      return o;
    }
    default:
      return env.Undefined();
  }
}

void fillBypassPolicy(void* out, int family, int dir) {
  auto* p = static_cast<xfrm_userpolicy_info*>(out);
  std::memset(p, 0, sizeof(*p));
  p->sel.family = static_cast<uint16_t>(family);
  infiniteLifetime(&p->lft);
  p->action = XFRM_POLICY_ALLOW;
  p->dir = static_cast<uint8_t>(dir);
}

size_t userpolicyInfoSize() { return sizeof(xfrm_userpolicy_info); }

}  // namespace xfrm
