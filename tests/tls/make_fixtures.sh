#!/bin/sh
# Makes the certificates the TLS tests use, with the openssl command-line tool:
#   make_fixtures.sh <openssl> <directory>
# A root CA and an intermediate (ECDSA P-256); leaves signed by the intermediate (ECDSA P-256
# and RSA-2048) for the virtual hosts a.test (both key types), b.test + *.wild.test, other.test,
# a CN-only and a nameless one; an expired and a not-yet-valid leaf (dates set through
# `openssl ca`); two client certificates (one with a SAN of every kind); a rogue CA with its own
# a.test leaf; an OCSP response for the a.test ECDSA leaf.
set -eu
OPENSSL=$1
DIR=$2
cd "$DIR"

ec_key() { "$OPENSSL" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
rsa_key() { "$OPENSSL" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }

cat > ext.cnf <<'CNF'
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
[a]
subjectAltName = DNS:a.test
extendedKeyUsage = serverAuth
[b]
subjectAltName = DNS:b.test, DNS:*.wild.test
extendedKeyUsage = serverAuth
[other]
subjectAltName = DNS:other.test
extendedKeyUsage = serverAuth
[plain]
extendedKeyUsage = serverAuth
[client]
subjectAltName = URI:spiffe://blitz.test/client, DNS:client.test
extendedKeyUsage = clientAuth
[client-many]
subjectAltName = DNS:first.client.test, URI:spiffe://blitz.test/many, email:ops@blitz.test, IP:192.0.2.7, IP:2001:db8::7, DNS:second.client.test, URI:urn:blitz:many
extendedKeyUsage = clientAuth
CNF

# Root and intermediate.
ec_key ca.key
"$OPENSSL" req -x509 -new -key ca.key -subj "/CN=Blitz Test Root" -days 30 \
    -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem
ec_key int.key
"$OPENSSL" req -new -key int.key -subj "/CN=Blitz Test Intermediate" -out int.csr
"$OPENSSL" x509 -req -in int.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 30 \
    -extfile ext.cnf -extensions ca -out int.pem 2>/dev/null

# leaf NAME KEYKIND SUBJECT SECTION: NAME.key, NAME.pem (leaf + intermediate)
leaf() {
    if [ "$2" = rsa ]; then rsa_key "$1.key"; else ec_key "$1.key"; fi
    "$OPENSSL" req -new -key "$1.key" -subj "$3" -out "$1.csr"
    "$OPENSSL" x509 -req -in "$1.csr" -CA int.pem -CAkey int.key -CAcreateserial -days 30 \
        -extfile ext.cnf -extensions "$4" -out "$1.leaf.pem" 2>/dev/null
    cat "$1.leaf.pem" int.pem > "$1.pem"
}
leaf a-ec ec "/CN=a.test ECDSA" a
leaf a-rsa rsa "/CN=a.test RSA" a
leaf b-ec ec "/CN=b.test" b
leaf other ec "/CN=other.test" other
leaf cn-only ec "/CN=cn.test" plain
leaf nameless ec "/O=Blitz Tests" plain

# Client certificate, issued by the root.
ec_key client.key
"$OPENSSL" req -new -key client.key -subj "/O=Blitz Tests/CN=client" -out client.csr
"$OPENSSL" x509 -req -in client.csr -CA ca.pem -CAkey ca.key -set_serial 7 -days 30 \
    -extfile ext.cnf -extensions client -out client.pem 2>/dev/null
# One with a SAN of every kind, some kinds twice.
ec_key client-many.key
"$OPENSSL" req -new -key client-many.key -subj "/CN=many" -out client-many.csr
"$OPENSSL" x509 -req -in client-many.csr -CA ca.pem -CAkey ca.key -set_serial 8 -days 30 \
    -extfile ext.cnf -extensions client-many -out client-many.pem 2>/dev/null

# Expired and not-yet-valid leaves: `openssl ca` takes explicit dates.
mkdir -p ca.d
: > ca.d/index.txt
echo 1000 > ca.d/serial
cat > ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = $DIR/ca.d/index.txt
new_certs_dir = $DIR/ca.d
serial = $DIR/ca.d/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
CNF
dated() {
    ec_key "$1.key"
    "$OPENSSL" req -new -key "$1.key" -subj "/CN=a.test $1" -out "$1.csr"
    "$OPENSSL" ca -batch -config ca.cnf -cert int.pem -keyfile int.key -in "$1.csr" \
        -startdate "$2" -enddate "$3" -extfile ext.cnf -extensions a -notext \
        -out "$1.pem" 2>/dev/null
}
dated expired 20200101000000Z 20200102000000Z
dated future 20990101000000Z 20991231000000Z

# Rogue CA and its a.test leaf.
ec_key rogue-ca.key
"$OPENSSL" req -x509 -new -key rogue-ca.key -subj "/CN=Rogue CA" -days 30 \
    -addext "basicConstraints=critical,CA:true" -out rogue-ca.pem
ec_key rogue.key
"$OPENSSL" req -new -key rogue.key -subj "/CN=a.test rogue" -out rogue.csr
"$OPENSSL" x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key -set_serial 9 -days 30 \
    -extfile ext.cnf -extensions a -out rogue.pem 2>/dev/null

# OCSP response for a-ec, signed by its issuer.
serial=$("$OPENSSL" x509 -in a-ec.leaf.pem -noout -serial | sed 's/serial=//')
printf 'V\t300101000000Z\t\t%s\tunknown\t/CN=a.test ECDSA\n' "$serial" > ocsp-index.txt
"$OPENSSL" ocsp -issuer int.pem -cert a-ec.leaf.pem -no_nonce -reqout ocsp-req.der
"$OPENSSL" ocsp -index ocsp-index.txt -rsigner int.pem -rkey int.key -CA int.pem \
    -reqin ocsp-req.der -respout ocsp.der -ndays 1 >/dev/null 2>&1

# Files that are not what they claim to be.
echo "this is not a certificate" > garbage.pem
echo "this is not DER" > garbage.der
