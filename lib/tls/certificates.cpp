#include "tls/certificates.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace blitz::tls {

namespace {

constexpr std::size_t kMaxPemBytes = 1 << 20;
constexpr std::size_t kMaxBundleBytes = 16 << 20;

std::string prefix(std::string_view what, const std::string& path) {
    std::string s(what);
    s += " \"";
    s += path;
    s += "\": ";
    return s;
}

// Refuses to prompt for a passphrase: start-up must never block on a terminal.
int no_passphrase(char*, int, int, void*) { return -1; }

std::string asn1_time_text(const ASN1_TIME* t) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || ASN1_TIME_print(bio.get(), t) != 1) {
        ERR_clear_error();
        return "an unreadable date";
    }
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

// Every certificate of a PEM text, in order. Other PEM blocks (a key in the same file) are
// skipped by the library.
Result<std::vector<X509Ptr>, std::string> parse_certificates(const std::string& pem,
                                                             std::string_view what,
                                                             const std::string& path) {
    std::vector<X509Ptr> certs;
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) {
        return fail(prefix(what, path) + "out of memory");
    }
    for (;;) {
        X509* x = PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr);
        if (x == nullptr) {
            break;
        }
        certs.emplace_back(x);
    }
    const unsigned long err = ERR_peek_last_error();
    const bool clean_end =
        ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    if (certs.empty()) {
        return fail(prefix(what, path) + "not a PEM certificate (no readable CERTIFICATE block)");
    }
    if (!clean_end) {
        return fail(prefix(what, path) + "certificate " + std::to_string(certs.size() + 1) +
                    " of the file is damaged");
    }
    return certs;
}

Result<void, std::string> check_dates(const std::vector<X509Ptr>& certs, const std::string& path) {
    for (std::size_t i = 0; i < certs.size(); ++i) {
        const std::string which =
            i == 0 ? std::string() : "chain certificate " + std::to_string(i) + " ";
        const ASN1_TIME* not_after = X509_get0_notAfter(certs[i].get());
        const ASN1_TIME* not_before = X509_get0_notBefore(certs[i].get());
        if (X509_cmp_current_time(not_after) < 0) {
            return fail(prefix("certificate", path) + which + "expired on " +
                        asn1_time_text(not_after));
        }
        if (X509_cmp_current_time(not_before) > 0) {
            return fail(prefix("certificate", path) + which + "is not valid before " +
                        asn1_time_text(not_before));
        }
    }
    return {};
}

std::string_view asn1_view(const ASN1_STRING* s) {
    return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
            static_cast<std::size_t>(ASN1_STRING_length(s))};
}

// The leaf's DNS subjectAltNames, or its CN when it has none (RFC 6125 §6.4.4).
std::vector<std::string> certificate_names(X509* leaf) {
    std::vector<std::string> names;
    auto* gens =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
    if (gens != nullptr) {
        const int count = static_cast<int>(sk_GENERAL_NAME_num(gens));
        for (int i = 0; i < count; ++i) {
            const GENERAL_NAME* g = sk_GENERAL_NAME_value(gens, i);
            if (g->type == GEN_DNS) {
                std::string n = normalize_server_name(asn1_view(g->d.dNSName));
                if (!n.empty()) {
                    names.push_back(std::move(n));
                }
            }
        }
        GENERAL_NAMES_free(gens);
    }
    if (names.empty()) {
        const X509_NAME* subject = X509_get_subject_name(leaf);
        const int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
        if (i >= 0) {
            const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
            std::string n = normalize_server_name(asn1_view(cn));
            if (!n.empty()) {
                names.push_back(std::move(n));
            }
        }
    }
    ERR_clear_error();
    return names;
}

void append_header_safe(std::string& out, std::string_view v) {
    for (char c : v) {
        const auto u = static_cast<unsigned char>(c);
        out += (u < 0x20 || u >= 0x7f) ? '?' : c;
    }
}

// XFCC values are quoted when they hold a separator; quotes and backslashes are escaped.
void append_xfcc_value(std::string& out, std::string_view v, bool always_quote) {
    const bool quote = always_quote || v.find_first_of(",;=\"") != std::string_view::npos;
    if (quote) {
        out += '"';
    }
    for (char c : v) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        append_header_safe(out, std::string_view(&c, 1));
    }
    if (quote) {
        out += '"';
    }
}

}  // namespace

