// NETLINK_XFRM client for Node.js.
//
// Never blocks the event loop: both sockets are non-blocking and watched by
// libuv (uv_poll_t). Every request carries NLM_F_ACK and a sequence number;
// replies are matched by sequence number and settle a Promise. Kernel errors
// become Error objects with errno, code and the extended-ack message.
//
// Namespaces: the sockets are opened on a short-lived helper thread that first
// setns()es into the requested network namespace (setns is per thread), so
// one process can manage several namespaces at once.
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/udp.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <thread>
#include <unordered_map>

#include "codec.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef UDP_ENCAP
#define UDP_ENCAP 100
#endif
#ifndef UDP_ENCAP_ESPINUDP
#define UDP_ENCAP_ESPINUDP 2
#endif

namespace {

constexpr size_t kRecvBuf = 256 * 1024;
// Requests in flight per socket; more are queued in user space so that the
// replies can never overflow the socket's receive buffer.
constexpr size_t kMaxInFlight = 128;

Napi::Error makeErrnoError(Napi::Env env, const std::string& what, int err, const std::string& extack) {
  std::string msg = what + ": " + std::strerror(err);
  if (!extack.empty()) msg += " (" + extack + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, uv_err_name(-err)));
  if (!extack.empty()) e.Set("extack", Napi::String::New(env, extack));
  return e;
}

struct Pending {
  uint32_t seq;
  std::string op;
  xfrm::ReplyKind reply;
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::Array> results;
  bool sent = false;
  std::vector<uint8_t> wire;
};

struct PollHandle {
  uv_poll_t poll;
  class XfrmSocket* owner;
  bool events;  // true for the multicast (event) socket
};

