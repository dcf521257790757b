// libFuzzer target for the detection/handshake boundary of lib/tls: arbitrary bytes go to a
// server Session (or, with the low bit of the first byte set, to a client Session that has sent
// its ClientHello), cut into pieces whose size the first byte picks. Checks the Session contract:
// detect() follows the first byte, WantRead means the input was consumed, no application data
// before a completed handshake, and every output buffer goes back to its source.
//
// The certificates (ECDSA P-256 and RSA-2048 for one host, ECDSA for an exact and a wildcard
// host) are made with the library at start-up, so no key lives in the tree.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/session.hpp"

namespace {

using namespace blitz;

class Buffers final : public tls::BufferSource {
public:
    char* take_buffer() noexcept override {
        ++outstanding;
        return static_cast<char*>(std::malloc(kBytes));
    }
    void give_buffer(char* buffer) noexcept override {
        --outstanding;
        std::free(buffer);
    }
    std::size_t buffer_bytes() const noexcept override { return kBytes; }
    long outstanding = 0;

private:
    // Small, so that handshake flights spill.
    static constexpr std::size_t kBytes = 2048;
};

EVP_PKEY* make_key(bool rsa) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(rsa ? EVP_PKEY_RSA : EVP_PKEY_EC, nullptr);
    EVP_PKEY* key = nullptr;
    if (ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1 &&
        (rsa ? EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048)
             : EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1)) == 1) {
        EVP_PKEY_keygen(ctx, &key);
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}

bool add_dns_names(X509* x, std::initializer_list<const char*> names) {
    GENERAL_NAMES* gens = sk_GENERAL_NAME_new_null();
    bool ok = gens != nullptr;
    for (const char* n : names) {
        GENERAL_NAME* g = GENERAL_NAME_new();
        ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
        if (g == nullptr || ia5 == nullptr ||
            ASN1_STRING_set(ia5, n, static_cast<int>(std::strlen(n))) != 1) {
            GENERAL_NAME_free(g);
            ASN1_IA5STRING_free(ia5);
            ok = false;
            break;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
        sk_GENERAL_NAME_push(gens, g);
    }
    ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(gens);
    return ok;
}

// A self-signed certificate for `names`, in PEM files `base`.pem and `base`.key.
bool make_certificate(const std::string& base, std::initializer_list<const char*> names, bool rsa) {
    EVP_PKEY* key = make_key(rsa);
    X509* x = X509_new();
    bool ok = key != nullptr && x != nullptr;
    if (ok) {
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
        X509_NAME* name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("fuzz"), -1, -1, 0);
        X509_set_issuer_name(x, name);
        X509_set_pubkey(x, key);
        ok = add_dns_names(x, names) && X509_sign(x, key, EVP_sha256()) > 0;
    }
    if (ok) {
        FILE* cert = std::fopen((base + ".pem").c_str(), "w");
        FILE* priv = std::fopen((base + ".key").c_str(), "w");
        ok = cert != nullptr && priv != nullptr && PEM_write_X509(cert, x) == 1 &&
             PEM_write_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
        if (cert != nullptr) {
            std::fclose(cert);
        }
        if (priv != nullptr) {
            std::fclose(priv);
        }
    }
    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}

struct Contexts {
    std::shared_ptr<tls::ServerContext> server;
    std::shared_ptr<tls::ServerContext> strict;  // alpn_strict, TLS 1.2 allowed
    std::shared_ptr<tls::ClientContext> client;
};
Contexts* contexts = nullptr;

[[noreturn]] void die(const char* why) {
    std::fprintf(stderr, "tls_fuzz: %s\n", why);
    std::abort();
}

void drain(tls::Session& s) {
    while (s.has_output()) {
        s.output_sent(s.pending_output().size());
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    char templ[] = "/tmp/blitz-tls-fuzz-XXXXXX";
    const char* dir = ::mkdtemp(templ);
    if (dir == nullptr) {
        die("cannot make a temporary directory");
    }
    const std::string d = dir;
    if (!make_certificate(d + "/a-ec", {"a.fuzz"}, false) ||
        !make_certificate(d + "/a-rsa", {"a.fuzz"}, true) ||
        !make_certificate(d + "/w-ec", {"b.fuzz", "*.w.fuzz"}, false)) {
        die("cannot make the certificates");
    }
    TlsOptions o;
    o.certificates = {{.cert = d + "/a-ec.pem", .key = d + "/a-ec.key"},
                      {.cert = d + "/a-rsa.pem", .key = d + "/a-rsa.key"},
                      {.cert = d + "/w-ec.pem", .key = d + "/w-ec.key"}};
    o.alpn = {"h2", "http/1.1"};
    auto server = tls::ServerContext::make(o);
    o.alpn_strict = true;
    o.min_version = TlsVersion::Tls12;
    auto strict = tls::ServerContext::make(o);
    UpstreamTlsOptions c;
    c.enabled = true;
    c.ca = d + "/a-ec.pem";
    auto client = tls::ClientContext::make(c);
    std::error_code ec;
    std::filesystem::remove_all(d, ec);
    if (!server || !strict || !client) {
        die("cannot make the contexts");
    }
    contexts = new Contexts{*server, *strict, *client};
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::uint8_t control = data[0];
    const char* in = reinterpret_cast<const char*>(data + 1);
    const std::size_t len = size - 1;

    const tls::Detected d = tls::detect(in, len);
    if ((len == 0) != (d == tls::Detected::NeedMore) ||
        (len > 0 && (static_cast<unsigned char>(in[0]) == 0x16) != (d == tls::Detected::Tls))) {
        die("detect() does not follow the first byte");
    }

    Buffers buffers;
    {
        tls::Session s(buffers);
        const bool client = (control & 1) != 0;
        if (client) {
            if (!s.start_client(contexts->client, "a.fuzz", nullptr) ||
                s.handshake() != tls::Status::WantRead) {
                die("the client did not start");
            }
        } else if (!s.start_server((control & 2) != 0 ? contexts->strict : contexts->server)) {
            die("the server did not start");
        }
        drain(s);
        // 0: everything at once; else pieces of 1..63 bytes.
        const std::size_t piece = (control >> 2) == 0 ? len : (control >> 2);
        tls::Status st = tls::Status::WantRead;
        for (std::size_t at = 0; at < len && st == tls::Status::WantRead; at += piece) {
            const std::size_t n = std::min(piece, len - at);
            s.set_input(in + at, n);
            for (;;) {
                const bool before = s.handshake_done();
                char out[512];
                std::size_t produced = 0;
                st = s.read(out, sizeof out, produced);
                if (st != tls::Status::Ok) {
                    break;
                }
                if (!before && !s.handshake_done()) {
                    die("read() returned data before the handshake completed");
                }
                const iovec echo{out, produced};
                s.write(&echo, 1, produced);
            }
            if (st == tls::Status::WantRead && s.input_left() != 0) {
                die("WantRead with input left");
            }
            drain(s);
        }
        s.shutdown();
        drain(s);
        s.reset();
        if (buffers.outstanding != 0) {
            die("an output buffer was not given back");
        }
    }
    return 0;
}