Result<std::string, std::string> read_file(const std::string& path, std::string_view what,
                                           std::size_t max_bytes) {
    if (path.empty()) {
        return fail(std::string(what) + ": no file given");
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        if (e == ENOENT) {
            return fail(prefix(what, path) + "no such file");
        }
        return fail(prefix(what, path) + "cannot open it: " + std::strerror(e));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return fail(prefix(what, path) + "cannot read it: not a regular file");
    }
    if (static_cast<std::size_t>(st.st_size) > max_bytes) {
        ::close(fd);
        return fail(prefix(what, path) + "larger than " + std::to_string(max_bytes) + " bytes");
    }
    std::string data(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < data.size()) {
        const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            return fail(prefix(what, path) + "cannot read it: " + std::strerror(e));
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    data.resize(got);
    return data;
}

std::string normalize_server_name(std::string_view name) {
    if (!name.empty() && name.back() == '.') {
        name.remove_suffix(1);
    }
    if (name.empty() || name.size() > 253) {
        return {};
    }
    std::string out;
    out.reserve(name.size());
    for (std::size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                        c == '.' || (c == '*' && i == 0);
        if (!ok) {
            return {};
        }
        out += c;
    }
    // A wildcard is exactly "*." followed by a name (one label, RFC 6125 §6.4.3).
    if (out[0] == '*' && (out.size() < 3 || out[1] != '.')) {
        return {};
    }
    if (out.find("..") != std::string::npos || out.front() == '.') {
        return {};
    }
    return out;
}

Result<LoadedCertificate, std::string> load_certificate(const CertificateOptions& options,
                                                        bool need_names) {
    LoadedCertificate c;
    auto pem = read_file(options.cert, "certificate", kMaxPemBytes);
    if (!pem) {
        return fail(pem.error());
    }
    auto certs = parse_certificates(*pem, "certificate", options.cert);
    if (!certs) {
        return fail(certs.error());
    }
    if (auto dates = check_dates(*certs, options.cert); !dates) {
        return fail(dates.error());
    }
    c.leaf = std::move(certs->front());
    for (std::size_t i = 1; i < certs->size(); ++i) {
        c.chain.push_back(std::move((*certs)[i]));
    }

    auto key_pem = read_file(options.key, "private key", kMaxPemBytes);
    if (!key_pem) {
        return fail(key_pem.error());
    }
    BioPtr bio(BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size())));
    c.key.reset(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr)
                    : nullptr);
    ERR_clear_error();
    if (!c.key) {
        if (key_pem->find("ENCRYPTED") != std::string::npos) {
            return fail(prefix("private key", options.key) +
                        "encrypted private keys are not supported");
        }
        return fail(prefix("private key", options.key) + "not a PEM private key");
    }
    switch (EVP_PKEY_id(c.key.get())) {
        case EVP_PKEY_RSA:
            c.type = KeyType::Rsa;
            break;
        case EVP_PKEY_EC:
            c.type = KeyType::Ecdsa;
            // RFC 8446 §4.2.3: in TLS 1.3 each ECDSA scheme names its curve.
            switch (EVP_PKEY_bits(c.key.get())) {
                case 256:
                    c.tls13_sigalg = 0x0403;
                    break;
                case 384:
                    c.tls13_sigalg = 0x0503;
                    break;
                case 521:
                    c.tls13_sigalg = 0x0603;
                    break;
                default:
                    return fail(prefix("private key", options.key) +
                                "ECDSA keys must be on P-256, P-384 or P-521");
            }
            break;
        default:
            return fail(prefix("private key", options.key) +
                        "unsupported key type (RSA or ECDSA only)");
    }
    if (X509_check_private_key(c.leaf.get(), c.key.get()) != 1) {
        ERR_clear_error();
        return fail(prefix("private key", options.key) + "does not match the certificate in \"" +
                    options.cert + "\"");
    }

    if (need_names) {
        if (!options.server_names.empty()) {
            for (const std::string& name : options.server_names) {
                std::string n = normalize_server_name(name);
                if (n.empty()) {
                    return fail(prefix("certificate", options.cert) + "server name \"" + name +
                                "\" is not a host name");
                }
                c.names.push_back(std::move(n));
            }
        } else {
            c.names = certificate_names(c.leaf.get());
            if (c.names.empty()) {
                return fail(prefix("certificate", options.cert) +
                            "has no usable name (no DNS subjectAltName or CN); set server_names");
            }
        }
        std::sort(c.names.begin(), c.names.end());
        c.names.erase(std::unique(c.names.begin(), c.names.end()), c.names.end());
    }

    if (!options.ocsp_staple.empty()) {
        auto der = read_file(options.ocsp_staple, "OCSP staple", kMaxPemBytes);
        if (!der) {
            return fail(der.error());
        }
        // An OCSPResponse is a DER SEQUENCE (RFC 6960 §4.2.1).
        if (der->size() < 2 || static_cast<unsigned char>((*der)[0]) != 0x30) {
            return fail(prefix("OCSP staple", options.ocsp_staple) + "not a DER OCSP response");
        }
        c.ocsp = std::move(*der);
    }
    return c;
}

