#!/usr/bin/env bash
# Generate a small X.509 test PKI for IKEv2 certificate authentication tests.
# Usage: scripts/gen-test-certs.sh <output-dir>
#
# Produces (PEM, *.key unencrypted PKCS#8):
#   ca.{key,crt}          root CA "C=CH, O=ikev2d test, CN=Test Root CA" (P-256, cA=TRUE)
#   int.{key,crt}         intermediate CA signed by the root (P-256, cA=TRUE)
#   gw1.{key,crt}         leaf via the intermediate: CN=gw1.example.org,
#                         SAN DNS:gw1.example.org, IP:192.0.2.1, IP:2001:db8::1, email:admin@example.org
#                         (valid for 2 days from now)
#   gw2-rsa.{key,crt}     leaf by the root, RSA 2048, SAN DNS:gw2.example.org
#   gw3-ed25519.{key,crt} leaf by the root, Ed25519, SAN DNS:gw3.example.org
#   gw4-p384.{key,crt}    leaf by the root, P-384, SAN DNS:gw4.example.org
#   other-ca.{key,crt}    an unrelated root CA
#   rogue.{key,crt}       leaf by other-ca claiming SAN DNS:gw1.example.org
#   notca.{key,crt}       leaf by the root (cA=FALSE)
#   undernotca.{key,crt}  leaf signed by notca (issuer is not a CA)
set -euo pipefail
out=${1:?usage: $0 <output-dir>}
mkdir -p "$out"
cd "$out"
command -v openssl >/dev/null || { echo "openssl not found" >&2; exit 1; }

subj_base="/C=CH/O=ikev2d test"

root() { # name cn
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.crt" \
    -days 3650 -subj "$subj_base/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

leaf() { # name cn issuer days ext keyargs...
  local name=$1 cn=$2 issuer=$3 days=$4 ext=$5
  shift 5
  openssl req -new "$@" -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj_base/CN=$cn" 2>/dev/null
  printf '%b\n' "$ext" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$issuer.crt" -CAkey "$issuer.key" -CAcreateserial -out "$name.crt" \
    -days "$days" -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

p256=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)

root ca "Test Root CA"
leaf int "Test Intermediate CA" ca 3650 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign' "${p256[@]}"
leaf gw1 gw1.example.org int 2 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:gw1.example.org,IP:192.0.2.1,IP:2001:db8::1,email:admin@example.org' "${p256[@]}"
leaf gw2-rsa gw2.example.org ca 30 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:gw2.example.org' -newkey rsa:2048
leaf gw3-ed25519 gw3.example.org ca 30 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:gw3.example.org' -newkey ed25519
leaf gw4-p384 gw4.example.org ca 30 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:gw4.example.org' -newkey ec -pkeyopt ec_paramgen_curve:P-384
root other-ca "Other Root CA"
leaf rogue gw1.example.org other-ca 30 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:gw1.example.org' "${p256[@]}"
leaf notca notca.example.org ca 30 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:notca.example.org' "${p256[@]}"
leaf undernotca victim.example.org notca 30 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:victim.example.org' "${p256[@]}"
rm -f ./*.srl
echo "test PKI written to $out"
