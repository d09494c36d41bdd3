#!/bin/bash
# npm run demo: two ikev2d gateways in network namespaces carry host-a <-> host-b traffic
# through ESP, rekey the Child SA and the IKE SA while a ping runs, and report the loss.
#
#   host-a 10.1.0.10 --- 10.1.0.1 gw-a 192.0.2.1 ==== 192.0.2.2 gw-b 10.2.0.1 --- 10.2.0.10 host-b
#
# Needs root and a kernel that can carry ESP; where the running kernel cannot (no esp4/xfrm),
# the demo re-runs itself inside the test bed VM (scripts/vm-run). Uses the compiled dist/.
# Options: --in-vm (internal), --keep (leave namespaces and daemons running for a look).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
IN_VM=0 KEEP=0
for a in "$@"; do
  case $a in
    --in-vm) IN_VM=1 ;;
    --keep) KEEP=1 ;;
    *) echo "demo.sh: unknown option $a (known: --keep)" >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

kernel_has_esp() {
  local ns=ikev2d-esp-probe-$$ ok=1
  ip netns add "$ns" 2>/dev/null || return 1
  if ip netns exec "$ns" ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x1000 \
      mode tunnel aead 'rfc4106(gcm(aes))' 0x0102030405060708090a0b0c0d0e0f1011121314 128 2>/dev/null; then ok=0; fi
  ip netns del "$ns" 2>/dev/null
  return $ok
}

if [[ $IN_VM == 0 ]]; then
  if [[ ! -f dist/cli/ikev2d.js || ! -f build/Release/xfrm.node ]]; then
    say "building (npm run build)"
    npm run build || die "build failed"
  fi
  if [[ $(id -u) == 0 ]] && kernel_has_esp; then
    exec bash "$0" --in-vm "$@"
  fi
  say "this kernel ($(uname -r)) cannot carry ESP here: running the demo inside the test bed VM (scripts/vm-run)"
  exec scripts/vm-run --modules ipsec --mem 1G --timeout 900 -- bash scripts/demo.sh --in-vm "$@"
fi

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, XFRM)"
NODE=${NODE:-node}
IKEV2D="$NODE $ROOT/dist/cli/ikev2d.js"
W=$(mktemp -d /run/ikev2d-demo.XXXXXX 2>/dev/null || mktemp -d)   # sockets never on a 9p share
NS=(host-a gw-a gw-b host-b)
PIDS=()

cleanup() {
  [[ $KEEP == 1 ]] && { echo "kept: namespaces ${NS[*]}, work dir $W"; return; }
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT

say "namespaces and links"
for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null; ip netns add "$n" || die "ip netns add $n"; ip -n "$n" link set lo up; done
link() { # ns1 if1 addr1 ns2 if2 addr2
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4" || die "veth $1-$4"
  ip -n "$1" addr add "$3" dev "$2"; ip -n "$4" addr add "$6" dev "$5"
  ip -n "$1" link set "$2" up; ip -n "$4" link set "$5" up
}
link host-a eth0 10.1.0.10/24 gw-a lan 10.1.0.1/24
link gw-a wan 192.0.2.1/24 gw-b wan 192.0.2.2/24
link gw-b lan 10.2.0.1/24 host-b eth0 10.2.0.10/24
ip -n host-a route add default via 10.1.0.1
ip -n host-b route add default via 10.2.0.1
# the remote LAN must be routable for the XFRM policy lookup to happen at all
ip -n gw-a route add 10.2.0.0/24 via 192.0.2.2
ip -n gw-b route add 10.1.0.0/24 via 192.0.2.1
for g in gw-a gw-b; do ip netns exec "$g" sysctl -qw net.ipv4.ip_forward=1; done
echo "host-a 10.1.0.10 -- gw-a 192.0.2.1 == gw-b 192.0.2.2 -- host-b 10.2.0.10"

config() { # name local remote local_lan remote_lan start_action id rid
  cat > "$W/$1.yaml" <<YAML
daemon:
  control_socket: $W/$1/ctl.sock
  state_file: $W/$1/state.json
  listen: [$2]
  log_level: info
connections:
  site:
    local: { addrs: [$2], id: $7 }
    remote: { addrs: [$3], id: $8 }
    psk: file:$W/site.psk
    ike:
      proposals: [aes256gcm16-prfsha384-x25519]
      rekey_time: 4h
      retransmit: { timeout: 8s, tries: 6 }
    optimized_rekey: yes
    child_pfs_info: yes
    children:
      lan:
        local_ts: [$4]
        remote_ts: [$5]
        esp_proposals: [aes256gcm16-x25519]
        rekey_time: 1h
        start_action: $6
YAML
}
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/site.psk"; chmod 600 "$W/site.psk"
config gw-b 192.0.2.2 192.0.2.1 10.2.0.0/24 10.1.0.0/24 none gw-b.example gw-a.example
config gw-a 192.0.2.1 192.0.2.2 10.1.0.0/24 10.2.0.0/24 start gw-a.example gw-b.example

ctl() { local gw=$1; shift; ip netns exec "$gw" $IKEV2D ctl --socket "$W/$gw/ctl.sock" "$@"; }
start_daemon() {
  ip netns exec "$1" $IKEV2D --config "$W/$1.yaml" --pretty > "$W/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do [[ -S $W/$1/ctl.sock ]] && return 0; kill -0 "${PIDS[-1]}" 2>/dev/null || break; sleep 0.1; done
  echo "--- $1 log:"; cat "$W/$1.log"; die "ikev2d on $1 did not start"
}
child_count() { # gw -> number of installed Child SAs
  ctl "$1" --json list-sas 2>/dev/null | $NODE -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const l=JSON.parse(s);console.log(l.flatMap(i=>i.children.filter(c=>c.state==="installed")).length)}catch{console.log(0)}})'
}
json_field() { # gw js-expression over the list-sas JSON array `l`
  ctl "$1" --json list-sas | $NODE -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const l=JSON.parse(s);console.log($2)})"
}

