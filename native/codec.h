// XFRM netlink message layout: JS objects <-> struct xfrm_* + attributes.
// This file (with codec.cc) is the only place that knows the wire layout of
// NETLINK_XFRM messages; the TypeScript side passes plain objects whose
// field names are documented in src/kernel/native.ts.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace xfrm {

// A netlink message being built: header is filled by the socket layer.
struct Message {
  uint16_t type = 0;
  uint16_t flags = 0;
  std::vector<uint8_t> body;  // fixed struct + attributes, without nlmsghdr

  template <typename T>
  T* reserveStruct() {
    size_t off = body.size();
    body.resize(off + align(sizeof(T)), 0);
    return reinterpret_cast<T*>(body.data() + off);
  }
  void putAttr(uint16_t attrType, const void* data, size_t len);
  static size_t align(size_t n) { return (n + 3u) & ~size_t(3u); }
};

// How a request is answered.
enum class ReplyKind { Ack, Single, Dump };

struct Request {
  Message msg;
  ReplyKind reply = ReplyKind::Ack;
};

// Builds the request for `op` (e.g. "newsa", "getpolicy") from `arg`.
// Throws Napi::TypeError naming the offending field on malformed input.
Request encodeRequest(Napi::Env env, const std::string& op, Napi::Object arg);

// Decodes one kernel message (reply or multicast notification) into a JS
// object; returns an empty value when the type is not one we understand.
Napi::Value decodeMessage(Napi::Env env, uint16_t type, const uint8_t* data, size_t len);

// Fills an IP_XFRM_POLICY / IPV6_XFRM_POLICY option value: allow, given dir.
void fillBypassPolicy(void* userpolicyInfo, int family, int dir);
size_t userpolicyInfoSize();

}  // namespace xfrm