class XfrmSocket : public Napi::ObjectWrap<XfrmSocket> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "XfrmSocket",
                       {InstanceMethod("request", &XfrmSocket::Request),
                        InstanceMethod("subscribe", &XfrmSocket::Subscribe),
                        InstanceMethod("close", &XfrmSocket::Close),
                        InstanceAccessor("pending", &XfrmSocket::PendingCount, nullptr)});
  }

  XfrmSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<XfrmSocket>(info) {
    Napi::Env env = info.Env();
    std::string nsPath;
    int nsFd = -1;
    if (info.Length() > 0 && info[0].IsObject()) {
      Napi::Object o = info[0].As<Napi::Object>();
      Napi::Value ns = o.Get("netns");
      if (ns.IsString()) nsPath = ns.As<Napi::String>().Utf8Value();
      else if (ns.IsNumber()) nsFd = ns.As<Napi::Number>().Int32Value();
      else if (!ns.IsUndefined() && !ns.IsNull()) throw Napi::TypeError::New(env, "netns: must be a path or an fd");
      Napi::Value cb = o.Get("onEvent");
      if (cb.IsFunction()) onEvent_ = Napi::Persistent(cb.As<Napi::Function>());
    }
    int err = 0;
    std::string where;
    auto open = [&]() {
      if (!nsPath.empty() || nsFd >= 0) {
        int fd = nsFd;
        if (!nsPath.empty()) {
          fd = ::open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) { err = errno; where = "open " + nsPath; return; }
        }
        int r = setns(fd, CLONE_NEWNET);
        int e = errno;
        if (!nsPath.empty()) ::close(fd);
        if (r < 0) { err = e; where = "setns"; return; }
      }
      for (int* out : {&reqFd_, &evFd_}) {
        *out = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_XFRM);
        if (*out < 0) { err = errno; where = "socket(NETLINK_XFRM)"; return; }
      }
    };
    if (nsPath.empty() && nsFd < 0) {
      open();
    } else {
      std::thread t(open);  // setns() affects only this helper thread
      t.join();
    }
    if (!err) err = configure(reqFd_, where);
    if (!err) err = configure(evFd_, where);
    if (err) {
      closeFds();
      throw makeErrnoError(env, where, err, "");
    }
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    reqPoll_ = newPoll(loop, reqFd_, false);
    evPoll_ = newPoll(loop, evFd_, true);
    asyncCtx_ = std::make_unique<Napi::AsyncContext>(env, "XfrmSocket");
    seq_ = static_cast<uint32_t>(uv_hrtime()) | 1u;
  }

  ~XfrmSocket() override { shutdown(); }

 private:
  static int configure(int fd, std::string& where) {
    int one = 1;
    int size = static_cast<int>(4 * 1024 * 1024);
    // Best effort: larger buffers (FORCE needs CAP_NET_ADMIN), ext-ack, capped acks.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
      where = "bind(NETLINK_XFRM)";
      return errno;
    }
    return 0;
  }

  PollHandle* newPoll(uv_loop_t* loop, int fd, bool events) {
    auto* h = new PollHandle{};
    h->owner = this;
    h->events = events;
    uv_poll_init(loop, &h->poll, fd);
    h->poll.data = h;
    return h;
  }

  void closeFds() {
    if (reqFd_ >= 0) ::close(reqFd_);
    if (evFd_ >= 0) ::close(evFd_);
    reqFd_ = evFd_ = -1;
  }

  static void closePoll(PollHandle* h) {
    if (!h) return;
    uv_poll_stop(&h->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll),
             [](uv_handle_t* hd) { delete static_cast<PollHandle*>(hd->data); });
  }

  // Stops polling and closes the sockets; pending promises are rejected by Close().
  void shutdown() {
    if (closed_) return;
    closed_ = true;
    closePoll(reqPoll_);
    closePoll(evPoll_);
    reqPoll_ = evPoll_ = nullptr;
    closeFds();
  }

  void updateReqPoll() {
    if (!reqPoll_) return;
    int ev = 0;
    if (!inflight_.empty()) ev |= UV_READABLE;
    if (blockedOnWrite_) ev |= UV_WRITABLE;
    if (ev) uv_poll_start(&reqPoll_->poll, ev, &XfrmSocket::OnPoll);
    else uv_poll_stop(&reqPoll_->poll);
  }

  Napi::Value PendingCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(inflight_.size() + queue_.size()));
  }

  // request(op, arg) -> Promise
  Napi::Value Request(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_) throw Napi::Error::New(env, "XFRM socket is closed");
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "op: must be a string");
    std::string op = info[0].As<Napi::String>().Utf8Value();
    Napi::Object arg = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    xfrm::Request q = xfrm::encodeRequest(env, op, arg);

    auto p = std::make_unique<Pending>(Pending{0, op, q.reply, Napi::Promise::Deferred::New(env), {}, false, {}});
    p->seq = nextSeq();
    p->results = Napi::Persistent(Napi::Array::New(env));
    size_t total = NLMSG_HDRLEN + q.msg.body.size();
    p->wire.resize(total);
    auto* nlh = reinterpret_cast<nlmsghdr*>(p->wire.data());
    nlh->nlmsg_len = static_cast<uint32_t>(total);
    nlh->nlmsg_type = q.msg.type;
    nlh->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | q.msg.flags);
    nlh->nlmsg_seq = p->seq;
    nlh->nlmsg_pid = 0;
    std::memcpy(p->wire.data() + NLMSG_HDRLEN, q.msg.body.data(), q.msg.body.size());
    Napi::Promise promise = p->deferred.Promise();
    queue_.push_back(std::move(p));
    pump(env);
    return promise;
  }

  uint32_t nextSeq() {
    if (++seq_ == 0) seq_ = 1;
    return seq_;
  }

  // Sends queued requests while fewer than kMaxInFlight await replies.
  void pump(Napi::Env env) {
    while (!queue_.empty() && inflight_.size() < kMaxInFlight && !closed_) {
      Pending* p = queue_.front().get();
      // One dump at a time per netlink socket (a second one gets EBUSY); keep order.
      if (p->reply == xfrm::ReplyKind::Dump && dumpsInFlight_ > 0) break;
      sockaddr_nl to{};
      to.nl_family = AF_NETLINK;
      ssize_t n = sendto(reqFd_, p->wire.data(), p->wire.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        blockedOnWrite_ = true;
        break;
      }
      blockedOnWrite_ = false;
      std::unique_ptr<Pending> owned = std::move(queue_.front());
      queue_.pop_front();
      if (n < 0) {
        owned->deferred.Reject(makeErrnoError(env, owned->op, errno, "").Value());
        continue;
      }
      owned->wire.clear();
      owned->wire.shrink_to_fit();
      uint32_t seq = owned->seq;
      if (owned->reply == xfrm::ReplyKind::Dump) dumpsInFlight_++;
      inflight_.emplace(seq, std::move(owned));
    }
    updateReqPoll();
  }

  Napi::Value Subscribe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_) throw Napi::Error::New(env, "XFRM socket is closed");
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "groups: must be an array of numbers");
    Napi::Array a = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, "groups: must be an array of numbers");
      int g = v.As<Napi::Number>().Int32Value();
      if (g < 1 || g > XFRMNLGRP_MAX) throw Napi::TypeError::New(env, "groups: unknown XFRM multicast group " + std::to_string(g));
      if (setsockopt(evFd_, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0)
        throw makeErrnoError(env, "NETLINK_ADD_MEMBERSHIP", errno, "");
    }
    if (a.Length() && !subscribed_) {
      subscribed_ = true;
      uv_poll_start(&evPoll_->poll, UV_READABLE, &XfrmSocket::OnPoll);
    }
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (closed_) return env.Undefined();
    shutdown();
    Napi::HandleScope scope(env);
    for (auto& kv : inflight_) kv.second->deferred.Reject(Napi::Error::New(env, kv.second->op + ": XFRM socket closed").Value());
    for (auto& p : queue_) p->deferred.Reject(Napi::Error::New(env, p->op + ": XFRM socket closed").Value());
    inflight_.clear();
    queue_.clear();
    dumpsInFlight_ = 0;
    onEvent_.Reset();
    return env.Undefined();
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* h = static_cast<PollHandle*>(handle->data);
    XfrmSocket* self = h->owner;
    if (self->closed_) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    // A callback scope so that promise reactions run when we return to libuv.
    Napi::CallbackScope cbScope(env, *self->asyncCtx_);
    Napi::Object keepAlive = self->Value();  // the wrapper must survive JS callbacks closing us
    (void)keepAlive;
    try {
      if (h->events) {
        self->drainEvents(env);
      } else {
        if (status == 0 && (events & UV_WRITABLE)) self->blockedOnWrite_ = false;
        self->drainReplies(env);
        self->pump(env);
      }
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  void drainReplies(Napi::Env env) {
    std::vector<uint8_t> buf(kRecvBuf);
    while (!closed_) {
      ssize_t n = recv(reqFd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        // ENOBUFS: replies were lost; nothing in flight can be trusted any more.
        int e = errno;
        for (auto& kv : inflight_) kv.second->deferred.Reject(makeErrnoError(env, kv.second->op, e, "reply lost").Value());
        inflight_.clear();
        dumpsInFlight_ = 0;
        return;
      }
      handleBuffer(env, buf.data(), static_cast<size_t>(n));
    }
  }

  void handleBuffer(Napi::Env env, const uint8_t* data, size_t len) {
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(data); NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len)) {
      auto it = inflight_.find(nlh->nlmsg_seq);
      if (it == inflight_.end()) continue;  // late reply of a settled request
      Pending* p = it->second.get();
      const uint8_t* payload = static_cast<const uint8_t*>(NLMSG_DATA(nlh));
      size_t plen = nlh->nlmsg_len - NLMSG_HDRLEN;
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        if (plen < sizeof(nlmsgerr)) continue;
        auto* e = reinterpret_cast<const nlmsgerr*>(payload);
        if (e->error == 0) {
          settle(env, it);
        } else {
          std::string extack = extAck(nlh, e);
          p->deferred.Reject(makeErrnoError(env, p->op, -e->error, extack).Value());
          finish(it);
        }
      } else if (nlh->nlmsg_type == NLMSG_DONE) {
        int err = plen >= sizeof(int) ? *reinterpret_cast<const int*>(payload) : 0;
        if (err < 0) {
          p->deferred.Reject(makeErrnoError(env, p->op, -err, "").Value());
          finish(it);
        } else {
          settle(env, it);
        }
      } else {
        Napi::Value v = xfrm::decodeMessage(env, nlh->nlmsg_type, payload, plen);
        if (!v.IsUndefined()) {
          Napi::Array arr = p->results.Value();
          arr.Set(arr.Length(), v);
        }
        // Dumps end with NLMSG_DONE; a single reply is followed by the ack.
      }
    }
  }

  void finish(std::unordered_map<uint32_t, std::unique_ptr<Pending>>::iterator it) {
    if (it->second->reply == xfrm::ReplyKind::Dump) dumpsInFlight_--;
    inflight_.erase(it);
  }

  void settle(Napi::Env env, std::unordered_map<uint32_t, std::unique_ptr<Pending>>::iterator it) {
    Pending* p = it->second.get();
    Napi::Array arr = p->results.Value();
    if (p->reply == xfrm::ReplyKind::Dump) p->deferred.Resolve(arr);
    else if (p->reply == xfrm::ReplyKind::Single) p->deferred.Resolve(arr.Length() ? arr.Get(0u) : env.Undefined());
    else p->deferred.Resolve(env.Undefined());
    finish(it);
  }

  static std::string extAck(const nlmsghdr* nlh, const nlmsgerr* e) {
    if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
    size_t off = NLMSG_HDRLEN + sizeof(nlmsgerr);
    if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
    const uint8_t* base = reinterpret_cast<const uint8_t*>(nlh);
    while (off + NLA_HDRLEN <= nlh->nlmsg_len) {
      auto* nla = reinterpret_cast<const nlattr*>(base + off);
      if (nla->nla_len < NLA_HDRLEN || off + nla->nla_len > nlh->nlmsg_len) break;
      if ((nla->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
        const char* s = reinterpret_cast<const char*>(base + off + NLA_HDRLEN);
        return std::string(s, strnlen(s, nla->nla_len - NLA_HDRLEN));
      }
      off += NLA_ALIGN(nla->nla_len);
    }
    return "";
  }

  void drainEvents(Napi::Env env) {
    std::vector<uint8_t> buf(kRecvBuf);
    while (!closed_) {
      ssize_t n = recv(evFd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {
          // Notifications were dropped: tell the listener so it can resynchronise.
          Napi::Object o = Napi::Object::New(env);
          o.Set("type", Napi::String::New(env, "overflow"));
          emit(env, o);
          continue;
        }
        return;
      }
      size_t len = static_cast<size_t>(n);
      for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len)) {
        if (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_ERROR || nlh->nlmsg_type == NLMSG_NOOP) continue;
        Napi::Value v = xfrm::decodeMessage(env, nlh->nlmsg_type, static_cast<const uint8_t*>(NLMSG_DATA(nlh)),
                                            nlh->nlmsg_len - NLMSG_HDRLEN);
        if (v.IsUndefined()) continue;
        emit(env, v);
        if (closed_) return;
      }
    }
  }

  void emit(Napi::Env env, Napi::Value v) {
    if (onEvent_.IsEmpty()) return;
    onEvent_.Value().Call(Value(), {v});
  }

  int reqFd_ = -1;
  int evFd_ = -1;
  PollHandle* reqPoll_ = nullptr;
  PollHandle* evPoll_ = nullptr;
  bool closed_ = false;
  bool subscribed_ = false;
  bool blockedOnWrite_ = false;
  uint32_t seq_ = 1;
  int dumpsInFlight_ = 0;
  std::unique_ptr<Napi::AsyncContext> asyncCtx_;
  Napi::FunctionReference onEvent_;
  std::deque<std::unique_ptr<Pending>> queue_;
  std::unordered_map<uint32_t, std::unique_ptr<Pending>> inflight_;
};

int fdArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "fd: must be a number");
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd < 0) throw Napi::TypeError::New(info.Env(), "fd: must be a valid file descriptor");
  return fd;
}

// Let the kernel decapsulate ESP-in-UDP (RFC 3948) arriving on this UDP
// socket; non-ESP datagrams (IKE, with the non-ESP marker) still reach us.
Napi::Value EnableEspInUdp(const Napi::CallbackInfo& info) {
  int fd = fdArg(info);
  int type = UDP_ENCAP_ESPINUDP;
  if (setsockopt(fd, IPPROTO_UDP, UDP_ENCAP, &type, sizeof(type)) < 0)
    throw makeErrnoError(info.Env(), "setsockopt(UDP_ENCAP)", errno, "");
  return info.Env().Undefined();
}

// Per-socket allow policies in both directions: IKE packets on this socket
// bypass the SPD, so tunnel/transport policies never catch IKE itself.
Napi::Value BypassIpsec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = fdArg(info);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(env, "family: must be 4, 6, AF_INET or AF_INET6");
  int fam = info[1].As<Napi::Number>().Int32Value();
  if (fam == 4) fam = AF_INET;
  if (fam == 6) fam = AF_INET6;
  if (fam != AF_INET && fam != AF_INET6) throw Napi::TypeError::New(env, "family: must be 4, 6, AF_INET or AF_INET6");
  std::vector<uint8_t> buf(xfrm::userpolicyInfoSize());
  for (int dir : {XFRM_POLICY_IN, XFRM_POLICY_OUT}) {
    xfrm::fillBypassPolicy(buf.data(), fam, dir);
    int level = fam == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
    int opt = fam == AF_INET ? IP_XFRM_POLICY : IPV6_XFRM_POLICY;
    if (setsockopt(fd, level, opt, buf.data(), static_cast<socklen_t>(buf.size())) < 0)
      throw makeErrnoError(env, fam == AF_INET ? "setsockopt(IP_XFRM_POLICY)" : "setsockopt(IPV6_XFRM_POLICY)", errno, "");
  }
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("XfrmSocket", XfrmSocket::Init(env));
  exports.Set("enableEspInUdp", Napi::Function::New(env, EnableEspInUdp));
  exports.Set("bypassIpsec", Napi::Function::New(env, BypassIpsec));
  return exports;
}

}  // namespace

NODE_API_MODULE(xfrm, Init)
