#!/bin/sh
# Regenerates the PKCS#12/PEM fixtures of the template functions' tests (openssl 3).
# Test-only keys: never used anywhere else.
set -eu
cd "$(dirname "$0")"
days=36500
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key -out root.crt \
  -days $days -subj "/CN=lockstep test root" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout intermediate.key \
  -out intermediate.csr -subj "/CN=lockstep test intermediate" 2>/dev/null
openssl x509 -req -in intermediate.csr -CA root.crt -CAkey root.key -CAcreateserial -days $days \
  -out intermediate.crt -extfile /dev/stdin 2>/dev/null <<EXT
basicConstraints=critical,CA:TRUE
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=foo.example" 2>/dev/null
openssl x509 -req -in leaf.csr -CA intermediate.crt -CAkey intermediate.key -CAcreateserial -days $days \
  -out leaf.crt -extfile /dev/stdin 2>/dev/null <<EXT
subjectAltName=DNS:foo.example,DNS:www.foo.example,IP:10.0.0.1,email:ops@foo.example,URI:spiffe://foo/bar
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
rm -f ./*.csr ./*.srl
# The same RSA key in PKCS#1, and an EC key in SEC1 with its certificate.
openssl rsa -traditional -in leaf.key -out leaf-pkcs1.key 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out ec-sec1.key
openssl req -x509 -key ec-sec1.key -out ec.crt -days $days -subj "/CN=lockstep test ec" 2>/dev/null
# Bags in the archive: the leaf, then the root before the intermediate (out of order on purpose).
cat root.crt intermediate.crt > cas.pem
openssl pkcs12 -export -inkey leaf.key -in leaf.crt -certfile cas.pem -passout pass: -out leaf-nopass.pfx
openssl pkcs12 -export -inkey leaf.key -in leaf.crt -certfile cas.pem -passout pass:1234 -out leaf-1234.pfx
openssl pkcs12 -export -legacy -inkey leaf.key -in leaf.crt -passout pass:1234 -out leaf-legacy-1234.pfx 2>/dev/null \
  || openssl pkcs12 -export -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1 -inkey leaf.key -in leaf.crt \
       -passout pass:1234 -out leaf-legacy-1234.pfx
rm -f cas.pem root.key intermediate.key