say "starting ikev2d on gw-b (responder) and gw-a (initiator, start_action start)"
start_daemon gw-b
start_daemon gw-a
T0=$(date +%s.%N)
for _ in $(seq 600); do
  [[ $(child_count gw-a) -ge 1 && $(child_count gw-b) -ge 1 ]] && break
  sleep 0.2
done
[[ $(child_count gw-a) -ge 1 ]] || { echo "--- gw-a log:"; tail -50 "$W/gw-a.log"; echo "--- gw-b log:"; tail -50 "$W/gw-b.log"; die "tunnel did not come up"; }
echo "tunnel up after $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"

say "ping host-a -> host-b through ESP"
ip netns exec host-a ping -c 3 -W 5 10.2.0.10 || die "no ping through the tunnel"

say "rekeys under a continuous ping (every 20 ms)"
ip netns exec host-a ping -i 0.02 -W 5 10.2.0.10 > "$W/ping.txt" 2>&1 &
PING=$!
sleep 2
for i in 1 2 3; do
  CHILD=$(json_field gw-a 'l[0].children.find(c=>c.state==="installed").childId')
  echo "rekey child $CHILD (round $i)"; ctl gw-a rekey child "$CHILD" || die "child rekey failed"
  sleep 3
done
IKE=$(json_field gw-a 'l.find(s=>s.state==="established").ikeSaId')
echo "rekey ike $IKE"; ctl gw-a rekey ike "$IKE" || die "IKE rekey failed"
sleep 4
CHILD=$(json_field gw-b 'l.find(s=>s.state==="established").children.find(c=>c.state==="installed").childId')
echo "rekey child $CHILD from gw-b"; ctl gw-b rekey child "$CHILD" || die "child rekey from gw-b failed"
sleep 3
kill -INT "$PING"; wait "$PING" 2>/dev/null

say "ikev2d ctl list-sas on gw-a"
ctl gw-a list-sas
say "ikev2d ctl list-sas on gw-b"
ctl gw-b list-sas
say "kernel SAs on gw-a (ip xfrm state)"
ip -n gw-a -s xfrm state | grep -E '^src|proto esp|lifetime current|bytes' | head -12

say "result"
grep -E 'packets transmitted' "$W/ping.txt"
LOSS=$(grep -oE '[0-9.]+% packet loss' "$W/ping.txt")
SENT=$(grep -oE '^[0-9]+ packets transmitted' "$W/ping.txt" | grep -oE '^[0-9]+')
RCVD=$(grep -oE '[0-9]+ received' "$W/ping.txt" | grep -oE '^[0-9]+')
echo "ping across 4 Child SA rekeys and 1 IKE SA rekey: $SENT sent, $RCVD received, $LOSS"
ctl gw-a stats
RC=0
[[ -n $SENT && $SENT == "$RCVD" ]] || { echo "demo: packets were lost"; RC=1; }

say "shutting down (SIGTERM: Deletes to the peer, kernel state removed)"
if [[ $KEEP == 0 ]]; then
  for p in "${PIDS[@]}"; do kill -TERM "$p"; done
  for p in "${PIDS[@]}"; do wait "$p"; echo "ikev2d pid $p exit $?"; done
  PIDS=()
  echo "left in gw-a's kernel: $(ip -n gw-a xfrm state | grep -c '^src') SAs, $(ip -n gw-a xfrm policy | grep -c '^src') policies"
  echo "left in gw-b's kernel: $(ip -n gw-b xfrm state | grep -c '^src') SAs, $(ip -n gw-b xfrm policy | grep -c '^src') policies"
fi
exit $RC