Result<std::vector<X509Ptr>, std::string> load_ca_bundle(const std::string& path,
                                                         std::string_view what) {
    auto pem = read_file(path, what, kMaxBundleBytes);
    if (!pem) {
        return fail(pem.error());
    }
    return parse_certificates(*pem, what, path);
}

void describe_peer(X509* cert, bool verified, PeerText& out) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (bio &&
        X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
        char* data = nullptr;
        const long len = BIO_get_mem_data(bio.get(), &data);
        append_header_safe(out.subject, std::string_view(data, static_cast<std::size_t>(len)));
    }

    std::vector<std::string_view> uris;
    std::vector<std::string_view> dns;
    auto* gens =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (gens != nullptr) {
        const int count = static_cast<int>(sk_GENERAL_NAME_num(gens));
        for (int i = 0; i < count; ++i) {
            const GENERAL_NAME* g = sk_GENERAL_NAME_value(gens, i);
            if (g->type == GEN_DNS || g->type == GEN_URI) {
                const std::string_view v =
                    asn1_view(g->type == GEN_DNS ? g->d.dNSName : g->d.uniformResourceIdentifier);
                if (out.san.empty()) {
                    append_header_safe(out.san, v);
                }
                (g->type == GEN_DNS ? dns : uris).push_back(v);
                append_header_safe(out.sans.emplace_back(), v);
            } else if (g->type == GEN_EMAIL) {
                append_header_safe(out.sans.emplace_back(), asn1_view(g->d.rfc822Name));
            } else if (g->type == GEN_IPADD) {
                // RFC 5280 §4.2.1.6: four octets for IPv4, sixteen for IPv6; anything else
                // (a name constraint's address and mask) is no address to match on.
                const std::string_view raw = asn1_view(g->d.iPAddress);
                char text[INET6_ADDRSTRLEN] = {};
                const int family = raw.size() == 4 ? AF_INET : raw.size() == 16 ? AF_INET6 : 0;
                if (family != 0 && ::inet_ntop(family, raw.data(), text, sizeof(text)) != nullptr) {
                    out.sans.emplace_back(text);
                }
            }
        }
    }
    // Views are taken only now: adding to `sans` may move short strings held inline.
    out.san_views.assign(out.sans.begin(), out.sans.end());

    if (verified) {
        // Envoy's element order: Hash, Subject, URI, DNS.
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) {
            static constexpr char kHex[] = "0123456789abcdef";
            out.xfcc = "Hash=";
            for (unsigned i = 0; i < md_len; ++i) {
                out.xfcc += kHex[md[i] >> 4];
                out.xfcc += kHex[md[i] & 0xf];
            }
            out.xfcc += ";Subject=";
            append_xfcc_value(out.xfcc, out.subject, true);
            for (std::string_view v : uris) {
                out.xfcc += ";URI=";
                append_xfcc_value(out.xfcc, v, false);
            }
            for (std::string_view v : dns) {
                out.xfcc += ";DNS=";
                append_xfcc_value(out.xfcc, v, false);
            }
        }
    }
    if (gens != nullptr) {
        GENERAL_NAMES_free(gens);
    }
    ERR_clear_error();
}

}  // namespace blitz::tls
